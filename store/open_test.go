package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenCreatesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "smartbox")
	db := openAt(t, dir, Options{})

	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("data dir: %v, %v", fi, err)
	}
	if got, want := db.Path(), filepath.Join(dir, DBFile); got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile)); err != nil {
		t.Errorf("database file: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, SecretFile))
	if err != nil {
		t.Fatalf("secret file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret mode = %v, want 0600", fi.Mode().Perm())
	}
	if fi.Size() != secretSize {
		t.Errorf("secret size = %d, want %d", fi.Size(), secretSize)
	}
	// Nothing but the secret and the database: no temporary file is left
	// behind.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != SecretFile && e.Name() != DBFile {
			t.Errorf("left behind in the data dir: %s", e.Name())
		}
	}
	// Every bucket the layout names exists after the first open.
	err = db.Bolt().View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s missing", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSecretReusedOnReopen(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, dir, Options{})
	h1 := db.CodeHash("246810")
	secret1, err := os.ReadFile(filepath.Join(dir, SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, dir, Options{})
	if h2 := db.CodeHash("246810"); !bytes.Equal(h1, h2) {
		t.Errorf("CodeHash changed across reopen: %x then %x", h1, h2)
	}
	secret2, err := os.ReadFile(filepath.Join(dir, SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret1, secret2) {
		t.Error("secret file rewritten on reopen")
	}
}

func TestCodeHash(t *testing.T) {
	a, _ := openTest(t, Options{})
	b, _ := openTest(t, Options{})

	h := a.CodeHash("1234")
	if len(h) != 32 {
		t.Fatalf("hash has %d bytes, want 32", len(h))
	}
	if !bytes.Equal(h, a.CodeHash("1234")) {
		t.Error("same code, same box: hashes differ")
	}
	if bytes.Equal(h, a.CodeHash("12345")) {
		t.Error("different codes hash the same")
	}
	if bytes.Equal(h, b.CodeHash("1234")) {
		t.Error("two boxes (two secrets) hash a code the same")
	}
}

// TestCodeHashIsHMAC checks CodeHash against HMAC-SHA256 under the secret
// file, for codes hashed one after another and from several goroutines at
// once: a reused hash state must not carry one code into the next.
func TestCodeHashIsHMAC(t *testing.T) {
	db, dir := openTest(t, Options{})
	secret, err := os.ReadFile(filepath.Join(dir, SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	want := func(code string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(code))
		return m.Sum(nil)
	}
	codes := []string{"1234", "12345678", "0000", "9999999999999999", "1234", "4321"}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			if got := db.CodeHash(code); !bytes.Equal(got, want(code)) {
				t.Errorf("CodeHash(%s) = %x, want %x", code, got, want(code))
			}
		})
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(codes)*100)
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				code := codes[(g+i)%len(codes)]
				if got := db.CodeHash(code); !bytes.Equal(got, want(code)) {
					errs <- code
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for code := range errs {
		t.Errorf("concurrent CodeHash(%s) is wrong", code)
	}
}

func TestOpenBadSecret(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret []byte
	}{
		{"empty", nil},
		{"short", bytes.Repeat([]byte{7}, secretSize-1)},
		{"long", bytes.Repeat([]byte{7}, secretSize+1)},
		{"hex text", []byte("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, SecretFile)
			if err := os.WriteFile(path, tc.secret, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(dir, Options{})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded with a corrupt secret")
			}
			if !errors.Is(err, ErrBadSecret) {
				t.Fatalf("Open: %v, want ErrBadSecret", err)
			}
			// A bad secret is reported, never silently replaced: the codes
			// already indexed under the real one would all stop matching.
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.secret) {
				t.Error("corrupt secret file was overwritten")
			}
		})
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	first := openAt(t, dir, Options{})

	done := make(chan error, 1)
	go func() {
		db, err := Open(dir, Options{Timeout: 50 * time.Millisecond})
		if err == nil {
			db.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open: %v, want ErrLocked", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("second Open of a locked database did not return")
	}

	// Once the holder closes, the file opens again.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := openAt(t, dir, Options{Timeout: 50 * time.Millisecond})
	if second.Boot() != 2 {
		t.Errorf("Boot() = %d after the failed open, want 2", second.Boot())
	}
}

func TestOpenNewerSchema(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, dir, Options{})
	err := db.Bolt().Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaSchema, be64(SchemaVersion+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	db2, err := Open(dir, Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		db2.Close()
		t.Fatal("Open succeeded on a newer schema")
	}
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open: %v, want ErrNewerSchema", err)
	}

	// The failed Open let go of the file (no lock left held) and did not
	// touch it: the schema is still the newer one and the boot not counted.
	bdb, err := bolt.Open(filepath.Join(dir, DBFile), 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("reopen after failed Open: %v", err)
	}
	defer bdb.Close()
	err = bdb.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := getU64(meta, metaSchema); v != SchemaVersion+1 {
			t.Errorf("schema = %d, want %d", v, SchemaVersion+1)
		}
		if v := getU64(meta, metaBoots); v != 1 {
			t.Errorf("boots = %d, want 1", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenNotADatabase(t *testing.T) {
	dir := t.TempDir()
	junk := bytes.Repeat([]byte("not a bbolt file "), 1024)
	if err := os.WriteFile(filepath.Join(dir, DBFile), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SecretFile), bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir, Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded on a file that is not a database")
	}
	if errors.Is(err, ErrLocked) || errors.Is(err, ErrNewerSchema) || errors.Is(err, ErrBadSecret) {
		t.Errorf("Open: %v: reported as the wrong failure", err)
	}
}

// TestOpenRefusesLostSecret: a database whose secret is gone would match no
// code again, silently; Open refuses it and makes no new secret.
func TestOpenRefusesLostSecret(t *testing.T) {
	dir := t.TempDir()
	openAt(t, dir, Options{}).Close()
	if err := os.Remove(filepath.Join(dir, SecretFile)); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir, Options{})
	if err == nil {
		db.Close()
		t.Fatal("opened a database without its secret")
	}
	if !errors.Is(err, ErrBadSecret) {
		t.Fatalf("Open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, SecretFile)); !os.IsNotExist(err) {
		t.Fatal("a new secret was made for an old database")
	}
}

func TestBootCounts(t *testing.T) {
	dir := t.TempDir()
	for want := uint64(1); want <= 3; want++ {
		db := openAt(t, dir, Options{})
		if got := db.Boot(); got != want {
			t.Errorf("open #%d: Boot() = %d", want, got)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPanicBreaksTheDB: a panic that goes through a transaction goes on
// with its value, and the DB then refuses every call with ErrBroken —
// Close included, which returns at once rather than wait for a writer lock
// the panic may have left held. The file itself is left as it was and
// opens again.
func TestPanicBreaksTheDB(t *testing.T) {
	for _, kind := range []string{"update", "view"} {
		t.Run(kind, func(t *testing.T) {
			d, dir := openTest(t, Options{})
			if err := d.Update(func(tx *Tx) error { _, err := tx.Append("device.started", t0, nil); return err }); err != nil {
				t.Fatal(err)
			}
			boom := func(*Tx) error { panic("boom") }
			got := func() (r any) {
				defer func() { r = recover() }()
				if kind == "update" {
					d.Update(boom)
				} else {
					d.View(boom)
				}
				return nil
			}()
			if got != "boom" {
				t.Fatalf("the panic came out as %v, want boom", got)
			}
			if !d.Broken() {
				t.Fatal("Broken() is false after a panic")
			}
			ran := false
			for name, err := range map[string]error{
				"Update": d.Update(func(*Tx) error { ran = true; return nil }),
				"View":   d.View(func(*Tx) error { ran = true; return nil }),
				"Close":  d.Close(),
			} {
				if !errors.Is(err, ErrBroken) {
					t.Errorf("%s after the panic: %v, want ErrBroken", name, err)
				}
			}
			if ran {
				t.Error("a transaction ran on the broken DB")
			}
			if _, err := d.NextSession(); !errors.Is(err, ErrBroken) {
				t.Errorf("NextSession after the panic: %v, want ErrBroken", err)
			}
			// What the process leaves behind is the file as committed.
			d.db.Close()
			again := openAt(t, dir, Options{})
			st, err := again.OutboxStats()
			if err != nil || st.Depth != 1 {
				t.Fatalf("reopened: depth %d (%v), want the one event committed before the panic", st.Depth, err)
			}
		})
	}
}
