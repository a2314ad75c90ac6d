//go:build linux && (amd64 || arm64)

package faultfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// mountT mounts a fresh backing directory, filled by setup beforehand (so
// all of it is durable), on a fresh mount point.
func mountT(t *testing.T, opts Options, setup func(backing string)) (f *FS, backing, mnt string) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("faultfs needs /dev/fuse, which this machine lacks: %v", err)
	}
	dir := t.TempDir()
	backing, mnt = filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if setup != nil {
		setup(backing)
	}
	f, err := Mount(backing, mnt, opts)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() { unmountT(t, f) })
	return f, backing, mnt
}

// unmountT unmounts f unless it was cut.
func unmountT(t *testing.T, f *FS) {
	t.Helper()
	if err := f.Unmount(); err != nil && !errors.Is(err, ErrCut) {
		t.Errorf("unmount: %v", err)
	}
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeAt opens p, writes data at off, fsyncs it when sync is set and
// closes it.
func writeAt(t *testing.T, p string, data []byte, off int64, sync bool) {
	t.Helper()
	fl, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if _, err := fl.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := fl.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := fl.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", dir, err)
	}
}

// readOr returns p's contents, or "<missing>" when it does not exist.
func readOr(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCutFileContents(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, p string)
		want string
	}{
		{"write without fsync is lost", func(t *testing.T, p string) {
			writeAt(t, p, []byte("NEW"), 0, false)
		}, "old contents"},
		{"write with fsync is kept", func(t *testing.T, p string) {
			writeAt(t, p, []byte("NEW"), 0, true)
		}, "NEW contents"},
		{"growing write without fsync is lost", func(t *testing.T, p string) {
			writeAt(t, p, []byte(" and more"), 12, false)
		}, "old contents"},
		{"only writes after the last fsync are lost", func(t *testing.T, p string) {
			writeAt(t, p, []byte("NEW"), 0, true)
			writeAt(t, p, []byte("MORE"), 4, false)
		}, "NEW contents"},
		{"truncate without fsync is undone", func(t *testing.T, p string) {
			if err := os.Truncate(p, 3); err != nil {
				t.Fatal(err)
			}
			writeAt(t, p, []byte("-x"), 3, false)
		}, "old contents"},
		{"truncate with fsync is kept", func(t *testing.T, p string) {
			if err := os.Truncate(p, 3); err != nil {
				t.Fatal(err)
			}
			writeAt(t, p, nil, 0, true)
		}, "old"},
		{"write then O_TRUNC rewrite without fsync is undone", func(t *testing.T, p string) {
			writeFile(t, p, []byte("replaced"))
		}, "old contents"},
		{"fdatasync makes it durable too", func(t *testing.T, p string) {
			fl, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fl.Close()
			if _, err := fl.WriteAt([]byte("DAT"), 0); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Fdatasync(int(fl.Fd())); err != nil {
				t.Fatal(err)
			}
			fl.Close()
		}, "DAT contents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, backing, mnt := mountT(t, Options{}, func(b string) {
				writeFile(t, filepath.Join(b, "f"), []byte("old contents"))
			})
			tt.do(t, filepath.Join(mnt, "f"))
			if err := f.CutPower(false); err != nil {
				t.Fatalf("cut: %v", err)
			}
			if got := readOr(t, filepath.Join(backing, "f")); got != tt.want {
				t.Errorf("after cut: %q, want %q", got, tt.want)
			}
			// The durable state is served again.
			g, err := f.Remount()
			if err != nil {
				t.Fatalf("remount: %v", err)
			}
			defer unmountT(t, g)
			if got := readOr(t, filepath.Join(mnt, "f")); got != tt.want {
				t.Errorf("after remount: %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCutDirectoryEntries(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, mnt string)
		want map[string]string // path: contents or "<missing>"
	}{
		{"new file without directory fsync vanishes", func(t *testing.T, mnt string) {
			writeAt(t, filepath.Join(mnt, "new"), []byte("data"), 0, true)
		}, map[string]string{"new": "<missing>", "a": "A"}},
		{"new file with directory fsync stays", func(t *testing.T, mnt string) {
			writeAt(t, filepath.Join(mnt, "new"), []byte("data"), 0, true)
			syncDir(t, mnt)
		}, map[string]string{"new": "data"}},
		{"new file with directory fsync but not its own is empty", func(t *testing.T, mnt string) {
			writeAt(t, filepath.Join(mnt, "new"), []byte("data"), 0, false)
			syncDir(t, mnt)
		}, map[string]string{"new": ""}},
		{"rename without directory fsync reverts", func(t *testing.T, mnt string) {
			if err := os.Rename(filepath.Join(mnt, "a"), filepath.Join(mnt, "b")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"a": "A", "b": "B"}},
		{"rename with directory fsync stays", func(t *testing.T, mnt string) {
			if err := os.Rename(filepath.Join(mnt, "a"), filepath.Join(mnt, "b")); err != nil {
				t.Fatal(err)
			}
			syncDir(t, mnt)
		}, map[string]string{"a": "<missing>", "b": "A"}},
		{"unlink without directory fsync reverts", func(t *testing.T, mnt string) {
			if err := os.Remove(filepath.Join(mnt, "a")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"a": "A"}},
		{"unlink with directory fsync stays", func(t *testing.T, mnt string) {
			if err := os.Remove(filepath.Join(mnt, "a")); err != nil {
				t.Fatal(err)
			}
			syncDir(t, mnt)
		}, map[string]string{"a": "<missing>"}},
		{"file in a new directory vanishes with it", func(t *testing.T, mnt string) {
			if err := os.Mkdir(filepath.Join(mnt, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeAt(t, filepath.Join(mnt, "sub", "f"), []byte("x"), 0, true)
			syncDir(t, filepath.Join(mnt, "sub"))
		}, map[string]string{"sub/f": "<missing>", "sub": "<missing>"}},
		{"new directory synced all the way stays", func(t *testing.T, mnt string) {
			if err := os.Mkdir(filepath.Join(mnt, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeAt(t, filepath.Join(mnt, "sub", "f"), []byte("x"), 0, true)
			syncDir(t, filepath.Join(mnt, "sub"))
			syncDir(t, mnt)
		}, map[string]string{"sub/f": "x"}},
		{"removed directory comes back with its files", func(t *testing.T, mnt string) {
			if err := os.Remove(filepath.Join(mnt, "d", "in")); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(mnt, "d")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"d/in": "IN"}},
		{"rename across directories without fsync reverts", func(t *testing.T, mnt string) {
			if err := os.Rename(filepath.Join(mnt, "d", "in"), filepath.Join(mnt, "out")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"d/in": "IN", "out": "<missing>"}},
		{"atomic replace without directory fsync reverts", func(t *testing.T, mnt string) {
			writeAt(t, filepath.Join(mnt, "a.tmp"), []byte("A2"), 0, true)
			if err := os.Rename(filepath.Join(mnt, "a.tmp"), filepath.Join(mnt, "a")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"a": "A", "a.tmp": "<missing>"}},
		{"atomic replace with directory fsync stays", func(t *testing.T, mnt string) {
			writeAt(t, filepath.Join(mnt, "a.tmp"), []byte("A2"), 0, true)
			if err := os.Rename(filepath.Join(mnt, "a.tmp"), filepath.Join(mnt, "a")); err != nil {
				t.Fatal(err)
			}
			syncDir(t, mnt)
		}, map[string]string{"a": "A2", "a.tmp": "<missing>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, backing, mnt := mountT(t, Options{}, func(b string) {
				writeFile(t, filepath.Join(b, "a"), []byte("A"))
				writeFile(t, filepath.Join(b, "b"), []byte("B"))
				if err := os.Mkdir(filepath.Join(b, "d"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(b, "d", "in"), []byte("IN"))
			})
			tt.do(t, mnt)
			if err := f.CutPower(false); err != nil {
				t.Fatalf("cut: %v", err)
			}
			for p, want := range tt.want {
				full := filepath.Join(backing, p)
				if st, err := os.Stat(full); err == nil && st.IsDir() {
					continue
				}
				if got := readOr(t, full); got != want {
					t.Errorf("%s after cut: %q, want %q", p, got, want)
				}
			}
			if _, err := os.Stat(f.attic); !os.IsNotExist(err) {
				t.Errorf("attic %s still there after cut (%v)", f.attic, err)
			}
		})
	}
}

// TestTornWrite checks that a torn cut keeps, of the last write, whole
// pages only, old or new, and that a seed repeats its choice.
func TestTornWrite(t *testing.T) {
	const pages = 16
	old := bytes.Repeat([]byte{'o'}, pages*PageSize)
	// A write that starts and ends inside a page.
	const off = 100
	data := bytes.Repeat([]byte{'n'}, (pages-2)*PageSize+500)

	tornWith := func(t *testing.T, seed uint64) []byte {
		f, backing, mnt := mountT(t, Options{Seed: seed, TearWrites: 8}, func(b string) {
			writeFile(t, filepath.Join(b, "f"), old)
		})
		writeAt(t, filepath.Join(mnt, "f"), data, off, false)
		if err := f.CutPower(true); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(backing, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(old) {
			t.Fatalf("size %d, want %d", len(got), len(old))
		}
		cs := f.Stats().Cut
		if cs.WritesDropped == 0 || cs.WritesDropped > 8 {
			t.Errorf("cut stats %+v: want the write's requests dropped", cs)
		}
		// Every piece of a page the write covered is all old or all new,
		// and everything outside the write is old.
		torn := 0
		for p := 0; p < pages; p++ {
			lo, hi := max(p*PageSize, off), min((p+1)*PageSize, off+len(data))
			if lo >= hi {
				continue
			}
			piece := got[lo:hi]
			switch {
			case bytes.Count(piece, []byte{'n'}) == len(piece):
				torn++
			case bytes.Count(piece, []byte{'o'}) == len(piece):
			default:
				t.Errorf("seed %d: page %d is torn inside", seed, p)
			}
		}
		if !bytes.Equal(got[:off], old[:off]) || !bytes.Equal(got[off+len(data):], old[off+len(data):]) {
			t.Errorf("seed %d: bytes outside the write changed", seed)
		}
		if torn != cs.PagesTorn {
			t.Errorf("seed %d: %d new pages, stats say %d", seed, torn, cs.PagesTorn)
		}
		return got
	}

	mixed := 0
	for seed := uint64(1); seed <= 4; seed++ {
		got := tornWith(t, seed)
		n := bytes.Count(got, []byte{'n'})
		if n > 0 && n < len(data) {
			mixed++
		}
		if again := tornWith(t, seed); !bytes.Equal(got, again) {
			t.Errorf("seed %d tore differently the second time", seed)
		}
	}
	if mixed == 0 {
		t.Error("no seed left a mix of old and new pages")
	}
}

func TestFsyncDelay(t *testing.T) {
	f, _, mnt := mountT(t, Options{}, nil)
	const d = 150 * time.Millisecond
	f.SetFsyncDelay(d)
	fl, err := os.Create(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if _, err := fl.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := fl.Sync(); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: the stall is a sleep of at least d.
	if took := time.Since(start); took < d {
		t.Errorf("fsync took %v, want at least %v", took, d)
	}
	f.SetFsyncDelay(0)
	if err := fl.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := f.Stats().Fsyncs; got != 2 {
		t.Errorf("fsyncs %d, want 2", got)
	}
}

func TestFailAfter(t *testing.T) {
	tests := []struct {
		name  string
		op    Op
		n     int
		errno syscall.Errno
	}{
		{"writes fail with EIO after 3", OpWrite, 3, syscall.EIO},
		{"writes fail with ENOSPC at once", OpWrite, 0, syscall.ENOSPC},
		{"fsyncs fail with EIO after 2", OpFsync, 2, syscall.EIO},
		{"fsyncs fail with ENOSPC after 1", OpFsync, 1, syscall.ENOSPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, backing, mnt := mountT(t, Options{}, func(b string) {
				writeFile(t, filepath.Join(b, "f"), nil)
			})
			fl, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fl.Close()
			if err := f.FailAfter(tt.op, tt.n, tt.errno); err != nil {
				t.Fatal(err)
			}
			do := func(i int) error {
				if tt.op == OpWrite {
					_, err := fl.WriteAt([]byte{byte('a' + i)}, int64(i))
					return err
				}
				return fl.Sync()
			}
			for i := range tt.n {
				if err := do(i); err != nil {
					t.Fatalf("%v %d of %d: %v", tt.op, i+1, tt.n, err)
				}
			}
			for i := range 2 {
				if err := do(tt.n + i); !errors.Is(err, tt.errno) {
					t.Fatalf("%v %d: %v, want %v", tt.op, tt.n+i+1, err, tt.errno)
				}
			}
			if got := f.Stats().Failed; got != 2 {
				t.Errorf("failed %d, want 2", got)
			}
			if tt.op == OpWrite {
				if got := readOr(t, filepath.Join(backing, "f")); len(got) != tt.n {
					t.Errorf("backing %q after failed writes, want %d bytes", got, tt.n)
				}
			}
			f.Heal()
			if err := do(tt.n + 2); err != nil {
				t.Fatalf("after heal: %v", err)
			}
		})
	}
	t.Run("bad faults are refused", func(t *testing.T) {
		f, _, _ := mountT(t, Options{}, nil)
		for _, bad := range []struct {
			op    Op
			n     int
			errno syscall.Errno
		}{{0, 1, syscall.EIO}, {OpWrite, -1, syscall.EIO}, {OpFsync, 1, 0}} {
			if err := f.FailAfter(bad.op, bad.n, bad.errno); !errors.Is(err, ErrBadOp) {
				t.Errorf("FailAfter(%v, %d, %d) = %v, want ErrBadOp", bad.op, bad.n, bad.errno, err)
			}
		}
	})
}

// TestFailedFsyncKeepsNothing checks that writes before a failed fsync
// are still lost at a cut.
func TestFailedFsyncKeepsNothing(t *testing.T) {
	f, backing, mnt := mountT(t, Options{}, func(b string) {
		writeFile(t, filepath.Join(b, "f"), []byte("old"))
	})
	if err := f.FailAfter(OpFsync, 0, syscall.EIO); err != nil {
		t.Fatal(err)
	}
	fl, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fl.WriteAt([]byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fl.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync: %v, want EIO", err)
	}
	fl.Close()
	if err := f.CutPower(false); err != nil {
		t.Fatal(err)
	}
	if got := readOr(t, filepath.Join(backing, "f")); got != "old" {
		t.Errorf("after cut: %q, want %q", got, "old")
	}
}

func TestFlock(t *testing.T) {
	_, _, mnt := mountT(t, Options{}, nil)
	p := filepath.Join(mnt, "lock")
	a, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := syscall.Flock(int(a.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("first lock: %v", err)
	}
	if err := syscall.Flock(int(b.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("second lock: %v, want EWOULDBLOCK", err)
	}
	if err := syscall.Flock(int(a.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(b.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
}

func TestDirectoryOperations(t *testing.T) {
	f, backing, mnt := mountT(t, Options{}, nil)
	sub := filepath.Join(mnt, "data")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "a", "c"} {
		if err := os.WriteFile(filepath.Join(sub, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(sub, "c"), 0o640); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Errorf("readdir %v", names)
	}
	for name, want := range map[string]os.FileMode{"a": 0o600, "c": 0o640} {
		st, err := os.Stat(filepath.Join(sub, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want || st.Size() != 1 {
			t.Errorf("%s: mode %v size %d, want %v size 1", name, st.Mode(), st.Size(), want)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		writeAt(t, filepath.Join(sub, name), nil, 0, true)
	}
	syncDir(t, sub)
	syncDir(t, mnt)
	if err := f.CutPower(false); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if got := readOr(t, filepath.Join(backing, "data", name)); got != name {
			t.Errorf("%s after cut: %q", name, got)
		}
	}
	if st, err := os.Stat(filepath.Join(backing, "data", "c")); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("c after cut: %v %v", st, err)
	}
}

func TestCutTwice(t *testing.T) {
	f, _, _ := mountT(t, Options{}, nil)
	if err := f.CutPower(false); err != nil {
		t.Fatal(err)
	}
	if err := f.CutPower(false); !errors.Is(err, ErrCut) {
		t.Errorf("second cut: %v, want ErrCut", err)
	}
	if err := f.Unmount(); !errors.Is(err, ErrCut) {
		t.Errorf("unmount after cut: %v, want ErrCut", err)
	}
}

// TestCutWithFileOpen checks that a cut goes ahead while a file is still
// open on the mount, and that the open file can change nothing after it.
func TestCutWithFileOpen(t *testing.T) {
	f, backing, mnt := mountT(t, Options{}, func(b string) {
		writeFile(t, filepath.Join(b, "f"), []byte("old"))
	})
	fl, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if _, err := fl.WriteAt([]byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.CutPower(false); err != nil {
		t.Fatalf("cut: %v", err)
	}
	if _, err := fl.WriteAt([]byte("late"), 0); err == nil {
		t.Error("write after the cut succeeded")
	}
	if err := fl.Sync(); err == nil {
		t.Error("fsync after the cut succeeded")
	}
	if got := readOr(t, filepath.Join(backing, "f")); got != "old" {
		t.Errorf("after cut: %q, want %q", got, "old")
	}
}
