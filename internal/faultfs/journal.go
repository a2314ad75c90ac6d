//go:build linux && (amd64 || arm64)

package faultfs

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

// record is one unsynced change of a file: a write of data at off, or a
// truncate to off (data nil). old holds the bytes it replaced (for a
// truncate, those it cut off) and size the file's size before it.
type record struct {
	trunc bool
	off   int64
	data  []byte
	old   []byte
	size  int64
}

// fileLog is a file's undo log since its last fsync. fd is its own
// read-write descriptor of the backing inode, which outlives renames,
// unlinks and the handles that wrote.
type fileLog struct {
	fd   int
	recs []record
}

// dirSnap is a directory's durable entries: name to inode and mode.
type dirSnap map[string]dirent

type dirent struct {
	ino  uint64
	mode uint32
}

func (d dirent) isDir() bool { return d.mode&syscall.S_IFMT == syscall.S_IFDIR }

// logFor returns the undo log of inode ino, opening one with open when
// there is none. f.mu is held.
func (f *FS) logFor(ino uint64, open func() (int, error)) (*fileLog, error) {
	if l := f.files[ino]; l != nil {
		return l, nil
	}
	fd, err := open()
	if err != nil {
		return nil, err
	}
	l := &fileLog{fd: fd}
	f.files[ino] = l
	return l, nil
}

// openFd reopens a descriptor read-write through /proc, which works for
// unlinked files too.
func openFd(fd int) func() (int, error) {
	return func() (int, error) {
		return unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDWR|unix.O_CLOEXEC, 0)
	}
}

func openPath(p string) func() (int, error) {
	return func() (int, error) {
		return unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
}

func fileSize(fd int) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

// preadFull reads n bytes at off (fewer at end of file).
func preadFull(fd int, off int64, n int64) ([]byte, error) {
	buf := make([]byte, n)
	got := 0
	for int64(got) < n {
		m, err := unix.Pread(fd, buf[got:], off+int64(got))
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		got += m
	}
	return buf[:got], nil
}

func pwriteFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// write writes data at off through fd, the descriptor of a handle of inode
// ino, recording what it replaces. f.mu is held.
func (f *FS) write(ino uint64, fd int, data []byte, off int64) (uint32, syscall.Errno) {
	if f.cut {
		return 0, syscall.EIO
	}
	if errno := f.inject(OpWrite); errno != 0 {
		return 0, errno
	}
	l, err := f.logFor(ino, openFd(fd))
	if err != nil {
		return 0, errnoOf(err)
	}
	size, err := fileSize(l.fd)
	if err != nil {
		return 0, errnoOf(err)
	}
	var old []byte
	if off < size {
		if old, err = preadFull(l.fd, off, min(int64(len(data)), size-off)); err != nil {
			return 0, errnoOf(err)
		}
	}
	n, err := unix.Pwrite(fd, data, off)
	if n > 0 {
		f.stats.Writes++
		l.recs = append(l.recs, record{
			off:  off,
			data: append([]byte(nil), data[:n]...),
			old:  old[:min(len(old), n)],
			size: size,
		})
	}
	if err != nil {
		return uint32(max(n, 0)), errnoOf(err)
	}
	return uint32(n), 0
}

// truncate records a change of inode ino's size to newSize, made by do.
// open opens the inode read-write when it has no log yet. f.mu is held.
func (f *FS) truncate(ino uint64, open func() (int, error), newSize int64, do func() syscall.Errno) syscall.Errno {
	if f.cut {
		return syscall.EIO
	}
	if errno := f.inject(OpWrite); errno != 0 {
		return errno
	}
	l, err := f.logFor(ino, open)
	if err != nil {
		return errnoOf(err)
	}
	size, err := fileSize(l.fd)
	if err != nil {
		return errnoOf(err)
	}
	var old []byte
	if newSize < size {
		if old, err = preadFull(l.fd, newSize, size-newSize); err != nil {
			return errnoOf(err)
		}
	}
	if errno := do(); errno != 0 {
		return errno
	}
	f.stats.Truncates++
	l.recs = append(l.recs, record{trunc: true, off: newSize, old: old, size: size})
	return 0
}

// syncFile makes inode ino's contents durable. f.mu is held.
func (f *FS) syncFile(ino uint64) syscall.Errno {
	if f.cut {
		return syscall.EIO
	}
	if errno := f.inject(OpFsync); errno != 0 {
		return errno
	}
	if l := f.files[ino]; l != nil {
		unix.Close(l.fd)
		delete(f.files, ino)
	}
	f.stats.Fsyncs++
	return 0
}

// syncDir makes directory ino's entries durable. f.mu is held.
func (f *FS) syncDir(ino uint64) syscall.Errno {
	if f.cut {
		return syscall.EIO
	}
	if errno := f.inject(OpFsync); errno != 0 {
		return errno
	}
	delete(f.dirs, ino)
	f.stats.Fsyncs++
	if len(f.dirs) == 0 && len(f.inAttic) > 0 {
		// No durable entry can name a removed inode any more.
		if err := f.resetAttic(); err != nil {
			f.log.Warn("faultfs: emptying the attic", "err", err)
		}
	}
	return 0
}

// snapDir records directory dir's entries as durable unless it already has
// a record, before a change to them. f.mu is held.
func (f *FS) snapDir(dir string) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return errnoOf(err)
	}
	if _, ok := f.dirs[st.Ino]; ok {
		return 0
	}
	snap, err := listDir(dir)
	if err != nil {
		return errnoOf(err)
	}
	f.dirs[st.Ino] = snap
	return 0
}

func listDir(dir string) (dirSnap, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	snap := make(dirSnap, len(ents))
	for _, e := range ents {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, e.Name()), &st); err != nil {
			return nil, err
		}
		snap[e.Name()] = dirent{ino: st.Ino, mode: st.Mode}
	}
	return snap, nil
}

// keep hard-links the file at p into the attic before its name goes away,
// so that a cut can bring it back. Directories are made anew instead.
// f.mu is held.
func (f *FS) keep(p string) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		if err == syscall.ENOENT {
			return 0 // the operation itself will say so
		}
		return errnoOf(err)
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR || f.inAttic[st.Ino] {
		return 0
	}
	if err := syscall.Link(p, filepath.Join(f.attic, fmt.Sprint(st.Ino))); err != nil {
		return errnoOf(err)
	}
	f.inAttic[st.Ino] = true
	return 0
}

// closeLogs drops every undo log. f.mu is held.
func (f *FS) closeLogs() {
	for ino, l := range f.files {
		unix.Close(l.fd)
		delete(f.files, ino)
	}
	clear(f.dirs)
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return fs.ToErrno(err)
}
