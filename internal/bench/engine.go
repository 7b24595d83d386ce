package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
)

// The engine's workload: records of one type with three properties, as a
// small ticket tracker would hold them.

const recordType = "ticket"

var owners = [...]string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"}

// recordID is the UUID of record i. It is a bijective mix of i, so records
// land all over the key space as random UUIDs would, and an update names any
// record from its index alone, with no table of UUIDs in memory to distort
// the heap figures.
func recordID(i uint64) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], mix64(i))
	binary.BigEndian.PutUint64(id[8:], mix64(i^0x9e3779b97f4a7c15))
	return id
}

// mix64 is SplitMix64's finalizer, a bijection on uint64.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// props are record i's properties. Updates change only status.
func props(i uint64, status string) map[string]string {
	return setProps(make(map[string]string, 3), i, status)
}

// setProps sets record i's properties in m and returns it.
func setProps(m map[string]string, i uint64, status string) map[string]string {
	m["summary"] = "record " + strconv.FormatUint(i, 10) + ": the export button does nothing"
	m["status"] = status
	m["owner"] = owners[i%uint64(len(owners))]
	return m
}

// createEdit creates record i.
func createEdit(i uint64) replica.Edit {
	return replica.Edit{Type: recordType, Record: recordID(i), Op: replica.Create, Set: props(i, "new")}
}

// putEdit is what an import does to record i when its status changed
// elsewhere: a Put of every property, of which only status differs.
func putEdit(i, gen uint64) replica.Edit {
	return replica.Edit{Type: recordType, Record: recordID(i), Op: replica.Put, Set: props(i, "status-"+strconv.FormatUint(gen, 10))}
}

// engine drives one replica.
type engine struct {
	r       *replica.Replica
	next    atomic.Uint64 // index of the next record to create
	gen     atomic.Uint64 // distinct status values for updates
	records uint64        // records 0..records-1 exist (preloaded)
}

// openEngine makes a new replica in dir with a block cache of cache bytes
// (0: the replica's default).
func openEngine(dir string, cache int64) (*engine, error) {
	r, err := replica.Init(dir, uuid.Nil, &replica.Options{Creator: "bench", CacheSize: cache})
	if err != nil {
		return nil, err
	}
	return &engine{r: r}, nil
}

func (e *engine) Close() error { return e.r.Close() }

// bulk runs one bulk load of units from unit until it returns nil or the
// deadline (zero: none) passes, checking the clock every 64 units.
func (e *engine) bulk(ctx context.Context, deadline time.Time, unit func() *replica.Unit) (int, error) {
	n := 0
	res, err := e.r.Bulk(ctx, func() (*replica.Unit, error) {
		n++
		if n%64 == 0 && !deadline.IsZero() && time.Now().After(deadline) {
			return nil, nil
		}
		return unit(), nil
	})
	return res.Changesets, err
}

// preload creates records 0..n-1 through the bulk path. report is called
// after each tenth.
func (e *engine) preload(ctx context.Context, n uint64, report func(done uint64)) error {
	step := max(n/10, 1)
	got, err := e.bulk(ctx, time.Time{}, func() *replica.Unit {
		i := e.next.Load()
		if i == n {
			return nil
		}
		e.next.Add(1)
		if (i+1)%step == 0 {
			report(i + 1)
		}
		return &replica.Unit{Edits: []replica.Edit{createEdit(i)}}
	})
	if err != nil {
		return fmt.Errorf("bench: preload: %w", err)
	}
	if uint64(got) != n {
		return fmt.Errorf("bench: preload appended %d changesets, want %d", got, n)
	}
	e.records = n
	return nil
}

// changesetSize commits one typical create and returns the size of its
// encoding as stored in the log.
func (e *engine) changesetSize(ctx context.Context) (int, error) {
	cs, err := e.r.Commit(ctx, createEdit(e.next.Add(1)-1))
	if err != nil {
		return 0, err
	}
	it := e.r.Log(cs.Seq)
	defer it.Close()
	if !it.Next() {
		return 0, fmt.Errorf("bench: changeset %d just committed is not in the log: %v", cs.Seq, it.Err())
	}
	return len(it.Raw()), nil
}

// commitOp creates one new record with Commit, as an app or prophet create
// does: the replica gives it a new UUID. Writer numbers are below writers.
// Each writer builds its edits in one map, reused from one commit to the
// next (Commit keeps no reference to it), so that making an op's input costs
// about what raw Pebble's fresh random value does: a new map per op cost
// more than a microsecond, 7% of the engine's CPU per commit, which was the
// harness's and not the engine's.
func (e *engine) commitOp(writers int) op {
	sets := make([]map[string]string, writers)
	for w := range sets {
		sets[w] = make(map[string]string, 3)
	}
	return func(ctx context.Context, w int, _ time.Time) (int, error) {
		edit := replica.Edit{Type: recordType, Op: replica.Create, Set: setProps(sets[w], e.next.Add(1)-1, "new")}
		if _, err := e.r.Commit(ctx, edit); err != nil {
			return 0, err
		}
		return 1, nil
	}
}

// bulkCreateOp bulk-loads new records until the deadline.
func (e *engine) bulkCreateOp() op {
	return func(ctx context.Context, _ int, deadline time.Time) (int, error) {
		return e.bulk(ctx, deadline, func() *replica.Unit {
			return &replica.Unit{Edits: []replica.Edit{createEdit(e.next.Add(1) - 1)}}
		})
	}
}

// bulkUpdateOp bulk-loads Puts of random preloaded records until the
// deadline: the read-modify-write of record state on a large replica.
func (e *engine) bulkUpdateOp() op {
	return func(ctx context.Context, _ int, deadline time.Time) (int, error) {
		return e.bulk(ctx, deadline, func() *replica.Unit {
			return &replica.Unit{Edits: []replica.Edit{putEdit(rand.Uint64N(e.records), e.gen.Add(1))}}
		})
	}
}
