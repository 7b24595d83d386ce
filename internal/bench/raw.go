package bench

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prophet-sync/prophet/replica"
)

// rawDB is the physical bound: plain Pebble appends of values the size of an
// encoded changeset, under log-like keys ('L' + big-endian sequence), with
// exactly the options a replica opens its DB with (replica.PebbleOptions:
// bloom filters, memtables, compaction settings, the same block cache).
// Nothing else is written: no record state, no index, no read.
type rawDB struct {
	db   *pebble.DB
	size int           // bytes per value
	seq  atomic.Uint64 // last key handed out
}

func openRaw(dir string, valueSize int, cache int64) (*rawDB, error) {
	opts := replica.PebbleOptions(&replica.Options{CacheSize: cache})
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	return &rawDB{db: db, size: valueSize}, nil
}

func (r *rawDB) Close() error { return r.db.Close() }

// values makes incompressible values of the raw size, one per writer so
// writers share no state.
type values struct {
	rng *rand.ChaCha8
	buf []byte
}

func newValues(size int, w int) *values {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(w)+1)
	return &values{rng: rand.NewChaCha8(seed), buf: make([]byte, size)}
}

func (v *values) next() []byte {
	v.rng.Read(v.buf)
	return v.buf
}

// appendOne appends one value and syncs it.
func (r *rawDB) appendOne(v *values) error {
	b := r.db.NewBatch()
	defer b.Close()
	b.Set(rawKey(r.seq.Add(1)), v.next(), nil)
	return b.Commit(pebble.Sync)
}

// appendBatch appends n values in one batch and syncs it.
func (r *rawDB) appendBatch(v *values, n int) error {
	b := r.db.NewBatch()
	defer b.Close()
	last := r.seq.Add(uint64(n))
	for s := last - uint64(n) + 1; s <= last; s++ {
		b.Set(rawKey(s), v.next(), nil) // Set copies the value
	}
	return b.Commit(pebble.Sync)
}

func rawKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'L'}, seq) }

// syncOp is the op of the "raw_pebble_sync" phases: one value, one sync.
// vals holds one generator per writer.
func (r *rawDB) syncOp(vals []*values) op {
	return func(_ context.Context, w int, _ time.Time) (int, error) {
		if err := r.appendOne(vals[w]); err != nil {
			return 0, err
		}
		return 1, nil
	}
}

// batchOp is the op of the "raw_pebble_batch" phase.
func (r *rawDB) batchOp(vals []*values, n int) op {
	return func(_ context.Context, w int, _ time.Time) (int, error) {
		if err := r.appendBatch(vals[w], n); err != nil {
			return 0, err
		}
		return n, nil
	}
}

func valueSet(size, writers int) []*values {
	vals := make([]*values, writers)
	for w := range vals {
		vals[w] = newValues(size, w)
	}
	return vals
}
