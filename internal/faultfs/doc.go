// Package faultfs is a fault-injecting FUSE file system for power-cut tests.
//
// Mount serves a backing directory at a mount point. Every read and write
// passes straight through to the backing files, so the live view is always
// current (and reads through a read-only mmap, as bbolt does, work: direct
// I/O stays off). Beside the live view the file system keeps what a disk
// would have made durable:
//
//   - for each file written since its last fsync or fdatasync, an undo log:
//     the bytes each write or truncate replaced and the size before it. An
//     fsync forgets the log, so it costs nothing in the size of the file;
//     a write costs one extra read of the range it overwrites.
//   - for each directory whose entries changed since its last fsync, the
//     entries it had then (name, inode, type). Created, removed and renamed
//     names become durable when their directory is fsynced. A removed file
//     is kept alive by a hard link in an attic beside the backing directory
//     (see Mount) until no durable entry can need it.
//
// CutPower is the power cut: it unmounts and rewrites the backing directory
// to exactly that durable state, so a later Mount on the same directory
// serves what a machine would find after rebooting. A torn cut also keeps
// a random subset of the 4 KiB pages of each file's last unsynced write(s),
// applied in a random order from a seeded generator (Options.Seed,
// Options.TearWrites): the page-granular partial writes a flash card can
// leave. The caller kills the writing process (kill -9) before CutPower.
//
// SetFsyncDelay stalls every fsync and fdatasync, as an SD card does for
// 50 to 500 ms. FailAfter makes writes or fsyncs fail with an errno (EIO,
// ENOSPC) after a number of them have succeeded, until Heal.
//
// # Caveats
//
//   - Only data and names are modelled. Mode, owner, times and extended
//     attributes changes are durable at once; fsync and fdatasync are the
//     same; the backing files themselves are never fsynced.
//   - A rename between two directories is durable in each directory on its
//     own fsync: syncing only the target leaves the file under both names
//     after a cut (a directory then stays in the target only).
//   - A failed fsync makes nothing durable; the unsynced writes stay in the
//     live view and are lost at a cut unless a later fsync succeeds.
//   - Writes through a writable shared mmap, fallocate and copy_file_range
//     are not supported (the latter two return an error to the caller).
//   - flock and POSIX locks are not passed to the file system: the kernel
//     keeps them for the mount, which is what one writing process needs.
//   - It builds on linux/amd64 and linux/arm64 only: go-fuse does not build
//     for 32-bit ARM.
//   - Mounting needs root (or CAP_SYS_ADMIN) and /dev/fuse; it mounts with
//     mount(2) directly, so no fusermount binary is needed.
package faultfs
