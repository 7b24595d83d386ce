package merge

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
)

// Local is a replica on this machine with its resolution database: a Source
// and a Sink.
type Local struct {
	R   *replica.Replica
	Res *resolution.DB // nil for a read-only replica that never had one
}

var (
	_ Source = (*Local)(nil)
	_ Sink   = (*Local)(nil)
)

// ResolutionDir is where a replica keeps its resolution database.
func ResolutionDir(replicaDir string) string { return filepath.Join(replicaDir, "resolution") }

// Open opens the replica in dir and its resolution database (created if
// missing, unless read-only).
func Open(ctx context.Context, dir string, opts *replica.Options) (*Local, error) {
	r, err := replica.OpenContext(ctx, dir, opts)
	if err != nil {
		return nil, err
	}
	l, err := attach(r, opts)
	if err != nil {
		r.Close()
		return nil, err
	}
	return l, nil
}

// attach opens r's resolution database.
func attach(r *replica.Replica, opts *replica.Options) (*Local, error) {
	ro := &resolution.Options{}
	if opts != nil {
		ro.FS, ro.Logger, ro.ReadOnly = opts.FS, opts.Logger, opts.ReadOnly
	}
	res, err := resolution.Open(ResolutionDir(r.Dir()), r.UUID(), ro)
	if ro.ReadOnly && errors.Is(err, fs.ErrNotExist) {
		return &Local{R: r}, nil
	}
	if err != nil {
		return nil, err
	}
	return &Local{R: r, Res: res}, nil
}

// Close closes the replica and its resolution database.
func (l *Local) Close() error {
	var errs []error
	if l.Res != nil {
		errs = append(errs, l.Res.Close())
	}
	return errors.Join(append(errs, l.R.Close())...)
}

func (l *Local) Info(context.Context) (Info, error) {
	return Info{Replica: l.R.UUID(), Database: l.R.DatabaseUUID(), Latest: l.R.LatestSeq()}, nil
}

func (l *Local) Resolutions(ctx context.Context, have map[uuid.UUID]uint64, fn func(resolution.Decision) error) error {
	if l.Res == nil {
		return nil
	}
	return l.Res.Since(have, func(d resolution.Decision) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(d)
	})
}

func (l *Local) Changesets(ctx context.Context, after uint64, fn func(seq uint64, raw []byte) error) error {
	it := l.R.Log(after + 1)
	defer it.Close()
	n := 0
	for it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(it.Seq(), it.Raw()); err != nil {
			return err
		}
	}
	return it.Err()
}

// Snapshot copies the replica's database into dir (replica.Snapshot).
func (l *Local) Snapshot(ctx context.Context, dir string) (replica.SnapshotInfo, error) {
	return l.R.Snapshot(ctx, dir)
}

func (l *Local) Tickets(context.Context) (map[uuid.UUID]uint64, error) { return l.R.Tickets(), nil }

func (l *Local) Position(_ context.Context, peer uuid.UUID) (uint64, error) {
	return l.R.PeerPosition(peer)
}

func (l *Local) SetPosition(_ context.Context, peer uuid.UUID, seq uint64) error {
	return l.R.SetPeerPosition(peer, seq)
}

func (l *Local) Bulk(ctx context.Context, next func() (*replica.Unit, error)) (replica.BulkResult, error) {
	return l.R.Bulk(ctx, next)
}

func (l *Local) ResolutionDB() Resolutions {
	if l.Res == nil {
		return nil
	}
	return l.Res
}
