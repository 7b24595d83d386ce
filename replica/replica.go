package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// A replica directory holds:
//
//	DIR/db/           the Pebble DB (keys.go, DESIGN.md "Key layout")
//	DIR/prophet.lock  held while a process has the replica open
//	DIR/prophet.pid   the pid of that process, for the "in use" message
//
// Later: DIR/resolution/ (the resolution DB) and DIR/foreign/NAME/ (one state
// DB per foreign replica), each its own Pebble DB.
const (
	dbDir    = "db"
	lockFile = "prophet.lock"
	pidFile  = "prophet.pid"
)

// Replica is one replica: an append-only changeset log, the records it
// materializes, and merge tickets, in one Pebble DB. It is safe for
// concurrent use. Commits go through one committer goroutine that groups
// concurrent callers into one batch and one fsync (commit.go).
type Replica struct {
	dir  string
	opts Options
	db   *pebble.DB
	lock io.Closer

	id, dbID uuid.UUID

	// durable is the highest sequence number whose commit is synced. Log
	// readers stop there, so nothing that a crash could take back is ever
	// read out of the log (I5).
	durable atomic.Uint64

	// mu guards the published copies of committer state that readers see.
	mu      sync.RWMutex
	tickets map[uuid.UUID]uint64
	types   map[string]typeStats
	dig     digest
	hlc     int64 // the hybrid logical clock: the greatest Created in the log, Unix ns

	c *committer // nil when ReadOnly

	// changed is closed, and replaced, each time the durable log grows
	// (Changed).
	changedMu sync.Mutex
	changed   chan struct{}

	verifyMu sync.Mutex // one Verify at a time

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
}

// live returns ErrClosed once Close has begun. Readers check it so that a
// use after Close is an error, not a Pebble panic. (Close must still not run
// concurrently with calls that are under way.)
func (r *Replica) live() error {
	if r.closed.Load() {
		return fmt.Errorf("%w: replica %s", ErrClosed, r.dir)
	}
	return nil
}

// typeStats is the S value of one record type.
type typeStats struct {
	NextLUID uint64 // the LUID the next new record of this type gets
	Live     uint64 // live records of this type
}

// Init creates a new replica in dir, which may exist but must not hold one.
// database is the database UUID to join (a clone passes its source's); with
// uuid.Nil Init starts a new database.
func Init(dir string, database uuid.UUID, opts *Options) (*Replica, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if err := o.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("replica: create %s: %w", dir, err)
	}
	lock, err := acquire(context.Background(), o.FS, dir, o.LockWait)
	if err != nil {
		return nil, err
	}
	if _, err = o.FS.Stat(filepath.Join(dir, dbDir)); err == nil {
		lock.Close()
		return nil, fmt.Errorf("%w: %s (open it, or choose another directory)", ErrExists, dir)
	}
	db, err := pebble.Open(filepath.Join(dir, dbDir), pebbleOptions(&o, true))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("replica: create database in %s: %w", dir, err)
	}
	if database == uuid.Nil {
		database = o.NewUUID()
	}
	id := o.NewUUID()
	b := db.NewBatch()
	b.Set(metaKey(metaFormat), []byte(strconv.Itoa(formatVersion)), nil)
	b.Set(metaKey(metaReplicaUUID), id[:], nil)
	b.Set(metaKey(metaDatabaseUUID), database[:], nil)
	b.Set(metaKey(metaCreated), []byte(o.Clock().UTC().Format("2006-01-02T15:04:05Z")), nil)
	err = b.Commit(pebble.Sync)
	if err == nil {
		// Pebble syncs its own directory; the entries that lead to it
		// (DIR/db in DIR, DIR in its parent) must be synced too, or a
		// crash can lose the whole replica.
		err = errors.Join(syncDir(o.FS, dir), syncDir(o.FS, filepath.Dir(filepath.Clean(dir))))
	}
	if err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("replica: initialize %s: %w", dir, err)
	}
	return open(dir, &o, db, lock)
}

// Open opens the replica in dir. It fails with ErrNoReplica if there is none
// and with ErrInUse if another process has it open.
func Open(dir string, opts *Options) (*Replica, error) {
	return OpenContext(context.Background(), dir, opts)
}

// OpenContext is Open, except that waiting for the lock (Options.LockWait)
// ends early, with ctx's error, when ctx is done.
func OpenContext(ctx context.Context, dir string, opts *Options) (*Replica, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if _, err := o.FS.Stat(filepath.Join(dir, dbDir)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no replica (run prophet init, or pass --replica)", ErrNoReplica, dir)
		}
		return nil, fmt.Errorf("replica: %s: %w", dir, err)
	}
	lock, err := acquire(ctx, o.FS, dir, o.LockWait)
	if err != nil {
		return nil, err
	}
	po := pebbleOptions(&o, false)
	db, err := pebble.Open(filepath.Join(dir, dbDir), po)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("replica: open %s: %w", dir, err)
	}
	return open(dir, &o, db, lock)
}

func open(dir string, o *Options, db *pebble.DB, lock io.Closer) (*Replica, error) {
	r := &Replica{dir: dir, opts: *o, db: db, lock: lock}
	if err := r.load(); err != nil {
		db.Close()
		lock.Close()
		if errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), dir) {
			err = fmt.Errorf("replica %s is damaged: %w (run prophet verify)", dir, err)
		}
		return nil, err
	}
	if !o.ReadOnly {
		r.c = newCommitter(r)
	}
	return r, nil
}

// acquire takes the replica's process lock, waiting up to wait for another
// process to let go, and turns the OS's "resource temporarily unavailable"
// into an *InUseError that names the replica and, when it can, the process
// holding it.
func acquire(ctx context.Context, fs vfs.FS, dir string, wait time.Duration) (io.Closer, error) {
	deadline := time.Now().Add(wait)
	for {
		lock, err := fs.Lock(filepath.Join(dir, lockFile))
		if err == nil {
			if f, err := fs.Create(filepath.Join(dir, pidFile), vfs.WriteCategoryUnspecified); err == nil {
				f.Write([]byte(strconv.Itoa(os.Getpid())))
				f.Close()
			}
			return lock, nil
		}
		// Another process: EAGAIN (or EACCES). This process: vfs says so
		// in words, with no error value to test.
		same := strings.Contains(err.Error(), "held by current process")
		if !same && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("replica: lock %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			e := &InUseError{Dir: dir, SameProcess: same}
			if f, err := fs.Open(filepath.Join(dir, pidFile)); err == nil {
				b, _ := io.ReadAll(io.LimitReader(f, 32))
				f.Close()
				e.PID, _ = strconv.Atoi(string(b))
			}
			return nil, e
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// memTableSize is Pebble's memtable size: large enough for bulk loads to
// flush rarely. Pebble reserves memtables out of the block cache.
const memTableSize = 32 << 20

// PebbleOptions returns the Pebble options a replica with opts opens its DB
// with, so that tools (prophet bench) can measure raw Pebble under exactly
// the same settings.
func PebbleOptions(opts *Options) *pebble.Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	po := pebbleOptions(&o, false)
	po.ErrorIfNotExists = false
	return po
}

func pebbleOptions(o *Options, create bool) *pebble.Options {
	po := &pebble.Options{
		FS:                 o.FS,
		CacheSize:          o.CacheSize,
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       memTableSize,
		ErrorIfExists:      create,
		ErrorIfNotExists:   !create,
		ReadOnly:           o.ReadOnly,
		Logger:             pebbleLogger{o},
		// Every commit writes keys across the whole key space (log,
		// records, indexes), so every small flush overlaps every file of
		// the base level. A small base level keeps the L0 compaction that
		// follows small too; the default (64 MiB) made it rewrite the
		// whole database, hundreds of ms for each short CLI process.
		LBaseMaxBytes: 4 << 20,
		// Each short CLI process leaves one small L0 file. Compacting L0
		// every few files made every other command wait ~40 ms for a
		// compaction at Close; waiting for more files amortizes it.
		L0CompactionThreshold: 16,
		L0StopWritesThreshold: 64,
	}
	// Bloom filters make the existence checks of the commit path (is this
	// record new? was this changeset integrated?) cheap on misses.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return po
}

// pebbleLogger drops Pebble's chatter and keeps its errors.
type pebbleLogger struct{ o *Options }

func (l pebbleLogger) Infof(string, ...any) {}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.o.Logger.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.o.Logger.Error("pebble: fatal: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// load reads the meta keys and the small in-memory state (tickets, type
// stats, digest, last sequence number).
func (r *Replica) load() error {
	get := func(name string) ([]byte, error) {
		v, c, err := r.db.Get(metaKey(name))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return append([]byte(nil), v...), nil
	}
	notOurs := func(what string) error {
		return fmt.Errorf("%w: %s is not a prophet replica (%s); if an init was interrupted, remove the directory and run prophet init again", ErrCorrupt, r.dir, what)
	}
	f, err := get(metaFormat)
	if errors.Is(err, pebble.ErrNotFound) {
		return notOurs("no format key")
	} else if err != nil {
		return err
	}
	if v, _ := strconv.Atoi(string(f)); v != formatVersion {
		return fmt.Errorf("replica: %s has format %q, this prophet reads format %d; use a matching prophet", r.dir, f, formatVersion)
	}
	for name, dst := range map[string]*uuid.UUID{metaReplicaUUID: &r.id, metaDatabaseUUID: &r.dbID} {
		v, err := get(name)
		if err != nil || len(v) != 16 {
			return notOurs("no " + name)
		}
		copy(dst[:], v)
	}
	if v, err := get(metaDigest); err == nil {
		if len(v) != 32 {
			return fmt.Errorf("%w: digest of %d bytes", ErrCorrupt, len(v))
		}
		r.dig = digestFromBytes(v)
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	if v, err := get(metaHLC); err == nil {
		if r.hlc, err = i64(v); err != nil {
			return fmt.Errorf("%w: clock: %v", ErrCorrupt, err)
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	last, err := r.lastSeqUnder([]byte{prefixLog})
	if err != nil {
		return err
	}
	r.durable.Store(last)
	if r.tickets, err = r.loadTickets(); err != nil {
		return err
	}
	r.types, err = r.loadTypes()
	return err
}

// UUID is this replica's own UUID.
func (r *Replica) UUID() uuid.UUID { return r.id }

// DatabaseUUID is shared by every replica of one database.
func (r *Replica) DatabaseUUID() uuid.UUID { return r.dbID }

// Dir is the replica's directory.
func (r *Replica) Dir() string { return r.dir }

// LatestSeq is the sequence number of the newest durable changeset (0 when
// the log is empty).
func (r *Replica) LatestSeq() uint64 { return r.durable.Load() }

// Digest returns the state digest (state.go) as of the last commit.
func (r *Replica) Digest() Digest {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var d Digest
	copy(d[:], r.dig.bytes())
	return d
}

// TypeCount is the number of live records of one type.
type TypeCount struct {
	Type  string
	Count uint64
}

// Counts returns the live records per type, sorted by type.
func (r *Replica) Counts() []TypeCount {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]TypeCount, 0, len(r.types))
	for t, s := range r.types {
		if s.Live > 0 {
			out = append(out, TypeCount{t, s.Live})
		}
	}
	sortCounts(out)
	return out
}

// Close stops the committer (after the commits under way), flushes the
// memtable so the next open is quick, and closes the database. Calls after
// Close fail with ErrClosed; Close must not run concurrently with calls that
// are under way (an open LogIter, a List callback).
func (r *Replica) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		defer r.signal() // Follow and Changed waiters see ErrClosed
		if r.c != nil {
			r.c.close()
		}
		var errs []error
		if !r.opts.ReadOnly && r.c.failure() == nil && r.db.Metrics().MemTable.Size > 0 {
			// Pebble flushes a replayed WAL at open, synchronously: flush
			// now so the next command does not pay for it. Not after a
			// failed write: what failed must not be made durable here.
			errs = append(errs, r.db.Flush())
		}
		errs = append(errs, r.db.Close())
		errs = append(errs, r.lock.Close())
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}
