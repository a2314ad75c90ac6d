//go:build linux && (amd64 || arm64)

package faultfs

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzUndoLog drives the undo log with writes, truncates and fsyncs of one
// file, decoded from the input, and checks against a model that the live
// file is what was written and that a cut leaves exactly the contents as
// of the last fsync. It needs no mount.
func FuzzUndoLog(f *testing.F) {
	f.Add([]byte{0, 0, 10, 0, 20, 'a', 2, 0, 0, 0, 0, 0, 1, 0, 5, 0, 0, 0})
	f.Add([]byte{0, 1, 0, 0, 200, 'b', 1, 0, 3, 0, 0, 0, 0, 0, 1, 0, 30, 'c'})
	f.Add(bytes.Repeat([]byte{0, 0, 255, 1, 255, 'x', 1, 0, 7, 0, 0, 0}, 4))
	f.Fuzz(func(t *testing.T, in []byte) {
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, []byte("durable start"), 0o600); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(p, unix.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		fs := &FS{files: map[uint64]*fileLog{}, dirs: map[uint64]dirSnap{}, opts: Options{TearWrites: 1},
			rng: rand.New(rand.NewPCG(1, 2))}
		durable, live := []byte("durable start"), []byte("durable start")
		// Each op is 6 bytes: kind, offset (2 bytes, in 16-byte units),
		// length (2 bytes), fill byte.
		for ; len(in) >= 6; in = in[6:] {
			off := int64(binary.BigEndian.Uint16(in[1:3])) * 16 % (256 << 10)
			n := int(binary.BigEndian.Uint16(in[3:5])) % 20000
			switch in[0] % 3 {
			case 0:
				data := bytes.Repeat([]byte{in[5]}, n)
				if _, errno := fs.write(st.Ino, fd, data, off); errno != 0 {
					t.Fatalf("write: %v", errno)
				}
				if n == 0 {
					continue // writes nothing, not even a hole
				}
				if grow := off + int64(n) - int64(len(live)); grow > 0 {
					live = append(live, make([]byte, grow)...)
				}
				copy(live[off:], data)
			case 1:
				size := off + int64(n)
				errno := fs.truncate(st.Ino, openFd(fd), size, func() syscall.Errno {
					return errnoOf(unix.Ftruncate(fd, size))
				})
				if errno != 0 {
					t.Fatalf("truncate: %v", errno)
				}
				if size < int64(len(live)) {
					live = live[:size]
				} else {
					live = append(live, make([]byte, size-int64(len(live)))...)
				}
			case 2:
				if errno := fs.syncFile(st.Ino); errno != 0 {
					t.Fatalf("fsync: %v", errno)
				}
				durable = append([]byte(nil), live...)
			}
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, live) {
			t.Fatalf("live file has %d bytes, model %d", len(got), len(live))
		}
		// An odd input tears: pages of the last write may survive.
		tear := len(in)%2 == 1
		var last *record
		if l := fs.files[st.Ino]; l != nil {
			if r := l.recs[max(0, len(l.recs)-1):]; len(r) == 1 && !r[0].trunc {
				last = &r[0]
			}
			var cs CutStats
			if err := fs.restoreFile(l, tear, &cs); err != nil {
				t.Fatal(err)
			}
			unix.Close(l.fd)
		}
		got, _ := os.ReadFile(p)
		want := durable
		if tear && last != nil {
			// Each page's piece of the last write is there whole or not at
			// all; nothing else differs from the durable contents.
			want = append([]byte(nil), durable...)
			for off, rest := last.off, last.data; len(rest) > 0; {
				n := min(int64(len(rest)), PageSize-off%PageSize)
				if end := off + n; end <= int64(len(got)) && bytes.Equal(got[off:end], rest[:n]) {
					if grow := end - int64(len(want)); grow > 0 {
						want = append(want, make([]byte, grow)...)
					}
					copy(want[off:], rest[:n])
				}
				off, rest = off+n, rest[n:]
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("after the cut (tear %v) the file has %d bytes, model %d", tear, len(got), len(want))
		}
	})
}
