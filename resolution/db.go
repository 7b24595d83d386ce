package resolution

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

var (
	// ErrClosed: the database was closed.
	ErrClosed = errors.New("resolution: closed")
	// ErrDiverged: a peer holds a decision this replica made but does not
	// have, or a different decision under the same (Origin, Seq). One of
	// the two was restored from an older copy; re-clone it.
	ErrDiverged = errors.New("resolution: replicas have diverged")
)

// Options configure Open. The zero value (or nil) is usable.
type Options struct {
	// FS defaults to vfs.Default. Tests may pass vfs.NewMem() or a
	// crash-testing FS.
	FS vfs.FS
	// Logger receives Pebble's errors. Default: discards everything.
	Logger *slog.Logger
	// ReadOnly opens an existing database without the right to write.
	ReadOnly bool
}

// DB is one replica's resolution database. It is safe for concurrent use;
// writes are serialized. Close must not run concurrently with other calls.
type DB struct {
	dir  string
	self uuid.UUID
	opts Options
	db   *pebble.DB

	wmu    sync.Mutex // serializes Record and Integrate
	failed error      // set when a write failed: no more writes (guarded by wmu)

	// held is, per origin, the highest Seq durably written. Readers stop
	// there, so nothing a crash could take back is ever handed out.
	mu   sync.RWMutex
	held map[uuid.UUID]uint64

	closed atomic.Bool
}

// Open opens the resolution database at dir for the replica whose UUID is
// self, creating it if it is missing (unless opts.ReadOnly: then the error
// wraps fs.ErrNotExist). Decisions Recorded get Origin self. A database that
// belongs to another replica is refused: it was copied from there.
func Open(dir string, self uuid.UUID, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if self == uuid.Nil {
		return nil, errors.New("resolution: Open needs the replica's UUID, got the nil UUID")
	}
	if _, err := o.FS.Stat(dir); o.ReadOnly && errors.Is(err, fs.ErrNotExist) {
		return nil, errNone(dir)
	}
	pdb, err := pebble.Open(dir, &pebble.Options{
		FS:                 o.FS,
		FormatMajorVersion: pebble.FormatNewest,
		// A small database: decisions are few. Pebble reserves memtables
		// out of the cache, so the cache must be well above two of them.
		MemTableSize: 4 << 20,
		CacheSize:    16 << 20,
		ReadOnly:     o.ReadOnly,
		Logger:       pebbleLogger{o.Logger},
	})
	if errors.Is(err, pebble.ErrDBDoesNotExist) {
		return nil, errNone(dir)
	} else if err != nil {
		return nil, fmt.Errorf("resolution: open %s: %w", dir, err)
	}
	db := &DB{dir: dir, self: self, opts: o, db: pdb}
	if err := db.load(); err != nil {
		pdb.Close()
		return nil, err
	}
	return db, nil
}

func errNone(dir string) error {
	return fmt.Errorf("resolution: no resolution database at %s (no conflict was ever settled here): %w", dir, fs.ErrNotExist)
}

// pebbleLogger drops Pebble's chatter and keeps its errors.
type pebbleLogger struct{ l *slog.Logger }

func (l pebbleLogger) Infof(string, ...any) {}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.Errorf("fatal: "+format, args...)
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// load checks the meta keys, writing them into a new database, and loads
// the per-origin highest Seq.
func (db *DB) load() error {
	format, ok, err := db.get(metaKey(metaFormat))
	if err != nil {
		return err
	}
	if !ok {
		if err := db.create(); err != nil {
			return err
		}
	} else if v, _ := strconv.Atoi(string(format)); v != formatVersion {
		return fmt.Errorf("resolution: %s has format %q, this prophet reads format %d; use a matching prophet", db.dir, format, formatVersion)
	}
	owner, _, err := db.get(metaKey(metaOwner))
	if err != nil {
		return err
	}
	if len(owner) != 16 {
		return fmt.Errorf("%w: %s has no valid owner key (%x)", ErrCorrupt, db.dir, owner)
	}
	if id := uuid.UUID(owner); id != db.self {
		return fmt.Errorf("resolution: %s belongs to replica %s, not %s: it was copied from another replica; move it away and sync to fetch the decisions again", db.dir, id, db.self)
	}
	db.held, err = db.loadHeld()
	return err
}

// create writes the meta keys into an empty database.
func (db *DB) create() error {
	it, err := db.db.NewIter(nil)
	if err != nil {
		return err
	}
	empty := !it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	if !empty || db.opts.ReadOnly {
		return fmt.Errorf("%w: %s is not a resolution database (no format key); if it is not needed, remove it", ErrCorrupt, db.dir)
	}
	b := db.db.NewBatch()
	b.Set(metaKey(metaFormat), []byte(strconv.Itoa(formatVersion)), nil)
	b.Set(metaKey(metaOwner), db.self[:], nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("resolution: initialize %s: %w", db.dir, err)
	}
	// Pebble syncs its own directory, not the entry leading to it.
	d, err := db.opts.FS.OpenDir(filepath.Dir(filepath.Clean(db.dir)))
	if err == nil {
		err = errors.Join(d.Sync(), d.Close())
	}
	if err != nil {
		return fmt.Errorf("resolution: initialize %s: sync parent directory: %w", db.dir, err)
	}
	return nil
}

// loadHeld finds the last D key of each origin: two seeks per origin.
func (db *DB) loadHeld() (map[uuid.UUID]uint64, error) {
	held := map[uuid.UUID]uint64{}
	it, err := db.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDecision}, UpperBound: []byte{prefixDecision + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.SeekGE(originEnd(it.Key())) {
		origin, _, err := parseID(it.Key(), dKeyLen)
		if err != nil {
			return nil, err
		}
		it.SeekLT(originEnd(it.Key())) // lands at or after the key we were at
		last, seq, err := parseID(it.Key(), dKeyLen)
		if err != nil {
			return nil, err
		}
		if last != origin {
			return nil, fmt.Errorf("%w: %s: the decision keys of %s moved while loading", ErrCorrupt, db.dir, origin)
		}
		held[origin] = seq
	}
	return held, it.Error()
}

func (db *DB) get(key []byte) ([]byte, bool, error) {
	v, c, err := db.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("resolution: %s: %w", db.dir, err)
	}
	defer c.Close()
	return bytes.Clone(v), true, nil
}

// Close closes the database, flushing the memtable of a writable one so the
// next open replays no WAL. Calls after Close fail with ErrClosed.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	var err error
	if !db.opts.ReadOnly && db.failed == nil && db.db.Metrics().MemTable.Size > 0 {
		err = db.db.Flush()
	}
	return errors.Join(err, db.db.Close())
}

func (db *DB) live() error {
	if db.closed.Load() {
		return fmt.Errorf("%w: %s", ErrClosed, db.dir)
	}
	return nil
}

// Record durably appends a decision made here and returns it as stored: it
// sets Origin to this replica and Seq to the next number (whatever they
// held). d must otherwise be valid (see Encode); in particular d.Fingerprint
// must be d.Conflict.Fingerprint().
func (db *DB) Record(ctx context.Context, d Decision) (Decision, error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := db.writable(ctx); err != nil {
		return Decision{}, err
	}
	d.Origin, d.Seq = db.self, db.heldOf(db.self)+1
	b := db.db.NewBatch()
	if err := db.stage(b, &d); err != nil {
		b.Close()
		return Decision{}, err
	}
	if err := db.commit(b, map[uuid.UUID]uint64{d.Origin: d.Seq}); err != nil {
		return Decision{}, err
	}
	return d, nil
}

// Integrate durably adds decisions made elsewhere, all in one synced batch
// or none, and returns how many were new. Those already held (byte for byte)
// are skipped. It refuses, writing nothing: a decision whose Seq is more than
// one past what is held from its origin, counting the decisions before it in
// ds (send them in (Origin, Seq) order, as Since does); one of this
// replica's own that it does not hold, or one that differs from what is held
// under its (Origin, Seq) (ErrDiverged).
func (db *DB) Integrate(ctx context.Context, ds []Decision) (added int, err error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := db.writable(ctx); err != nil {
		return 0, err
	}
	b := db.db.NewIndexedBatch() // reads see the decisions staged before
	defer func() {
		if b != nil {
			b.Close()
		}
	}()
	raised := map[uuid.UUID]uint64{}
	for i := range ds {
		d := &ds[i]
		held, ok := raised[d.Origin]
		if !ok {
			held = db.heldOf(d.Origin)
		}
		if d.Seq <= held {
			if err := db.sameAsHeld(b, d); err != nil {
				return 0, err
			}
			continue
		}
		if d.Origin == db.self {
			return 0, fmt.Errorf("%w: a peer sent decision %s@%d, made by this replica, which holds only %d: this replica was restored from an older copy; re-clone it (nothing was written)", ErrDiverged, d.Origin, d.Seq, held)
		}
		if d.Seq > held+1 {
			return 0, fmt.Errorf("resolution: decision %s@%d arrived before %s@%d: decisions must be sent in (Origin, Seq) order from the receiver's tickets (nothing was written)", d.Origin, d.Seq, d.Origin, held+1)
		}
		if err := db.stage(b, d); err != nil {
			return 0, err
		}
		raised[d.Origin] = d.Seq
		added++
	}
	if added == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	err = db.commit(b, raised)
	b = nil // commit closed it
	if err != nil {
		return 0, err
	}
	return added, nil
}

func (db *DB) writable(ctx context.Context) error {
	if err := db.live(); err != nil {
		return err
	}
	switch {
	case db.opts.ReadOnly:
		return fmt.Errorf("resolution: %s is open read-only", db.dir)
	case db.failed != nil:
		return db.failed
	}
	return ctx.Err()
}

// heldOf is the highest Seq durably held from origin.
func (db *DB) heldOf(origin uuid.UUID) uint64 {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.held[origin]
}

// stage validates and encodes d and adds its keys to b.
func (db *DB) stage(b *pebble.Batch, d *Decision) error {
	v, err := Encode(nil, d)
	if err != nil {
		return err
	}
	b.Set(dKey(d.Origin, d.Seq), v, nil)
	b.Set(fKey(d.Fingerprint, d.Origin, d.Seq), nil, nil)
	return nil
}

// commit writes b durably, closes it, and publishes the new highest Seq of
// each origin in raised. After a failed write the database takes no more:
// Pebble's state after a failed WAL write is not to be trusted, and
// reopening replays exactly what is durable.
func (db *DB) commit(b *pebble.Batch, raised map[uuid.UUID]uint64) error {
	err := b.Commit(pebble.Sync)
	b.Close()
	if err != nil {
		db.failed = fmt.Errorf("resolution: writing to %s failed, it takes no more writes; reopen it: %w", db.dir, err)
		return db.failed
	}
	db.mu.Lock()
	maps.Copy(db.held, raised)
	db.mu.Unlock()
	return nil
}

// sameAsHeld checks that d, which has a Seq already held from its origin, is
// byte for byte the decision held under that number.
func (db *DB) sameAsHeld(b *pebble.Batch, d *Decision) error {
	enc, err := Encode(nil, d)
	if err != nil {
		return err
	}
	v, c, err := b.Get(dKey(d.Origin, d.Seq))
	if err != nil {
		return fmt.Errorf("%w: %s: decision %s@%d is counted as held but missing: %v", ErrCorrupt, db.dir, d.Origin, d.Seq, err)
	}
	defer c.Close()
	if !bytes.Equal(v, enc) {
		return fmt.Errorf("%w: a peer sent decision %s@%d, but %s holds a different decision under that number: the replica %s was restored from an older copy and decided again; re-clone it (nothing was written)", ErrDiverged, d.Origin, d.Seq, db.dir, d.Origin)
	}
	return nil
}
