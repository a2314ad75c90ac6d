package store

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// corruptEveryNth overwrites every nth page of the file at path (page 0,
// a meta page, included) with random bytes.
func corruptEveryNth(t testing.TB, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	page := int64(os.Getpagesize())
	junk := make([]byte, page)
	r := rand.New(rand.NewPCG(7, 7))
	for off := int64(0); off < fi.Size(); off += int64(n) * page {
		for i := range junk {
			junk[i] = byte(r.Uint32())
		}
		if _, err := f.WriteAt(junk, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// fill writes enough keys that the file has many pages.
func fill(t *testing.T, db *DB, prefix string, n int) {
	t.Helper()
	must(t, db.Update(func(tx *Tx) error {
		for i := range n {
			if err := tx.PutKey(&Key{ID: prefix + strings.Repeat("k", 50) + strconv.Itoa(i), Name: strings.Repeat("n", 200)}); err != nil {
				return err
			}
		}
		return nil
	}))
}

func TestRecover(t *testing.T) {
	t.Run("sound", func(t *testing.T) {
		dir := t.TempDir()
		r, err := Recover(dir, t0) // no file yet
		if r != nil || err != nil {
			t.Fatalf("Recover(empty dir) = %+v, %v", r, err)
		}
		db := openAt(t, dir, Options{})
		fill(t, db, "a", 500)
		db.Close()
		if r, err := Recover(dir, t0); r != nil || err != nil {
			t.Fatalf("Recover(sound) = %+v, %v", r, err)
		}
	})
	for _, withBackup := range []bool{true, false} {
		name := map[bool]string{true: "backup", false: "no backup"}[withBackup]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db := openAt(t, dir, Options{})
			fill(t, db, "a", 500)
			if withBackup {
				if err := db.Backup(dir); err != nil {
					t.Fatal(err)
				}
				if BackupTime(dir).IsZero() {
					t.Fatal("no backup time")
				}
			}
			fill(t, db, "b", 500) // after the backup: lost with the file
			db.Close()
			path := filepath.Join(dir, DBFile)
			corruptEveryNth(t, path, 7)
			if err := CheckFile(path); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("CheckFile(corrupt) = %v", err)
			}
			r, err := Recover(dir, t0)
			if err != nil || r == nil {
				t.Fatalf("Recover = %+v, %v", r, err)
			}
			want := map[bool]string{true: RestoredBackup, false: RestoredEmpty}[withBackup]
			if r.From != want || r.MovedTo != path+".corrupt-20260301T120000Z" || r.Problem == "" {
				t.Errorf("recovery %+v", r)
			}
			if _, err := os.Stat(r.MovedTo); err != nil {
				t.Errorf("corrupt file not kept: %v", err)
			}
			db = openAt(t, dir, Options{})
			defer db.Close()
			if err := db.View(func(tx *Tx) error {
				if got, wantN := tx.KeyCount(), map[bool]int{true: 500, false: 0}[withBackup]; got != wantN {
					t.Errorf("keys after recovery %d, want %d", got, wantN)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			checkConsistent(t, db)
		})
	}
	t.Run("locked", func(t *testing.T) {
		db, dir := openTest(t, Options{})
		_ = db
		if _, err := Recover(dir, t0); !errors.Is(err, ErrLocked) {
			t.Fatalf("Recover(open elsewhere) = %v", err)
		}
	})
}

// TestRestoreKeepsSeqsUnique: a backup put back after a corrupt database
// has an older outbox sequence than the file it replaces; the floor kept
// beside the database makes the restored box go on above every seq the
// lost file handed out (a seq never names two events), also when it died
// between the restore and its first open, and only once.
func TestRestoreKeepsSeqsUnique(t *testing.T) {
	for _, withBackup := range []bool{true, false} {
		t.Run(map[bool]string{true: "backup", false: "no backup"}[withBackup], func(t *testing.T) {
			dir := t.TempDir()
			db := openAt(t, dir, Options{SeqFloorStep: 5})
			fill(t, db, "a", 300)
			appendN(t, db, "before", 3)
			if withBackup {
				must(t, db.Backup(dir))
			}
			fill(t, db, "b", 300)
			handed := appendN(t, db, "after", 9) // lost with the file
			last := handed[len(handed)-1].Seq
			db.Close()
			corruptEveryNth(t, filepath.Join(dir, DBFile), 7)
			if r, err := Recover(dir, t0); err != nil || r == nil {
				t.Fatalf("Recover = %+v, %v", r, err)
			}
			// The first open after the restore may die before it raised
			// the sequence: the mark stays until one has.
			if _, err := os.Stat(filepath.Join(dir, restoredMark)); err != nil {
				t.Fatalf("no restore mark after Recover: %v", err)
			}
			db = openAt(t, dir, Options{SeqFloorStep: 5})
			next := appendN(t, db, "restored", 2)
			if next[0].Seq <= last {
				t.Fatalf("after the restore seq %d was handed out again (the lost file had gone up to %d)", next[0].Seq, last)
			}
			if _, err := os.Stat(filepath.Join(dir, restoredMark)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the restore mark outlived the open that used it: %v", err)
			}
			db.Close()
			// A later open goes on where it was, without another jump.
			db = openAt(t, dir, Options{SeqFloorStep: 5})
			if again := appendN(t, db, "later", 1); again[0].Seq != next[1].Seq+1 {
				t.Errorf("the next open went from seq %d to %d", next[1].Seq, again[0].Seq)
			}
		})
	}
}
