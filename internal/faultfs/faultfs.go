//go:build linux && (amd64 || arm64)

package faultfs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/jonboulle/clockwork"
	"golang.org/x/sys/unix"
)

// PageSize is the granularity at which a torn cut keeps parts of a write.
const PageSize = 4096

var (
	// ErrCut is returned when the file system was already cut or unmounted.
	ErrCut = errors.New("faultfs: power already cut or unmounted")
	// ErrBadOp is returned by FailAfter for an unknown Op, a negative count
	// or a zero errno.
	ErrBadOp = errors.New("faultfs: bad fault")
	// ErrAttic is returned by Mount when the attic cannot be made beside the
	// backing directory on the same file system.
	ErrAttic = errors.New("faultfs: attic not on the backing file system")
)

// Op is a kind of operation FailAfter can make fail.
type Op int

// The operations FailAfter can make fail.
const (
	// OpWrite is a write request or a truncate (ftruncate, O_TRUNC). The
	// kernel splits a write(2) larger than 128 KiB into several requests.
	OpWrite Op = iota + 1
	// OpFsync is an fsync or fdatasync of a file or a directory.
	OpFsync
)

func (o Op) String() string {
	switch o {
	case OpWrite:
		return "write"
	case OpFsync:
		return "fsync"
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Options configure a mount. The zero value is usable.
type Options struct {
	// Seed seeds the generator that picks torn pages, so that a cut can be
	// reproduced.
	Seed uint64
	// TearWrites is how many of a file's most recent unsynced writes a torn
	// cut may keep pages of (default 1).
	TearWrites int
	// Clock sleeps the fsync delay (default the real clock).
	Clock clockwork.Clock
	// Logger reports cuts and faults (default discards).
	Logger *slog.Logger
	// Debug logs every FUSE request to the standard logger.
	Debug bool
}

// Stats count what the file system did; Cut describes the last cut.
type Stats struct {
	Writes    int64 // write requests passed to the backing files
	Truncates int64 // size changes passed to the backing files
	Fsyncs    int64 // fsyncs and fdatasyncs (files and directories) that succeeded
	Failed    int64 // operations failed by FailAfter
	Cut       CutStats
}

// CutStats describe what a power cut threw away.
type CutStats struct {
	Files           int   // files whose contents went back to their durable state
	WritesDropped   int   // unsynced write requests undone
	BytesDropped    int64 // bytes of unsynced writes lost (torn pages kept are not counted)
	PagesTorn       int   // pages of unsynced writes kept by a torn cut
	EntriesReverted int   // directory entries removed, restored or moved back
}

type fault struct {
	on    bool
	after int
	errno syscall.Errno
}

// FS is a mounted fault-injecting file system.
type FS struct {
	backing    string
	mountpoint string
	attic      string
	opts       Options
	log        *slog.Logger
	server     *fuse.Server

	delayMu sync.Mutex
	delay   time.Duration

	// mu serialises every change to the backing directory with the
	// bookkeeping of what is durable.
	mu       sync.Mutex
	cut      bool
	files    map[uint64]*fileLog // by backing inode; absent: live is durable
	dirs     map[uint64]dirSnap  // by backing inode; absent: live is durable
	inAttic  map[uint64]bool
	faults   map[Op]*fault
	stats    Stats
	rng      *rand.Rand
	atticSeq int
}

// Mount serves backing at mountpoint (both existing directories). All that
// backing holds counts as durable. Mount keeps an attic directory named
// ".<base>.faultfs-attic" beside backing, on the same file system, and
// empties it on cut and unmount.
func Mount(backing, mountpoint string, opts Options) (*FS, error) {
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	mountpoint, err = filepath.Abs(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	if opts.TearWrites <= 0 {
		opts.TearWrites = 1
	}
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f := &FS{
		backing:    backing,
		mountpoint: mountpoint,
		attic:      filepath.Join(filepath.Dir(backing), "."+filepath.Base(backing)+".faultfs-attic"),
		opts:       opts,
		log:        lg,
		files:      map[uint64]*fileLog{},
		dirs:       map[uint64]dirSnap{},
		inAttic:    map[uint64]bool{},
		faults:     map[Op]*fault{},
		rng:        rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
	}
	if err := f.resetAttic(); err != nil {
		return nil, err
	}
	var bst, ast syscall.Stat_t
	if err := syscall.Stat(backing, &bst); err != nil {
		return nil, fmt.Errorf("faultfs: backing: %w", err)
	}
	if err := syscall.Stat(f.attic, &ast); err != nil {
		return nil, fmt.Errorf("faultfs: attic: %w", err)
	}
	if bst.Dev != ast.Dev {
		_ = os.RemoveAll(f.attic)
		return nil, fmt.Errorf("%w: %s", ErrAttic, f.attic)
	}
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	rootNode := &node{LoopbackNode: root.(*fs.LoopbackNode), fsys: f}
	server, err := fs.Mount(mountpoint, rootNode, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:            backing,
			Name:              "faultfs",
			DirectMountStrict: true, // as root: mount(2), no fusermount
			// Passthrough would let the kernel write to the backing file
			// without asking us.
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
			// Every change reaches the backing files through this mount
			// while it is up, so the kernel's page cache is always right
			// and must not be dropped when a GETATTR sees a newer mtime:
			// that automatic invalidation races a write in flight — a
			// read-only mapping (bbolt's) faults the page back in from
			// the backing file before the write lands there, and keeps
			// the stale page. A disk has no such window.
			ExplicitDataCacheControl: true,
			Debug:                    opts.Debug,
		},
	})
	if err != nil {
		_ = os.RemoveAll(f.attic)
		return nil, fmt.Errorf("faultfs: mount %s: %w", mountpoint, err)
	}
	f.server = server
	return f, nil
}

// Remount mounts the same backing directory at the same mount point with
// the same options, after CutPower or Unmount.
func (f *FS) Remount() (*FS, error) {
	return Mount(f.backing, f.mountpoint, f.opts)
}

// Backing returns the backing directory's absolute path.
func (f *FS) Backing() string { return f.backing }

// Mountpoint returns the mount point's absolute path.
func (f *FS) Mountpoint() string { return f.mountpoint }

// SetFsyncDelay makes every later fsync and fdatasync wait d before it
// takes effect (0 stops the stall). A cut during the wait loses what the
// fsync would have made durable.
func (f *FS) SetFsyncDelay(d time.Duration) {
	f.delayMu.Lock()
	f.delay = max(d, 0)
	f.delayMu.Unlock()
}

func (f *FS) fsyncDelay() time.Duration {
	f.delayMu.Lock()
	defer f.delayMu.Unlock()
	return f.delay
}

// FailAfter lets n more operations of kind op succeed and then fails every
// one with errno (syscall.EIO, syscall.ENOSPC, ...) until Heal. A failed
// operation changes nothing. A later FailAfter for the same op replaces
// the earlier one.
func (f *FS) FailAfter(op Op, n int, errno syscall.Errno) error {
	if (op != OpWrite && op != OpFsync) || n < 0 || errno == 0 {
		return fmt.Errorf("%w: %v after %d with errno %d", ErrBadOp, op, n, int(errno))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = &fault{on: true, after: n, errno: errno}
	return nil
}

// Heal stops every fault set by FailAfter.
func (f *FS) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.faults)
}

// Stats returns the counters so far.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// inject reports the errno an operation of kind op must fail with, or 0.
// f.mu is held.
func (f *FS) inject(op Op) syscall.Errno {
	ft := f.faults[op]
	if ft == nil || !ft.on {
		return 0
	}
	if ft.after > 0 {
		ft.after--
		return 0
	}
	f.stats.Failed++
	f.log.Info("faultfs: injected fault", "op", op.String(), "errno", ft.errno.Error())
	return ft.errno
}

// Unmount unmounts without a cut: the backing directory keeps the live
// state, all of it.
func (f *FS) Unmount() error {
	f.mu.Lock()
	if f.cut {
		f.mu.Unlock()
		return ErrCut
	}
	f.cut = true
	f.mu.Unlock()
	err := f.unmount()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeLogs()
	if rerr := os.RemoveAll(f.attic); rerr != nil && err == nil {
		err = fmt.Errorf("faultfs: %w", rerr)
	}
	return err
}

// CutPower cuts the power: it stops serving, unmounts and rewrites the
// backing directory to its durable state, keeping torn pages of the last
// unsynced writes when tear is set. Kill the processes using the mount
// first; requests still arriving fail with EIO. Serve the result again with
// Remount (or Mount).
func (f *FS) CutPower(tear bool) error {
	f.mu.Lock()
	if f.cut {
		f.mu.Unlock()
		return ErrCut
	}
	f.cut = true
	f.mu.Unlock()
	uerr := f.unmount()
	f.mu.Lock()
	defer f.mu.Unlock()
	cs, err := f.restore(tear)
	f.stats.Cut = cs
	f.log.Info("faultfs: power cut", "tear", tear, "files", cs.Files, "writes_dropped", cs.WritesDropped,
		"bytes_dropped", cs.BytesDropped, "pages_torn", cs.PagesTorn, "entries_reverted", cs.EntriesReverted)
	return errors.Join(uerr, err)
}

// unmount takes the mount away; if it is busy it detaches it lazily, so
// that no new request can reach it, and aborts the connection.
func (f *FS) unmount() error {
	if err := f.server.Unmount(); err == nil {
		return nil
	}
	if err := unix.Unmount(f.mountpoint, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("faultfs: unmount %s: %w", f.mountpoint, err)
	}
	f.log.Warn("faultfs: mount was busy; detached it", "mountpoint", f.mountpoint)
	return nil
}

func (f *FS) resetAttic() error {
	if err := os.RemoveAll(f.attic); err != nil {
		return fmt.Errorf("faultfs: attic: %w", err)
	}
	if err := os.Mkdir(f.attic, 0o700); err != nil {
		return fmt.Errorf("faultfs: attic: %w", err)
	}
	clear(f.inAttic)
	return nil
}
