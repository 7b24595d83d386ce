package replica

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// The parallel commit path (DESIGN.md, "Commit path").
//
// A local commit (Replica.Commit) does not go through the committer: the
// caller's goroutine stages it, so that concurrent committers stage on every
// core at once, as raw Pebble writers build their batches at once. Only two
// things are serial, and both are short:
//
//   - taking a sequence number, a creation time (the hybrid logical clock)
//     and LUIDs, under committer.mu;
//   - applying batches to Pebble, on the applier, in sequence order, so that
//     WAL order is log order and a crash keeps a prefix of the log (I2).
//
// A commit first locks the records it edits (lockTable), then reads them
// from Pebble. The lock is released once its batch is applied, so the next
// commit of the same record reads what this one wrote, and takes a higher
// sequence number. Commits of different records stage in parallel.
//
// The committer's own work (integrations, bulk loads, ticket writes,
// quiesce) stages against overlays of its groups in flight, not against
// Pebble alone; committer.gate keeps the two apart: a parallel commit holds
// it shared from before it reads until its unit is queued for the applier,
// and the committer holds it exclusively while it stages and applies, after
// waiting for every queued unit to be applied.

// fastUnit is one staged local changeset on its way to the applier.
type fastUnit struct {
	req   *request
	seq   uint64
	hlc   int64 // its Created, Unix ns
	ops   []op
	dig   digest // change to the state digest
	types []typeDelta
	keys  []recKey // record locks to release once applied
	err   error    // staging failed after taking seq: the replica stops
}

// typeDelta is a unit's change to one type's stats.
type typeDelta struct {
	typ  string
	live uint64 // added to Live (modulo 2^64: a decrease wraps)
	next uint64 // NextLUID after the unit (0: it took no LUID)
}

// lockTable holds the records that parallel commits are staging or have
// queued but not yet applied.
type lockTable struct {
	mu sync.Mutex
	// held maps a locked record to a channel closed on unlock, made by
	// the first commit that waits for it (nil: nobody waits).
	held map[recKey]chan struct{}
}

// lock takes the locks of keys, in sorted order (so two commits never wait
// for each other), waiting for their holders.
func (l *lockTable) lock(ctx context.Context, keys []recKey) error {
	for i, k := range keys {
		for {
			l.mu.Lock()
			ch, busy := l.held[k]
			if !busy {
				l.held[k] = nil
				l.mu.Unlock()
				break
			}
			if ch == nil {
				ch = make(chan struct{})
				l.held[k] = ch
			}
			l.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				l.unlock(keys[:i])
				return ctx.Err()
			}
		}
	}
	return nil
}

func (l *lockTable) unlock(keys []recKey) {
	l.mu.Lock()
	for _, k := range keys {
		if ch := l.held[k]; ch != nil {
			close(ch)
		}
		delete(l.held, k)
	}
	l.mu.Unlock()
}

func compareRecKeys(a, b recKey) int {
	if a.typ != b.typ {
		if a.typ < b.typ {
			return -1
		}
		return 1
	}
	return slices.Compare(a.id[:], b.id[:])
}

// commitFast stages and commits one local changeset from edits on the
// calling goroutine (see above). It returns the changeset, or nil if the
// edits change nothing.
func (c *committer) commitFast(ctx context.Context, edits []Edit) (*changeset.Changeset, error) {
	r := c.r
	if ctx == nil {
		ctx = context.Background()
	}
	// New UUIDs, and the records to lock.
	es := slices.Clone(edits) // the caller's edits are not modified
	keys := make([]recKey, len(es))
	fresh := make([]bool, len(es))
	for i := range es {
		if es[i].Op == Create && es[i].Record == uuid.Nil {
			es[i].Record, fresh[i] = r.opts.NewUUID(), true
		}
		keys[i] = recKey{es[i].Type, es[i].Record}
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, compareRecKeys)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return nil, fmt.Errorf("replica: two edits of %s %s in one commit", sorted[i].typ, sorted[i].id)
		}
	}

	// sendMu (shared) keeps Close out until the unit is queued; gate
	// (shared) keeps the committer out.
	c.sendMu.RLock()
	if c.closed {
		c.sendMu.RUnlock()
		return nil, ErrClosed
	}
	c.gate.RLock()
	queued := false
	defer func() {
		if !queued {
			c.gate.RUnlock()
			c.sendMu.RUnlock()
		}
	}()
	if err := c.failure(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.locks.lock(ctx, sorted); err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			c.locks.unlock(sorted)
		}
	}()

	// Read the records and build the changeset against them.
	cur := make([]*state, len(keys)) // by edit
	cs := &changeset.Changeset{Creator: creatorFor(ctx, r.opts.Creator), Changes: make([]changeset.Change, 0, len(es))}
	for i := range es {
		var s *state
		if !fresh[i] {
			var err error
			if s, err = r.readState(keys[i].typ, keys[i].id); err != nil {
				return nil, err
			}
		}
		cur[i] = s
		ch, err := es[i].change(s.visible())
		if err != nil {
			return nil, err
		}
		if ch != nil {
			cs.Changes = append(cs.Changes, *ch)
		}
	}
	if len(cs.Changes) == 0 {
		// Nothing to write; the answer rests on what was read, which
		// may not be durable yet.
		c.mu.Lock()
		seq := c.seq
		c.mu.Unlock()
		c.locks.unlock(sorted)
		locked = false
		c.gate.RUnlock()
		c.sendMu.RUnlock()
		queued = true
		return nil, c.waitDurable(seq)
	}
	cs.Normalize()
	// Check it before it takes a sequence number, which must not go to
	// waste (a hole in the log).
	cs.Origin, cs.OriginSeq, cs.Created = r.id, 1, r.opts.Clock()
	if err := cs.Validate(); err != nil {
		return nil, err
	}
	var luids []luidRange // new live records take LUIDs, per type
	for i := range cs.Changes {
		if ch := &cs.Changes[i]; ch.Op == changeset.Add {
			j := slices.IndexFunc(luids, func(l luidRange) bool { return l.typ == ch.RecordType })
			if j < 0 {
				j = len(luids)
				luids = append(luids, luidRange{typ: ch.RecordType})
			}
			luids[j].n++
		}
	}

	// The serial part: sequence number, creation time, LUIDs.
	u := &fastUnit{req: &request{ctx: ctx, done: make(chan struct{})}, keys: sorted}
	c.mu.Lock()
	c.seq++
	u.seq = c.seq
	ns := cs.Created.UnixNano()
	if ns <= c.hlc {
		ns = c.hlc + 1
	}
	c.hlc, u.hlc = ns, ns
	for i := range luids {
		s := c.typeStatsLocked(luids[i].typ)
		luids[i].first = s.NextLUID
		s.NextLUID += luids[i].n
		c.types[luids[i].typ] = s
	}
	c.mu.Unlock()

	// From here on the unit goes to the applier whatever happens: its
	// sequence number is taken.
	cs.Seq, cs.Source, cs.OriginSeq = u.seq, r.id, u.seq
	cs.Created = timeFromNanos(ns)
	u.err = u.stage(cs, keys, cur, luids)
	u.req.out = []*changeset.Changeset{cs}
	locked = false // the applier unlocks
	c.fastq <- u
	queued = true
	c.gate.RUnlock()
	c.sendMu.RUnlock()
	<-u.req.done
	if u.req.err != nil {
		return nil, u.req.err
	}
	return cs, nil
}

// luidRange is the LUIDs a commit takes for one type: n from first.
type luidRange struct {
	typ      string
	first, n uint64
}

// stage writes the unit's keys: the log entry and, for each change, what
// putRecord writes, with the LUIDs taken for it. keys and cur are the
// edits' records and their states before.
func (u *fastUnit) stage(cs *changeset.Changeset, keys []recKey, cur []*state, luids []luidRange) (err error) {
	// Its sequence number is taken: a panic here must become an error
	// that stops the replica, not a hole the applier waits on for ever.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("replica: staging changeset %d panicked: %v", cs.Seq, p)
		}
	}()
	enc, err := changeset.Encode(nil, cs)
	if err != nil {
		return err
	}
	w := opBuffer{ops: make([]op, 0, 8*len(cs.Changes))}
	w.Set(logKey(cs.Seq), enc, nil)
	stats := make([]typeStats, 0, 1)
	for i := range cs.Changes {
		ch := &cs.Changes[i]
		k := recKey{ch.RecordType, ch.Record}
		old := cur[slices.Index(keys, k)]
		next, err := applyChange(cs, ch, old, true)
		if err != nil {
			return err
		}
		j := slices.IndexFunc(u.types, func(d typeDelta) bool { return d.typ == k.typ })
		if j < 0 {
			j = len(u.types)
			u.types = append(u.types, typeDelta{typ: k.typ})
			s := typeStats{}
			if l := slices.IndexFunc(luids, func(l luidRange) bool { return l.typ == k.typ }); l >= 0 {
				s.NextLUID = luids[l].first
			}
			stats = append(stats, s)
		}
		putRecord(&w, &w.arena, cs.Seq, stagedChange{k: k, old: old, new: next}, &stats[j], &u.dig)
	}
	u.ops = w.ops
	for j := range u.types {
		u.types[j].live = stats[j].Live
		u.types[j].next = stats[j].NextLUID
	}
	// The applier's NextLUID covers every LUID taken, used or not.
	for _, l := range luids {
		j := slices.IndexFunc(u.types, func(d typeDelta) bool { return d.typ == l.typ })
		u.types[j].next = max(u.types[j].next, l.first+l.n)
	}
	return nil
}

// typeStatsLocked is the staged stats of typ (c.mu held, or the gate held
// exclusively).
func (c *committer) typeStatsLocked(typ string) typeStats {
	if s, ok := c.types[typ]; ok {
		return s
	}
	return typeStats{NextLUID: 1}
}

// waitDurable waits until the log is durable up to seq, or commits fail.
func (c *committer) waitDurable(seq uint64) error {
	c.durMu.Lock()
	defer c.durMu.Unlock()
	for c.r.durable.Load() < seq {
		if err := c.failure(); err != nil {
			return err
		}
		c.durCond.Wait()
	}
	return nil
}
