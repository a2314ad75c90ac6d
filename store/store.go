package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"smartboxd/internal/atomicfile"
)

// File names inside the data directory.
const (
	DBFile     = "smartbox.db"
	SecretFile = "secret"
)

// SchemaVersion is the layout this package writes. Open migrates older files.
const SchemaVersion = 1

const secretSize = 32

// allocSize is how much the database file grows at a time.
const allocSize = 2 << 20

// Defaults of Options.
const (
	DefaultTimeout   = time.Second // how long Open waits for another process's lock
	DefaultMaxEvents = 1_000_000   // the outbox bound
	DefaultHistory   = 1000        // events kept for the console
	DefaultReplies   = 100_000     // command replies kept for idempotency
)

// Replies younger than ReplyYoungAge are let go for volume only while more
// than ReplyYoungKept are stored, whatever Options.Replies says.
const (
	ReplyYoungAge  = 24 * time.Hour
	ReplyYoungKept = 100_000
)

var (
	// ErrLocked is returned by Open when another process holds the database.
	ErrLocked = errors.New("store: database is in use by another process")
	// ErrNewerSchema is returned by Open when the file was written by a newer
	// smartboxd than this one.
	ErrNewerSchema = errors.New("store: database schema is newer than this daemon")
	// ErrBadSecret is returned by Open when the secret file is not a secret,
	// or is missing beside an existing database.
	ErrBadSecret = errors.New("store: secret file is corrupt")
	// ErrBroken is returned by every call on a DB once a panic went through
	// one of its transactions: bbolt's writer lock may still be held and
	// its view of the file may be wrong, so nothing more is written, and
	// the process should end (and start again, checking the file).
	ErrBroken = errors.New("store: a transaction panicked; the database is closed to this process")
)

// BucketCodeIndex is the bucket of the code index (keyed hash -> owner), for
// tools that read the file directly (the benchmarks' bare baseline).
const BucketCodeIndex = "codeidx"

// ReplacedBuckets are the buckets ReplaceAll rewrites, in the order it
// writes them.
func ReplacedBuckets() []string {
	out := make([]string, len(replaced))
	for i, b := range replaced {
		out[i] = string(b)
	}
	return out
}

// Bucket names.
var (
	bucketMeta      = []byte("meta")
	bucketBins      = []byte("bins")
	bucketKeys      = []byte("keys")
	bucketFobs      = []byte("fobs")          // fob serial -> key id
	bucketCodes     = []byte("codes")         // access code id -> AccessCode
	bucketCodeIndex = []byte(BucketCodeIndex) // keyed hash -> kind + id
	bucketSchedule  = []byte("schedule")      // be64 unix nanos + id -> nil
	bucketOutbox    = []byte("outbox")        // be64 seq -> Event
	bucketHistory   = []byte("history")       // be64 seq -> Event (the last few)
	bucketReplies   = []byte("replies")       // command id -> reply
	bucketReplyLog  = []byte("replylog")      // be64 n -> command id
	bucketCounters  = []byte("counters")      // signing key name -> replay window
	bucketOffline   = []byte("offline")       // keyed hash of an offline code -> OfflineMark
	// class byte + be64 seq -> nil, for the outbox's events of
	// contract.ClassNoise and ClassOrdinary: what a full outbox lets go first
	bucketOutboxIdx = []byte("outboxidx")
	bucketTombs     = []byte("tombstones") // access code id -> Tombstone
	bucketTombEnds  = []byte("tombends")   // schedule key of ends_at + id -> nil
	bucketTombGone  = []byte("tombgone")   // schedule key of removed_at + id -> nil

	replaced   = [][]byte{bucketKeys, bucketFobs, bucketCodes, bucketCodeIndex, bucketSchedule}
	allBuckets = [][]byte{bucketMeta, bucketBins, bucketKeys, bucketFobs, bucketCodes,
		bucketCodeIndex, bucketSchedule, bucketOutbox, bucketHistory, bucketReplies, bucketReplyLog,
		bucketCounters, bucketOffline, bucketOutboxIdx, bucketTombs, bucketTombEnds, bucketTombGone}
)

// Meta keys.
var (
	metaSchema      = []byte("schema")
	metaSettings    = []byte("settings")
	metaLockout     = []byte("lockout")
	metaConsoleLock = []byte("console_lockout")
	metaBoots       = []byte("boots")
	metaOutboxDepth = []byte("outbox_depth")
	metaKeyCount    = []byte("key_count")
	metaCodeCount   = []byte("code_count")
	metaSnapshot    = []byte("snapshot_version")
	metaAcked       = []byte("acked")
	metaOfflineKey  = []byte("offline_key")
	metaSession     = []byte("mqtt_session")
)

// Options tune Open. The zero value is usable.
type Options struct {
	BoxID     string        // written into every event
	Timeout   time.Duration // how long to wait for the file lock; default 1 s
	MaxEvents int           // outbox bound; default 1,000,000
	History   int           // events kept for the console; default 1000
	Replies   int           // command replies kept; default 100,000 (see PutStoredReply)
	NoSync    bool          // skip fsync: tests and benchmarks of non-durable paths only
	// SeqFloorStep is how far ahead of the outbox's sequence the floor
	// file is written, each time the sequence reaches it; default 10,000
	// (one small synced file write per that many events).
	SeqFloorStep int
	// ReadOnly opens an existing database for reading only (offline
	// inspection): nothing is created, migrated or counted.
	ReadOnly bool
}

// DB is an open SmartBox database.
type DB struct {
	db     *bolt.DB
	secret []byte
	opts   Options
	boot   uint64
	hmacs  sync.Pool   // of hash.Hash: HMAC-SHA256 keyed with secret
	broken atomic.Bool // a panic went through a transaction
	dir    string
	floor  uint64 // the seq floor on file; written under bbolt's writer lock
}

// Open opens (creating when missing) the data directory, its secret and the
// database in it, and migrates the schema.
func Open(dir string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.Replies <= 0 {
		opts.Replies = DefaultReplies
	}
	path := filepath.Join(dir, DBFile)
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	} else if err := atomicfile.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	var secret []byte
	_, statErr := os.Stat(path)
	if !opts.ReadOnly {
		var err error
		if secret, err = loadSecret(filepath.Join(dir, SecretFile), statErr == nil); err != nil {
			return nil, err
		}
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.Timeout,
		FreelistType: bolt.FreelistMapType,
		// Map 64 MiB from the start: a database growing within it (100,000
		// access codes take about 40 MiB) is never re-mapped, which blocks
		// readers and copies every node of a large write. Only address
		// space: pages are read in as they are touched.
		InitialMmapSize: 64 << 20,
		NoSync:          opts.NoSync,
		ReadOnly:        opts.ReadOnly,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// Grow the file allocSize at a time rather than bbolt's 16 MiB, so it
	// stays within a few MiB of the pages it uses: the file is what the
	// card holds (and backs up), a fsync'd truncate per step is cheap.
	bdb.AllocSize = allocSize
	d := &DB{db: bdb, secret: secret, opts: opts, dir: dir}
	if opts.ReadOnly {
		return d, nil
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// bbolt syncs the new file's first pages but not its name: without
		// the directory's fsync a power cut can take the whole database,
		// and the seqs it had published, away.
		if err := syncDir(dir); err != nil {
			bdb.Close()
			return nil, fmt.Errorf("store: create %s: %w", path, err)
		}
	}
	if err := d.migrate(); err != nil {
		bdb.Close()
		return nil, err
	}
	if err := d.loadSeqFloor(); err != nil {
		bdb.Close()
		return nil, err
	}
	return d, nil
}

// SeqFloorFile, beside the database, holds a number no lower than any seq
// the outbox has handed out. A backup put back after a corrupt database
// rewinds the outbox's own sequence; the floor, outside the file, does not.
const SeqFloorFile = "seq_floor"

// DefaultSeqFloorStep is Options.SeqFloorStep's default.
const DefaultSeqFloorStep = 10_000

// restoredMark, beside the database, says Recover put a backup in the
// database's place (or let it start anew): until an Open has raised the
// outbox's sequence to the floor, the mark stays, so a crash in between
// does not lose the raise.
const restoredMark = "restored.mark"

// loadSeqFloor reads the floor file and, on a restored database, raises
// the outbox's sequence to it. An unreadable floor counts as none: it
// matters only after a restore, and refusing to start over it would be
// worse.
func (d *DB) loadSeqFloor() error {
	if d.opts.SeqFloorStep <= 0 {
		d.opts.SeqFloorStep = DefaultSeqFloorStep
	}
	if b, err := os.ReadFile(filepath.Join(d.dir, SeqFloorFile)); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			d.floor = n
		}
	}
	mark := filepath.Join(d.dir, restoredMark)
	if _, err := os.Stat(mark); err != nil {
		return nil
	}
	err := d.update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		if ob.Sequence() >= d.floor {
			return nil
		}
		if err := ob.SetSequence(d.floor); err != nil {
			return fmt.Errorf("store: raise the outbox sequence to the floor: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.Remove(mark); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return syncDir(d.dir)
}

// raiseSeqFloor makes the floor on file cover seq before seq is handed
// out: written and synced inside the transaction that takes seq, so a
// commit that fails leaves only a floor higher than needed.
func (d *DB) raiseSeqFloor(seq uint64) error {
	if seq <= d.floor {
		return nil
	}
	next := seq + uint64(d.opts.SeqFloorStep)
	if err := atomicfile.WriteFile(filepath.Join(d.dir, SeqFloorFile), []byte(strconv.FormatUint(next, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("store: seq floor: %w", err)
	}
	d.floor = next
	return nil
}

// loadSecret reads the per-box secret, making it on first use. A database
// that exists without its secret is refused: every code hash in it would
// silently stop matching.
func loadSecret(path string, dbExists bool) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && dbExists {
		return nil, fmt.Errorf("%w: %s is missing but the database exists: restore it, or remove the database to start afresh", ErrBadSecret, path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, secretSize)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("store: make secret: %w", err)
		}
		// Whole or absent after a power cut, never empty or torn; and
		// never over a secret another process made meanwhile.
		if err := atomicfile.Create(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("store: write secret: %w", err)
		}
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read secret: %w", err)
	}
	if len(b) != secretSize {
		return nil, fmt.Errorf("%w: %s has %d bytes, want %d", ErrBadSecret, path, len(b), secretSize)
	}
	return b, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// migrate brings the file to SchemaVersion and counts this boot.
func (d *DB) migrate() error {
	return d.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		v := getU64(meta, metaSchema)
		if v > SchemaVersion {
			return fmt.Errorf("%w: file has %d, daemon knows %d", ErrNewerSchema, v, SchemaVersion)
		}
		// Version 0 -> 1: the initial layout.
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("store: migrate: %w", err)
			}
		}
		if err := putU64(meta, metaSchema, SchemaVersion); err != nil {
			return err
		}
		d.boot = getU64(meta, metaBoots) + 1
		return putU64(meta, metaBoots, d.boot)
	})
}

// Close closes the database. After a transaction panicked it returns
// ErrBroken and leaves the file to the process's exit: bbolt's Close would
// wait for the writer lock the panic left held.
func (d *DB) Close() error {
	if d.broken.Load() {
		return ErrBroken
	}
	return d.db.Close()
}

// Broken reports whether a panic went through one of the DB's transactions.
func (d *DB) Broken() bool { return d.broken.Load() }

// guard marks the DB broken when a panic leaves a transaction: *done is
// still false then. The panic goes on, with its stack.
func (d *DB) guard(done *bool) {
	if !*done {
		d.broken.Store(true)
	}
}

// Path is the database file's path.
func (d *DB) Path() string { return d.db.Path() }

// Boot is how many times the database has been opened, this time included.
func (d *DB) Boot() uint64 { return d.boot }

// Bolt is the underlying bbolt handle, for offline maintenance (check,
// compact) only.
func (d *DB) Bolt() *bolt.DB { return d.db }

// CodeHash is the keyed hash under which a code is indexed. It is safe for
// concurrent use.
func (d *DB) CodeHash(code string) []byte {
	m, ok := d.hmacs.Get().(hash.Hash)
	if ok {
		m.Reset() // back to the keyed state, without hashing the key again
	} else {
		m = hmac.New(sha256.New, d.secret)
	}
	io.WriteString(m, code)
	sum := m.Sum(nil)
	m.Reset() // keep no trace of the code in the pooled state
	d.hmacs.Put(m)
	return sum
}

// Update runs fn in a read-write transaction, committed (and fsync'd) when fn
// returns nil and rolled back otherwise.
func (d *DB) Update(fn func(tx *Tx) error) error {
	return d.update(func(btx *bolt.Tx) error { return fn(d.wrap(btx)) })
}

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(tx *Tx) error) error {
	return d.view(func(btx *bolt.Tx) error { return fn(d.wrap(btx)) })
}

// update and view are bbolt's, refusing once the DB is broken and marking
// it broken when a panic goes through.
func (d *DB) update(fn func(*bolt.Tx) error) error {
	if d.broken.Load() {
		return ErrBroken
	}
	done := false
	defer d.guard(&done)
	err := d.db.Update(fn)
	done = true
	return err
}

func (d *DB) view(fn func(*bolt.Tx) error) error {
	if d.broken.Load() {
		return ErrBroken
	}
	done := false
	defer d.guard(&done)
	err := d.db.View(fn)
	done = true
	return err
}

func (d *DB) wrap(btx *bolt.Tx) *Tx {
	return &Tx{tx: btx, d: d}
}

func be64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putU64(b *bolt.Bucket, k []byte, n uint64) error {
	if err := b.Put(k, be64(n)); err != nil {
		return fmt.Errorf("store: put %s: %w", k, err)
	}
	return nil
}

func addU64(b *bolt.Bucket, k []byte, delta int64) error {
	n := int64(getU64(b, k)) + delta
	if n < 0 {
		n = 0
	}
	return putU64(b, k, uint64(n))
}

// NextSession raises the box's MQTT session number (§9) by one, durably,
// and returns it: the link calls it before a connection attempt, so that
// the last will it registers carries the number and a crash after the
// connection was made never hands the same number to a second one. It is
// 1 the first time.
func (d *DB) NextSession() (uint64, error) {
	var n uint64
	err := d.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		n = getU64(meta, metaSession) + 1
		return putU64(meta, metaSession, n)
	})
	if err != nil {
		return 0, fmt.Errorf("store: next session: %w", err)
	}
	return n, nil
}

// Session is the latest MQTT session number NextSession returned, 0
// before the first.
func (d *DB) Session() (uint64, error) {
	var n uint64
	err := d.view(func(tx *bolt.Tx) error {
		n = getU64(tx.Bucket(bucketMeta), metaSession)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: session: %w", err)
	}
	return n, nil
}
