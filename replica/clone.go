package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// Clone makes a new replica in dir holding everything src holds: the same
// log in the same order, so the same records, with a new replica UUID and
// src's database UUID. It copies src's database (a Pebble checkpoint: hard
// links where the filesystem allows) instead of integrating the log
// changeset by changeset, then makes the copy a replica of its own:
//
//   - its own replica UUID;
//   - src's local changesets, now from elsewhere, enter the identity index
//     (I10);
//   - the position reached in src's log is src's last changeset.
//
// LUIDs come along: they are local, and the clone starts with src's. The
// copy is made while src's commits wait, with nothing in flight, so it
// holds exactly src's durable log (I5); src must be open for writing (a
// read-only Pebble cannot make the copy). An interrupted
// Clone leaves dir without a replica (the copy is made aside and renamed
// into place last), and a new Clone in dir starts over.
func Clone(ctx context.Context, src *Replica, dir string, opts *Options) (*Replica, error) {
	return CloneSnapshot(ctx, dir, func(tmp string) (SnapshotInfo, error) {
		return src.Snapshot(ctx, tmp)
	}, opts)
}

// SnapshotInfo describes a snapshot: whose it is and how much of its log it
// holds.
type SnapshotInfo struct {
	Replica  uuid.UUID
	Database uuid.UUID
	Latest   uint64 // its durable log ends here
}

// Snapshot copies r's database into dir (which must not exist) while r's
// commits wait, with nothing in flight, so the copy holds exactly r's
// durable log (I5). A Pebble checkpoint: hard links where the filesystem
// allows, so it is quick and takes little room. r must be open for writing
// (a read-only Pebble cannot make one). CloneSnapshot makes a replica of it.
func (r *Replica) Snapshot(ctx context.Context, dir string) (SnapshotInfo, error) {
	if err := r.live(); err != nil {
		return SnapshotInfo{}, err
	}
	if r.c == nil {
		return SnapshotInfo{}, errors.New("replica: a snapshot copies a replica opened for writing; this one is read-only")
	}
	info := SnapshotInfo{Replica: r.id, Database: r.dbID}
	err := r.submit(&request{ctx: ctx, quiesce: func() error {
		info.Latest = r.durable.Load()
		return r.db.Checkpoint(dir)
	}})
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("replica: snapshot of %s: %w", r.dir, err)
	}
	return info, nil
}

// CloneSnapshot makes a new replica in dir from a snapshot (Snapshot), which
// fill writes into the directory it is given (a local Snapshot, or one
// received over the network): it checks that the copy is what fill says it
// is, and makes it a replica of its own (see Clone). An interrupted
// CloneSnapshot leaves dir without a replica, and a new one starts over.
func CloneSnapshot(ctx context.Context, dir string, fill func(tmp string) (SnapshotInfo, error), opts *Options) (*Replica, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if err := o.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("replica: create %s: %w", dir, err)
	}
	lock, err := acquire(ctx, o.FS, dir, o.LockWait)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Replica, error) {
		lock.Close()
		return nil, err
	}
	if _, err = o.FS.Stat(filepath.Join(dir, dbDir)); err == nil {
		return fail(fmt.Errorf("%w: %s (open it, or choose another directory)", ErrExists, dir))
	}
	tmp := filepath.Join(dir, "clone.tmp")
	if err := o.FS.RemoveAll(tmp); err != nil {
		return fail(err)
	}
	info, err := fill(tmp)
	if err != nil {
		o.FS.RemoveAll(tmp)
		return fail(err)
	}
	// The copy is read once, start to end, and gets one small write:
	// a small cache and memtable keep memory flat whatever its size.
	po := pebbleOptions(&o, false)
	po.CacheSize, po.MemTableSize = 16<<20, 4<<20
	db, err := pebble.Open(tmp, po)
	if err != nil {
		return fail(fmt.Errorf("replica: open the copy of %s: %w", info.Replica, err))
	}
	id := o.NewUUID()
	if err := adopt(ctx, db, info, id, &o); err != nil {
		db.Close()
		return fail(fmt.Errorf("replica: clone %s into %s: %w", info.Replica, dir, err))
	}
	// Flushed, the copy opens at once; closed, it can be renamed.
	if err := errors.Join(db.Flush(), db.Close()); err != nil {
		return fail(err)
	}
	if err := o.FS.Rename(tmp, filepath.Join(dir, dbDir)); err != nil {
		return fail(err)
	}
	if err := errors.Join(syncDir(o.FS, dir), syncDir(o.FS, filepath.Dir(filepath.Clean(dir)))); err != nil {
		return fail(err)
	}
	db, err = pebble.Open(filepath.Join(dir, dbDir), pebbleOptions(&o, false))
	if err != nil {
		return fail(fmt.Errorf("replica: open %s: %w", dir, err))
	}
	return open(dir, &o, db, lock)
}

// adopt turns db, a copy of the replica info describes, into the replica
// id, after checking that it is that replica's database.
func adopt(ctx context.Context, db *pebble.DB, info SnapshotInfo, id uuid.UUID, o *Options) error {
	src, durable := info.Replica, info.Latest
	for name, want := range map[string]uuid.UUID{metaReplicaUUID: info.Replica, metaDatabaseUUID: info.Database} {
		v, c, err := db.Get(metaKey(name))
		if err != nil {
			return fmt.Errorf("%w: the copy has no %s: %v", ErrCorrupt, name, err)
		}
		same := bytes.Equal(v, want[:])
		c.Close()
		if !same {
			return fmt.Errorf("%w: the copy is not of replica %s of database %s (%s differs)", ErrCorrupt, info.Replica, info.Database, name)
		}
	}
	if v, c, err := db.Get(metaKey(metaFormat)); err != nil || string(v) != strconv.Itoa(formatVersion) {
		if err == nil {
			c.Close()
		}
		return fmt.Errorf("%w: the copy is not of replica format %d", ErrCorrupt, formatVersion)
	} else {
		c.Close()
	}
	b := db.NewBatch()
	defer b.Close()
	b.Set(metaKey(metaFormat), []byte(strconv.Itoa(formatVersion)), nil)
	b.Set(metaKey(metaReplicaUUID), id[:], nil)
	b.Set(metaKey(metaCreated), []byte(o.Clock().UTC().Format("2006-01-02T15:04:05Z")), nil)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: logKey(1), UpperBound: logKey(durable + 1)})
	if err != nil {
		return err
	}
	defer it.Close()
	n := uint64(0)
	for it.First(); it.Valid(); it.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		seq, err := u64(it.Key()[1:])
		if err != nil {
			return err
		}
		cid, err := changeset.PeekID(it.Value())
		if err != nil {
			return fmt.Errorf("log entry %d: %w", seq, err)
		}
		if cid.Origin == src {
			b.Set(originKey(cid.Origin, cid.Seq), appendU64(nil, seq), nil)
		}
		if b.Len() >= 1<<20 {
			// In pieces, so memory stays flat; the last commit syncs
			// them all, and a crash before it leaves only clone.tmp.
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Reset()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if n != durable {
		return fmt.Errorf("%w: the copy holds %d changesets, the source %d", ErrCorrupt, n, durable)
	}
	b.Set(peerKey(src), appendU64(nil, durable), nil)
	return b.Commit(pebble.Sync)
}

// ReadOnly reports whether r was opened without the right to commit.
func (r *Replica) ReadOnly() bool { return r.c == nil }
