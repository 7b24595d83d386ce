package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
	"golang.org/x/sync/semaphore"

	"github.com/prophet-sync/prophet/changeset"
)

// Commit path (DESIGN.md, "Commit path").
//
// Local commits stage on their callers' goroutines, in parallel (fast.go),
// and meet the pipeline below at the applier. Every other write goes
// through three goroutines in a pipeline:
//
//   - the committer takes the first request, then every request already
//     queued (up to Options.MaxGroupChangesets / MaxGroupBytes), and stages
//     them one after another into one group (a txn): sequence numbers,
//     LUIDs and the read-modify-write of record state are race-free because
//     only it does them;
//   - the applier writes each group's keys, sorted, into a Pebble batch and
//     applies it without waiting for the fsync, one group at a time, so WAL
//     order is log order;
//   - the syncer waits for each batch's fsync, in order, publishes the new
//     durable state and answers the group's requests (I1).
//
// So N concurrent committers share one fsync (group commit), and
// consecutive groups are staged, applied and synced at once. Until the
// applier has applied a group, staging reads its writes from its overlays
// (c.pending).
//
// Each request is a unit: all of it lands or none of it does. A unit is
// staged against a view of the state (its own overlay, over the group's,
// over the groups in flight, over the DB) and only merged into the group
// once all of it applies. A unit that fails leaves no trace; the others in
// the group commit normally.
//
// If a write or fsync fails, the replica stops taking commits: Pebble's state
// after a failed WAL write is not to be trusted, and reopening replays what
// is durable.

// request is one unit sent to the committer.
type request struct {
	ctx    context.Context
	css    []*changeset.Changeset // changesets to integrate, all or none, or
	settle Settler                // settles their conflicts (nil: refuse them)
	bulk   func() (*Unit, error)  // a bulk load, or
	set    map[uuid.UUID]uint64   // tickets to set, or
	// quiesce runs on the committer once every commit before it is
	// durable, while the ones after it wait (Clone's copy).
	quiesce func() error

	done       chan struct{}
	out        []*changeset.Changeset // what was committed
	skip       int                    // integrated before: skipped
	bulkResult BulkResult
	err        error
}

type committer struct {
	r    *Replica
	reqs chan *request
	quit chan struct{}
	wg   sync.WaitGroup

	// sendMu orders sends on reqs before close: a sender holds it shared
	// while it sends, close takes it exclusively to set closed. So once the
	// committer drains reqs after quit, no request can arrive unanswered.
	sendMu sync.RWMutex
	closed bool

	// applyq carries staged batches to the applier, syncq applied ones to
	// the syncer. fastq carries the units of parallel commits (fast.go) to
	// the applier, in any order.
	applyq, syncq chan *inflight
	fastq         chan *fastUnit
	// unsynced bounds the bytes of the batches applied and not yet
	// answered (their log entries): the applier waits for the syncer
	// beyond it, so a slow disk holds back bulk loads instead of piling
	// batches up in memory. Small batches never wait: blocking the applier
	// behind an fsync kept the next batch out of the WAL until the fsync
	// was answered, and the disk idled meanwhile.
	unsynced *semaphore.Weighted

	// gate is held shared by parallel commits while they stage, and
	// exclusively by the committer while it stages and applies (fast.go).
	gate sync.RWMutex
	// mu guards seq, hlc and types' NextLUID for parallel commits; the
	// committer, holding gate exclusively, needs no lock.
	mu    sync.Mutex
	locks lockTable
	// ap is what the applier has applied.
	ap applied
	// durCond is signalled by the syncer after each batch.
	durMu   sync.Mutex
	durCond *sync.Cond
	// pending are batches handed to the applier, oldest first, that may
	// not be applied yet (committer goroutine only).
	pending []*txn

	// failed is set when a batch could not be committed; every later
	// request gets it.
	failMu sync.Mutex
	failed error

	syncs, changesets atomic.Uint64 // for Stats

	// Staged state: owned by the committer goroutine while it holds gate
	// exclusively; parallel commits take seq, hlc and LUIDs under mu.
	seq     uint64
	hlc     int64
	tickets map[uuid.UUID]uint64
	types   map[string]typeStats
	dig     digest
}

func newCommitter(r *Replica) *committer {
	c := &committer{
		r:        r,
		reqs:     make(chan *request, 1024),
		quit:     make(chan struct{}),
		seq:      r.durable.Load(),
		hlc:      r.hlc,
		tickets:  maps.Clone(r.tickets),
		types:    maps.Clone(r.types),
		dig:      r.dig,
		applyq:   make(chan *inflight, 0),
		syncq:    make(chan *inflight, syncQueueLen),
		fastq:    make(chan *fastUnit, 1024),
		locks:    lockTable{held: map[recKey]chan struct{}{}},
		unsynced: semaphore.NewWeighted(unsyncedGroups * int64(r.opts.MaxGroupBytes)),
		ap: applied{
			seq: r.durable.Load(), hlc: r.hlc, dig: r.dig,
			tickets: maps.Clone(r.tickets), types: maps.Clone(r.types),
		},
	}
	c.ap.cond.L = &c.ap.mu
	c.durCond = sync.NewCond(&c.durMu)
	c.wg.Add(3)
	go c.run()
	go c.applier()
	go c.syncer()
	return c
}

func (c *committer) close() {
	c.sendMu.Lock()
	c.closed = true
	c.sendMu.Unlock()
	close(c.quit)
	c.wg.Wait()
}

// send queues req unless the committer is closed.
func (c *committer) send(req *request) error {
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	select {
	case c.reqs <- req:
		return nil
	case <-req.ctx.Done():
		return req.ctx.Err()
	}
}

var errReadOnly = errors.New("replica: opened read-only; reopen it without ReadOnly to write")

// submit sends req and waits for its answer.
func (r *Replica) submit(req *request) error {
	if r.c == nil {
		return errReadOnly
	}
	if req.ctx == nil {
		req.ctx = context.Background()
	}
	req.done = make(chan struct{})
	if err := r.c.send(req); err != nil {
		return err
	}
	// Once queued, a request is always answered; waiting for the answer
	// rather than for ctx means a caller never mistakes a commit that
	// happened for one that did not.
	<-req.done
	return req.err
}

func (c *committer) run() {
	defer c.wg.Done()
	defer close(c.applyq) // the applier and syncer finish what is in flight, then stop
	for {
		var first *request
		select {
		case first = <-c.reqs:
		case <-c.quit:
			// Answer what is still queued, then stop.
			for {
				select {
				case req := <-c.reqs:
					req.err = ErrClosed
					close(req.done)
				default:
					return
				}
			}
		}
		// Keep parallel commits out, and start from what they wrote.
		c.gate.Lock()
		c.catchUp()
		c.group(first)
	more:
		for {
			select {
			case req := <-c.reqs:
				c.group(req)
			default:
				break more
			}
		}
		// Parallel commits read Pebble: let them in once it holds
		// everything staged here.
		if n := len(c.pending); n > 0 {
			<-c.pending[n-1].applied
			c.prune()
		}
		c.gate.Unlock()
	}
}

// applied is the state after the batches the applier has applied: what the
// committer starts from when it takes over from parallel commits.
type applied struct {
	mu      sync.Mutex
	cond    sync.Cond // broadcast after each batch
	seq     uint64
	hlc     int64
	dig     digest
	tickets map[uuid.UUID]uint64
	types   map[string]typeStats
}

// catchUp waits until the applier has applied every parallel commit, then
// takes their effects into the committer's staged state (gate held
// exclusively).
func (c *committer) catchUp() {
	a := &c.ap
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.seq < c.seq && c.failure() == nil {
		a.cond.Wait()
	}
	c.dig, c.hlc = a.dig, max(c.hlc, a.hlc)
	c.tickets, c.types = maps.Clone(a.tickets), maps.Clone(a.types)
}

// group stages first and whatever else is queued into one batch and hands
// it to the syncer.
func (c *committer) group(first *request) {
	t := c.newTxn()
	var staged []*request
	add := func(req *request) {
		if err := c.failure(); err != nil {
			req.err = err
			close(req.done)
			return
		}
		if req.bulk != nil {
			// A bulk load commits its own batches; send ours first so
			// order is kept.
			c.commit(t, staged)
			c.runBulk(req)
			// A new batch from the state the bulk load left: its
			// sequence numbers, tickets and digest.
			staged, t = nil, c.newTxn()
			return
		}
		if err := req.ctx.Err(); err != nil {
			req.err = err
			close(req.done)
			return
		}
		if req.quiesce != nil {
			c.commit(t, staged)
			staged, t = nil, c.newTxn()
			// A marker is answered once everything before it is
			// durable; nothing new is staged until quiesce returns.
			m := &request{ctx: req.ctx, done: make(chan struct{})}
			c.commit(c.newTxn(), []*request{m})
			<-m.done
			if req.err = m.err; req.err == nil {
				req.err = req.quiesce()
			}
			close(req.done)
			return
		}
		req.err = c.stage(t, req)
		if req.err != nil {
			close(req.done)
			return
		}
		staged = append(staged, req)
	}
	add(first)
more:
	for t.n < c.r.opts.MaxGroupChangesets && t.size < c.r.opts.MaxGroupBytes {
		select {
		case req := <-c.reqs:
			add(req)
		default:
			break more
		}
	}
	c.commit(t, staged)
}

// inflight is a staged batch on its way through the applier (memtable) and
// the syncer (WAL fsync), which answers reqs once it is durable.
type inflight struct {
	t      *txn
	reqs   []*request
	err    error // set by the applier if the batch could not be applied
	marker bool  // nothing to write: only answer reqs, in order
	weight int64 // its share of committer.unsynced
}

const (
	// unsyncedGroups is how many full groups (Options.MaxGroupBytes) may
	// be applied and not yet answered.
	unsyncedGroups = 4
	// syncQueueLen is the capacity of syncq: far more small batches than
	// ever wait for one fsync, so that only unsynced holds the applier.
	syncQueueLen = 1024
)

// commit hands t to the applier and moves the committer's own state on, so
// the next group is staged at once, while t is applied to the memtable on
// another core and then fsynced. Requests that arrive meanwhile form the
// next group: that is how concurrent committers share fsyncs.
//
// Until the applier has applied t, its writes are not in Pebble; staging
// reads them from t's overlays instead (c.pending, consulted by lookup).
func (c *committer) commit(t *txn, reqs []*request) {
	t.closeReader()
	if len(t.w.ops) == 0 && len(t.tickets) == 0 && len(reqs) == 0 {
		return
	}
	f := &inflight{t: t, reqs: reqs}
	if len(t.w.ops) == 0 && len(t.tickets) == 0 {
		// Nothing to write (no-op edits, changesets already here), but
		// the answers may rest on batches still in flight: they travel the
		// pipeline as a marker and are answered in order, once everything
		// before them is durable.
		f.marker = true
	} else {
		t.flushMeta()
	}
	t.applied = make(chan struct{})
	c.seq, c.dig, c.hlc = t.seq, t.dig, t.hlc
	maps.Copy(c.tickets, t.tickets)
	maps.Copy(c.types, t.types)
	c.prune()
	c.pending = append(c.pending, t)
	c.applyq <- f
}

// prune forgets pending batches the applier has applied: Pebble has their
// writes now.
func (c *committer) prune() {
	for len(c.pending) > 0 {
		select {
		case <-c.pending[0].applied:
			c.pending[0] = nil
			c.pending = c.pending[1:]
		default:
			return
		}
	}
}

// applier applies batches to Pebble in log order (so WAL order is log order
// and a crash keeps a prefix of the log, I2) without waiting for their
// fsync: the committer's groups, and the units of parallel commits, as many
// consecutive ones per batch as are queued.
func (c *committer) applier() {
	defer c.wg.Done()
	defer close(c.syncq)
	held := map[uint64]*fastUnit{} // queued parallel units, by seq
	for {
		select {
		case f, ok := <-c.applyq:
			if !ok {
				// The committer has stopped, and Close keeps new
				// parallel commits out: apply what they queued.
				for len(c.fastq) > 0 {
					u := <-c.fastq
					held[u.seq] = u
				}
				c.applyFast(held)
				return
			}
			c.apply(f)
		case u := <-c.fastq:
			held[u.seq] = u
			// The committers that an fsync answered come back together,
			// and the first one's send woke us. Let those that are ready
			// to run stage and queue their units first, so that they go
			// into this batch rather than one batch each: a batch has a
			// fixed cost (its meta keys, a commit in Pebble, an answer).
			runtime.Gosched()
			for len(c.fastq) > 0 && len(held) < c.r.opts.MaxGroupChangesets {
				u := <-c.fastq
				held[u.seq] = u
			}
			c.applyFast(held)
		}
	}
}

// apply applies one batch and hands it to the syncer.
func (c *committer) apply(f *inflight) {
	if !f.marker && f.err == nil {
		f.t.b = f.t.w.build(c.r.db)
		if f.err = c.failure(); f.err == nil {
			if err := c.r.db.ApplyNoSyncWait(f.t.b, pebble.Sync); err != nil {
				f.err = c.fail(err)
			}
		}
	}
	close(f.t.applied)
	a := &c.ap
	a.mu.Lock()
	if f.err == nil {
		t := f.t
		a.seq, a.dig, a.hlc = t.seq, t.dig, t.hlc
		maps.Copy(a.tickets, t.tickets)
		maps.Copy(a.types, t.types)
	}
	a.cond.Broadcast()
	a.mu.Unlock()
	c.toSyncer(f)
}

// toSyncer hands an applied batch to the syncer, once the batches not yet
// answered leave room for it.
func (c *committer) toSyncer(f *inflight) {
	f.weight = min(max(int64(f.t.size), 1), unsyncedGroups*int64(c.r.opts.MaxGroupBytes))
	// Acquire fails only with a cancelled context, and this one is not.
	_ = c.unsynced.Acquire(context.Background(), f.weight)
	c.syncq <- f
}

// applyFast applies the parallel units in held that follow the last applied
// sequence number, in batches of consecutive ones; the others wait for the
// units before them.
func (c *committer) applyFast(held map[uint64]*fastUnit) {
	self := c.r.id
	for {
		if err := c.failure(); err != nil {
			c.refuseFast(held, err)
			return
		}
		next := c.ap.seq + 1 // written only by this goroutine
		if held[next] == nil {
			return
		}
		t := &txn{c: c, w: opBuffer{ops: getOps()}, dig: c.ap.dig, hlc: c.ap.hlc,
			tickets: map[uuid.UUID]uint64{}, types: map[string]typeStats{}, applied: make(chan struct{})}
		f := &inflight{t: t}
		var keys []recKey
		for u := held[next]; u != nil && t.n < c.r.opts.MaxGroupChangesets && t.size < c.r.opts.MaxGroupBytes; u = held[next] {
			delete(held, next)
			next++
			f.reqs = append(f.reqs, u.req)
			keys = append(keys, u.keys...)
			if u.err != nil && f.err == nil {
				f.err = c.fail(fmt.Errorf("staging changeset %d: %w", u.seq, u.err))
			}
			for _, o := range u.ops {
				o.n = len(t.w.ops)
				t.w.ops = append(t.w.ops, o)
			}
			t.n++
			if len(u.ops) > 0 {
				t.size += len(u.ops[0].value) // the log entry
			}
			t.seq, t.hlc = u.seq, max(t.hlc, u.hlc)
			t.dig.add(u.dig)
			for _, d := range u.types {
				s, ok := t.types[d.typ]
				if !ok {
					s = c.ap.typeStats(d.typ)
				}
				s.Live += d.live
				s.NextLUID = max(s.NextLUID, d.next)
				t.types[d.typ] = s
			}
		}
		t.tickets[self] = t.seq
		t.flushMeta()
		c.apply(f)
		// The next commit of these records may read them now.
		c.locks.unlock(keys)
	}
}

// refuseFast answers every queued unit with err, once commits have failed:
// nothing more is applied, and their records are unlocked.
func (c *committer) refuseFast(held map[uint64]*fastUnit, err error) {
	if len(held) == 0 {
		return
	}
	f := &inflight{t: &txn{applied: make(chan struct{})}, err: err}
	var keys []recKey
	for seq, u := range held {
		delete(held, seq)
		f.reqs = append(f.reqs, u.req)
		keys = append(keys, u.keys...)
	}
	close(f.t.applied)
	c.locks.unlock(keys)
	c.toSyncer(f)
}

// typeStats is typ's applied stats (applier goroutine).
func (a *applied) typeStats(typ string) typeStats {
	if s, ok := a.types[typ]; ok {
		return s
	}
	return typeStats{NextLUID: 1}
}

// syncer waits for each applied batch's fsync, in order, then publishes the
// new state to readers and answers the requests (I1, I5).
func (c *committer) syncer() {
	defer c.wg.Done()
	r := c.r
	for f := range c.syncq {
		err := f.err
		switch {
		case f.marker:
			// Everything before it is answered: durable, or failed.
			err = c.failure()
		case err == nil:
			// A batch whose fsync succeeded is durable, whatever failed
			// after it.
			if err = f.t.b.SyncWait(); err != nil {
				err = c.fail(err)
			}
		}
		if f.t.b != nil {
			f.t.b.Close()
		}
		if err == nil && !f.marker {
			c.syncs.Add(1)
			c.changesets.Add(uint64(f.t.n))
			r.mu.Lock()
			r.dig, r.hlc = f.t.dig, f.t.hlc
			maps.Copy(r.tickets, f.t.tickets)
			maps.Copy(r.types, f.t.types)
			r.mu.Unlock()
			r.durable.Store(f.t.seq)
			r.signal()
		}
		for _, req := range f.reqs {
			if err != nil {
				req.out, req.err = nil, err
			}
			close(req.done)
		}
		c.durMu.Lock()
		c.durCond.Broadcast()
		c.durMu.Unlock()
		c.unsynced.Release(f.weight)
	}
}

// fail records the first write failure; from then on every request fails.
// After a failed WAL write Pebble's state is not to be trusted; reopening
// replays what is durable.
func (c *committer) fail(err error) error {
	// Whoever waits for the applier or for durability sees it.
	defer func() {
		c.ap.mu.Lock()
		c.ap.cond.Broadcast()
		c.ap.mu.Unlock()
		c.durMu.Lock()
		c.durCond.Broadcast()
		c.durMu.Unlock()
	}()
	c.failMu.Lock()
	defer c.failMu.Unlock()
	if c.failed == nil {
		c.failed = fmt.Errorf("replica: a write failed, and this replica takes no more commits; reopen it and check with prophet verify (every acknowledged commit is safe; the ones that failed may or may not have been written): %w", err)
		c.r.opts.Logger.Error("commit failed", "err", err)
	}
	return c.failed
}

func (c *committer) failure() error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	return c.failed
}

func (c *committer) stage(t *txn, req *request) error {
	u := t.unit()
	u.creator = creatorFor(req.ctx, "")
	switch {
	case req.css != nil:
		if err := u.integrate(req.css, req.settle); err != nil {
			return err
		}
	case req.set != nil:
		if err := u.setTickets(req.set); err != nil {
			return err
		}
	}
	req.out, req.skip = u.merge()
	return nil
}

type creatorKey struct{}

// WithCreator returns a context under which Commit and Bulk's edits record
// creator as the changesets' creator, instead of Options.Creator: a server
// that commits for several people (prophet serve running the CLI of
// whoever calls it) holds one replica open for all of them.
func WithCreator(ctx context.Context, creator string) context.Context {
	return context.WithValue(ctx, creatorKey{}, creator)
}

// creatorFor is the creator WithCreator put in ctx, else def.
func creatorFor(ctx context.Context, def string) string {
	if ctx != nil {
		if v, ok := ctx.Value(creatorKey{}).(string); ok && v != "" {
			return v
		}
	}
	return def
}

// Commit makes one local changeset from edits and commits it durably. It
// returns the changeset as written (with Seq, Origin and old values filled
// in), or nil if the edits change nothing.
func (r *Replica) Commit(ctx context.Context, edits ...Edit) (*changeset.Changeset, error) {
	if len(edits) == 0 {
		return nil, errors.New("replica: Commit needs at least one edit")
	}
	if r.c == nil {
		return nil, errReadOnly
	}
	return r.c.commitFast(ctx, edits)
}

// Integrate appends changesets written elsewhere (or, with a nil Origin,
// written here: a merge's nullification and resolution) as one atomic unit:
// all of them are durable, or none is. A changeset already in the log (same
// Origin and OriginSeq) is skipped. A changeset that does not apply cleanly
// to the state before it fails the whole unit with a *ConflictError.
//
// It returns the changesets appended, with their local Seq.
func (r *Replica) Integrate(ctx context.Context, css ...*changeset.Changeset) (appended []*changeset.Changeset, skipped int, err error) {
	if len(css) == 0 {
		return nil, 0, nil
	}
	req := &request{ctx: ctx, css: css}
	if err := r.submit(req); err != nil {
		return nil, 0, err
	}
	return req.out, req.skip, nil
}

// IntegrateSettled is Integrate, except that a changeset from elsewhere that
// conflicts is settled by settle (settle.go): the unit then also holds the
// nullification and the resolution, right around the changeset.
func (r *Replica) IntegrateSettled(ctx context.Context, settle Settler, css ...*changeset.Changeset) (appended []*changeset.Changeset, skipped int, err error) {
	if len(css) == 0 {
		return nil, 0, nil
	}
	req := &request{ctx: ctx, css: css, settle: settle}
	if err := r.submit(req); err != nil {
		return nil, 0, err
	}
	return req.out, req.skip, nil
}

// Unit is one atomic piece of a bulk load: either a local changeset made from
// Edits, or Changesets to integrate, all or none.
type Unit struct {
	Edits      []Edit
	Changesets []*changeset.Changeset
	// Settle settles the conflicts of Changesets (nil: a conflict fails
	// the unit with a *ConflictError).
	Settle Settler
}

// BulkResult counts what a bulk load did.
type BulkResult struct {
	Units      int    // units read
	Changesets int    // changesets appended
	Skipped    int    // changesets already present
	LastSeq    uint64 // the log's last sequence number afterwards
}

// Bulk loads units from next until it returns (nil, nil) or io.EOF, many
// units per batch and fsync. Units are atomic; batches are not. Bulk returns
// once everything it loaded is durable. When a unit fails, everything
// before it is committed and durable, and the error is a *UnitError naming
// it. Concurrent commits wait while a bulk load runs. next runs on the
// committer goroutine: it must not call back into the replica.
func (r *Replica) Bulk(ctx context.Context, next func() (*Unit, error)) (BulkResult, error) {
	req := &request{ctx: ctx, bulk: next}
	err := r.submit(req)
	return req.bulkResult, err
}

// runBulk loads a bulk request. Its batches go through the syncer like any
// group; the request itself rides on the last one, so it is answered once
// everything it loaded is durable.
func (c *committer) runBulk(req *request) {
	t := c.newTxn()
	res := &req.bulkResult
	finish := func(err error) {
		req.err = err
		res.LastSeq = t.seq
		c.commit(t, []*request{req})
	}
	for {
		if err := req.ctx.Err(); err != nil {
			finish(err)
			return
		}
		unit, err := nextUnit(req.bulk)
		if errors.Is(err, io.EOF) || (err == nil && unit == nil) {
			finish(nil)
			return
		}
		if err != nil {
			finish(err)
			return
		}
		res.Units++
		u := t.unit()
		u.creator = creatorFor(req.ctx, "")
		if unit.Edits != nil {
			_, err = u.edits(unit.Edits)
		} else {
			err = u.integrate(unit.Changesets, unit.Settle)
		}
		if err != nil {
			finish(&UnitError{Unit: res.Units, Err: err})
			return
		}
		out, skip := u.merge()
		res.Changesets += len(out)
		res.Skipped += skip
		if t.n >= c.r.opts.MaxGroupChangesets || t.size >= c.r.opts.MaxGroupBytes {
			c.commit(t, nil)
			t = c.newTxn()
			if err := c.failure(); err != nil {
				finish(err)
				return
			}
		}
	}
}

// nextUnit calls a bulk load's callback, turning a panic in it into an
// error: it runs on the committer goroutine, which must survive it.
func nextUnit(next func() (*Unit, error)) (u *Unit, err error) {
	defer func() {
		if p := recover(); p != nil {
			u, err = nil, fmt.Errorf("replica: the bulk load's unit source panicked: %v", p)
		}
	}()
	return next()
}

// SetTicket sets the merge ticket of origin: the highest origin sequence
// number integrated from it. It refuses a value ahead of what the log holds
// from that origin (I4).
func (r *Replica) SetTicket(ctx context.Context, origin uuid.UUID, seq uint64) error {
	return r.submit(&request{ctx: ctx, set: map[uuid.UUID]uint64{origin: seq}})
}

// Stats counts the work of this process's committer since Open.
type Stats struct {
	Changesets uint64 // changesets committed
	Syncs      uint64 // batches synced: with group commit, fewer than Changesets
}

// Stats returns the commit counters.
func (r *Replica) Stats() Stats {
	if r.c == nil {
		return Stats{}
	}
	return Stats{Changesets: r.c.changesets.Load(), Syncs: r.c.syncs.Load()}
}
