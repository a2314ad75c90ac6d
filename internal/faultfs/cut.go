//go:build linux && (amd64 || arm64)

package faultfs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// restore rewrites the backing directory to its durable state: file
// contents first (through each log's own descriptor, wherever the file is
// now), then directory entries. f.mu is held.
func (f *FS) restore(tear bool) (CutStats, error) {
	var cs CutStats
	var errs []error
	inos := make([]uint64, 0, len(f.files))
	for ino := range f.files {
		inos = append(inos, ino)
	}
	slices.Sort(inos) // the same seed tears the same pages
	for _, ino := range inos {
		l := f.files[ino]
		if err := f.restoreFile(l, tear, &cs); err != nil {
			errs = append(errs, fmt.Errorf("faultfs: restore inode %d: %w", ino, err))
		}
		unix.Close(l.fd)
		delete(f.files, ino)
	}
	if len(f.dirs) > 0 {
		n, err := f.restoreDirs()
		cs.EntriesReverted = n
		if err != nil {
			errs = append(errs, err)
		}
	}
	clear(f.dirs)
	if err := os.RemoveAll(f.attic); err != nil {
		errs = append(errs, fmt.Errorf("faultfs: attic: %w", err))
	}
	return cs, errors.Join(errs...)
}

// page is a piece of a write that lies within one 4 KiB page of the file.
type page struct {
	off  int64
	data []byte
}

// restoreFile undoes a file's unsynced changes, newest first, and on a
// torn cut writes back a random subset of the pages of its last
// Options.TearWrites writes, in a random order.
func (f *FS) restoreFile(l *fileLog, tear bool, cs *CutStats) error {
	cs.Files++
	for i := len(l.recs) - 1; i >= 0; i-- {
		r := l.recs[i]
		if r.trunc {
			if err := unix.Ftruncate(l.fd, r.size); err != nil {
				return err
			}
			if err := pwriteFull(l.fd, r.old, r.off); err != nil {
				return err
			}
			continue
		}
		cs.WritesDropped++
		cs.BytesDropped += int64(len(r.data))
		if err := pwriteFull(l.fd, r.old, r.off); err != nil {
			return err
		}
		if err := unix.Ftruncate(l.fd, r.size); err != nil {
			return err
		}
	}
	if !tear {
		return nil
	}
	var pages []page
	for _, r := range l.recs[max(0, len(l.recs)-f.opts.TearWrites):] {
		if r.trunc {
			continue
		}
		for off, rest := r.off, r.data; len(rest) > 0; {
			n := min(int64(len(rest)), PageSize-off%PageSize)
			pages = append(pages, page{off: off, data: rest[:n]})
			off, rest = off+n, rest[n:]
		}
	}
	var kept []page
	for _, p := range pages {
		if f.rng.IntN(2) == 0 {
			kept = append(kept, p)
		}
	}
	f.rng.Shuffle(len(kept), func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
	for _, p := range kept {
		if err := pwriteFull(l.fd, p.data, p.off); err != nil {
			return err
		}
		cs.PagesTorn++
		cs.BytesDropped -= int64(len(p.data))
	}
	return nil
}

// where is an entry found in the backing tree or the attic: the directory
// that holds it (an open descriptor) and its name there.
type where struct {
	dirfd int
	name  string
	mode  uint32
}

// restoreDirs makes every recorded directory hold its durable entries
// again, from the root down. Entries that must go are moved to the attic
// first, since another directory may need them; entries that must come
// back are linked (files) or moved (directories) from wherever they are
// now, and a removed directory is made anew. It returns how many entries
// changed.
func (f *FS) restoreDirs() (int, error) {
	rs := &rebuild{f: f, index: map[uint64]where{}, seen: map[uint64]bool{}}
	defer rs.close()
	root, err := rs.open(unix.AT_FDCWD, f.backing)
	if err != nil {
		return 0, fmt.Errorf("faultfs: restore: %w", err)
	}
	if rs.attic, err = rs.open(unix.AT_FDCWD, f.attic); err != nil {
		return 0, fmt.Errorf("faultfs: restore: %w", err)
	}
	if err := rs.walk(root); err != nil {
		return 0, fmt.Errorf("faultfs: restore: %w", err)
	}
	if err := rs.walk(rs.attic); err != nil {
		return 0, fmt.Errorf("faultfs: restore: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(root, &st); err != nil {
		return 0, fmt.Errorf("faultfs: restore: %w", err)
	}
	err = rs.fix(root, st.Ino)
	return rs.changed, err
}

type rebuild struct {
	f       *FS
	fds     []int
	attic   int
	index   map[uint64]where
	seen    map[uint64]bool
	changed int
}

func (rs *rebuild) open(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	rs.fds = append(rs.fds, fd)
	return fd, nil
}

func (rs *rebuild) close() {
	for _, fd := range rs.fds {
		unix.Close(fd)
	}
}

// list returns the entries of the directory open at dirfd.
func list(dirfd int) (dirSnap, error) {
	dup, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dup)
	snap := dirSnap{}
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dup, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		var names []string
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
		for _, name := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return nil, err
			}
			snap[name] = dirent{ino: st.Ino, mode: st.Mode}
		}
	}
	return snap, nil
}

// walk indexes every entry under the directory open at dirfd.
func (rs *rebuild) walk(dirfd int) error {
	ents, err := list(dirfd)
	if err != nil {
		return err
	}
	for _, name := range sortedNames(ents) {
		e := ents[name]
		if _, ok := rs.index[e.ino]; !ok {
			rs.index[e.ino] = where{dirfd: dirfd, name: name, mode: e.mode}
		}
		if e.isDir() {
			sub, err := rs.open(dirfd, name)
			if err != nil {
				return err
			}
			if err := rs.walk(sub); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedNames(s dirSnap) []string {
	names := make([]string, 0, len(s))
	for name := range s {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// fix gives the directory open at dirfd, whose entries were recorded under
// inode ino, its durable entries, and recurses into its subdirectories.
func (rs *rebuild) fix(dirfd int, ino uint64) error {
	if rs.seen[ino] {
		return nil
	}
	rs.seen[ino] = true
	live, err := list(dirfd)
	if err != nil {
		return err
	}
	want, recorded := rs.f.dirs[ino]
	if !recorded {
		want = live
	}
	for _, name := range sortedNames(live) {
		e := live[name]
		if d, ok := want[name]; ok && sameEntry(d, e) {
			continue
		}
		rs.f.atticSeq++
		aside := fmt.Sprintf("moved-%d", rs.f.atticSeq)
		if err := unix.Renameat(dirfd, name, rs.attic, aside); err != nil {
			return fmt.Errorf("faultfs: restore: move %s aside: %w", name, err)
		}
		rs.index[e.ino] = where{dirfd: rs.attic, name: aside, mode: e.mode}
		delete(live, name)
		rs.changed++
	}
	for _, name := range sortedNames(want) {
		d := want[name]
		if _, ok := live[name]; ok {
			continue
		}
		rs.changed++
		w, found := rs.index[d.ino]
		found = found && w.mode&syscall.S_IFMT == d.mode&syscall.S_IFMT
		switch {
		case d.isDir() && found:
			if err := unix.Renameat(w.dirfd, w.name, dirfd, name); err != nil {
				rs.f.log.Warn("faultfs: restore: directory wanted twice", "name", name, "err", err)
				continue
			}
			rs.index[d.ino] = where{dirfd: dirfd, name: name, mode: w.mode}
		case d.isDir():
			if err := unix.Mkdirat(dirfd, name, d.mode&0o7777); err != nil {
				return fmt.Errorf("faultfs: restore: mkdir %s: %w", name, err)
			}
		case found:
			if err := unix.Linkat(w.dirfd, w.name, dirfd, name, 0); err != nil {
				return fmt.Errorf("faultfs: restore: link %s: %w", name, err)
			}
		default:
			rs.f.log.Warn("faultfs: restore: durable entry lost", "name", name, "ino", d.ino)
		}
	}
	for _, name := range sortedNames(want) {
		d := want[name]
		if !d.isDir() {
			continue
		}
		sub, err := rs.open(dirfd, name)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // wanted twice, kept in the other place
			}
			return err
		}
		if err := rs.fix(sub, d.ino); err != nil {
			return err
		}
	}
	return nil
}

func sameEntry(a, b dirent) bool {
	return a.ino == b.ino && a.mode&syscall.S_IFMT == b.mode&syscall.S_IFMT
}
