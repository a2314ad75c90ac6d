//go:build linux && (amd64 || arm64)

package faultfs

import (
	"context"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// node is a loopback node whose changes are recorded before they reach the
// backing directory.
type node struct {
	*fs.LoopbackNode
	fsys *FS
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeWritever       = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)

	_ fs.FileReader    = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileSetattrer = (*file)(nil)
	_ fs.FileLseeker   = (*file)(nil)

	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
)

// WrapChild makes every node of the tree a node of this file system.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fsys: n.fsys}
}

// backing returns the node's path in the backing directory.
func (n *node) backing() string {
	return filepath.Join(n.RootData.Path, n.Path(n.RootData.RootNode.EmbeddedInode()))
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut {
		return nil, 0, syscall.EIO
	}
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if errno := n.truncatePath(n.backing(), 0, func() syscall.Errno { return 0 }); errno != 0 {
			return nil, 0, errno
		}
	}
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	h, errno := wrapFile(ctx, fh)
	return h, fl, errno
}

// truncatePath records that the file at p goes to size, then runs do (which
// may do it). f.mu is held.
func (n *node) truncatePath(p string, size int64, do func() syscall.Errno) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return errnoOf(err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return do()
	}
	return n.fsys.truncate(st.Ino, openPath(p), size, func() syscall.Errno {
		if errno := do(); errno != 0 {
			return errno
		}
		return errnoOf(syscall.Truncate(p, size))
	})
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if errno := n.changeDir(); errno != 0 {
		return nil, nil, 0, errno
	}
	p := filepath.Join(n.backing(), name)
	if flags&syscall.O_TRUNC != 0 {
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil {
			if errno := n.truncatePath(p, 0, func() syscall.Errno { return 0 }); errno != 0 {
				return nil, nil, 0, errno
			}
		}
	}
	ch, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	h, errno := wrapFile(ctx, fh)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, h, fl, 0
}

func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut {
		return nil, nil, 0, syscall.EIO
	}
	ch, fh, fl, errno := n.LoopbackNode.Tmpfile(ctx, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	h, errno := wrapFile(ctx, fh)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, h, fl, 0
}

// changeDir records this directory's entries before they change.
// f.mu is held.
func (n *node) changeDir() syscall.Errno {
	if n.fsys.cut {
		return syscall.EIO
	}
	return n.fsys.snapDir(n.backing())
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if errno := n.changeDir(); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if errno := n.changeDir(); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if errno := n.changeDir(); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Symlink(ctx, target, name, out)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if errno := n.changeDir(); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if errno := n.changeDir(); errno != 0 {
		return errno
	}
	if errno := n.fsys.keep(filepath.Join(n.backing(), name)); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if errno := n.changeDir(); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if errno := n.changeDir(); errno != 0 {
		return errno
	}
	if errno := np.changeDir(); errno != 0 {
		return errno
	}
	if flags&unix.RENAME_EXCHANGE == 0 {
		if errno := n.fsys.keep(filepath.Join(np.backing(), newName)); errno != 0 {
			return errno
		}
	}
	return n.LoopbackNode.Rename(ctx, name, np, newName, flags)
}

func (n *node) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, ok := fh.(*file)
	if !ok {
		return 0, syscall.EBADF
	}
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	return n.fsys.write(h.ino, h.fd, data, off)
}

func (n *node) Writev(ctx context.Context, fh fs.FileHandle, data [][]byte, off int64) (uint32, syscall.Errno) {
	var all []byte
	for _, d := range data {
		all = append(all, d...)
	}
	return n.Write(ctx, fh, all, off)
}

// Fsync makes a file's contents, or a directory's entries, durable, after
// the fsync delay.
func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	f := n.fsys
	if d := f.fsyncDelay(); d > 0 {
		f.opts.Clock.Sleep(d)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut {
		return syscall.EIO
	}
	var ino uint64
	if h, ok := fh.(*file); ok {
		ino = h.ino
	} else {
		var st syscall.Stat_t
		if err := syscall.Lstat(n.backing(), &st); err != nil {
			return errnoOf(err)
		}
		ino = st.Ino
	}
	if n.IsDir() {
		return f.syncDir(ino)
	}
	return f.syncFile(ino)
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut {
		return syscall.EIO
	}
	size, ok := in.GetSize()
	if !ok {
		return n.LoopbackNode.Setattr(ctx, fh, in, out)
	}
	var open func() (int, error)
	var ino uint64
	if h, isFile := fh.(*file); isFile {
		open, ino = openFd(h.fd), h.ino
	} else {
		p := n.backing()
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return errnoOf(err)
		}
		open, ino = openPath(p), st.Ino
	}
	return f.truncate(ino, open, int64(size), func() syscall.Errno {
		return n.LoopbackNode.Setattr(ctx, fh, in, out)
	})
}

// OpendirHandle hides the backing stream's own Fsyncdir, so that a
// directory fsync reaches Fsync.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{inner: fh}, fl, 0
}

// CopyFileRange is refused, so the kernel copies with reads and writes
// that are recorded.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Allocate is not supported.
func (n *node) Allocate(ctx context.Context, fh fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	return syscall.EOPNOTSUPP
}

// file is an open backing file. It does not offer its descriptor for
// passthrough, so that every write comes to Write.
type file struct {
	lf  *fs.LoopbackFile
	fd  int
	ino uint64
}

func wrapFile(ctx context.Context, fh fs.FileHandle) (*file, syscall.Errno) {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return nil, syscall.EIO
	}
	fd, ok := lf.PassthroughFd()
	if !ok {
		lf.Release(ctx)
		return nil, syscall.EBADF
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		lf.Release(ctx)
		return nil, errnoOf(err)
	}
	return &file{lf: lf, fd: fd, ino: st.Ino}, 0
}

func (h *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return h.lf.Read(ctx, dest, off)
}

func (h *file) Release(ctx context.Context) syscall.Errno { return h.lf.Release(ctx) }

func (h *file) Flush(ctx context.Context) syscall.Errno { return h.lf.Flush(ctx) }

func (h *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Getattr(ctx, out)
}

func (h *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Setattr(ctx, in, out)
}

func (h *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lf.Lseek(ctx, off, whence)
}

// dirHandle is a directory stream without Fsyncdir.
type dirHandle struct {
	inner fs.FileHandle
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.inner.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, syscall.ENOTSUP
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.inner.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.inner.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}
