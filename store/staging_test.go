package store

import (
	"errors"
	"testing"
)

// A stage is invisible until committed, replaces every key and access code
// when it is, and a stage dropped (or left by a crash and begun anew)
// changes nothing.
func TestStage(t *testing.T) {
	db, dir := openTest(t, Options{})
	must(t, db.Update(func(tx *Tx) error { return tx.PutKey(&Key{ID: "old", Fob: "AAAA"}) }))
	if err := db.Update(func(tx *Tx) error { return tx.StageKey(&Key{ID: "x"}) }); !errors.Is(err, ErrNoStage) {
		t.Fatalf("StageKey without a stage: %v", err)
	}
	must(t, db.Update(func(tx *Tx) error {
		if err := tx.BeginStage(); err != nil {
			return err
		}
		if err := tx.SetRunning("snap-1"); err != nil {
			return err
		}
		return tx.StageKey(&Key{ID: "left", Fob: "BBBB"})
	}))
	// A crash here, and a restart: the stage is there, the live records too.
	db.Close()
	db = openAt(t, dir, Options{})
	must(t, db.View(func(tx *Tx) error {
		if !tx.Staging() || tx.Running() != "snap-1" || tx.KeyByFob("AAAA") != "old" || tx.KeyByFob("BBBB") != "" {
			t.Errorf("after restart: staging %v running %q", tx.Staging(), tx.Running())
		}
		return nil
	}))
	hash := db.CodeHash("1234")
	must(t, db.Update(func(tx *Tx) error {
		if err := tx.BeginStage(); err != nil { // drops the stage left behind
			return err
		}
		if err := tx.StageKey(&Key{ID: "k1", Fob: "CCCC"}); err != nil {
			return err
		}
		if err := tx.StageAccessCode(&AccessCode{ID: "a1", CodeHash: hash}); err != nil {
			return err
		}
		return tx.StageCodeIndex(hash, CodeOwner{Kind: OwnerAccessCode, ID: "a1"})
	}))
	must(t, db.View(func(tx *Tx) error {
		if k, _ := tx.StagedCounts(); k != 1 {
			t.Errorf("staged keys %d, want 1 (the left-over stage dropped)", k)
		}
		if _, ok := tx.CodeOwner(hash); ok {
			t.Error("a staged code is live before the commit")
		}
		return nil
	}))
	must(t, db.Update(func(tx *Tx) error {
		if err := tx.CommitStage("v2"); err != nil {
			return err
		}
		return tx.SetRunning("")
	}))
	must(t, db.View(func(tx *Tx) error {
		old, _ := tx.Key("old")
		k1, _ := tx.Key("k1")
		o, ok := tx.CodeOwner(hash)
		switch {
		case old != nil || k1 == nil || tx.KeyByFob("CCCC") != "k1" || tx.KeyByFob("AAAA") != "":
			t.Errorf("keys after commit: old %v k1 %v", old, k1)
		case !ok || o.ID != "a1":
			t.Errorf("code owner %v %v", o, ok)
		case tx.KeyCount() != 1 || tx.AccessCodeCount() != 1 || tx.SnapshotVersion() != "v2":
			t.Errorf("counts %d %d version %q", tx.KeyCount(), tx.AccessCodeCount(), tx.SnapshotVersion())
		case tx.Staging() || tx.Running() != "":
			t.Error("stage or mark left")
		}
		return nil
	}))
	if err := db.Update(func(tx *Tx) error { return tx.CommitStage("v3") }); !errors.Is(err, ErrNoStage) {
		t.Errorf("CommitStage without a stage: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
