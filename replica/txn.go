package replica

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

type recKey struct {
	typ string
	id  uuid.UUID
}

// txn is one group commit being built: a Pebble batch plus overlays of
// everything the batch changes, so that later units in the same batch see
// the effects of earlier ones. Only the committer goroutine touches it.
type txn struct {
	c    *committer
	w    opBuffer      // the batch's writes, until the applier builds it
	b    *pebble.Batch // built by the applier from w
	n    int           // changesets staged
	size int           // bytes of changesets staged
	seq  uint64
	dig  digest
	hlc  int64

	// applied is closed once the applier has applied b (commit.go).
	applied chan struct{}

	states  map[recKey]*state // nil value: never seen
	ids     map[changeset.ID]bool
	tickets map[uuid.UUID]uint64
	types   map[string]typeStats

	// it reads Pebble while the group is staged (get); commit closes it.
	it *pebble.Iterator
}

func (c *committer) newTxn() *txn {
	return &txn{
		c: c, seq: c.seq, dig: c.dig, hlc: c.hlc, w: opBuffer{ops: getOps(), arena: arena{size: 64 << 10}},
		states: map[recKey]*state{}, ids: map[changeset.ID]bool{},
		tickets: map[uuid.UUID]uint64{}, types: map[string]typeStats{},
	}
}

func (t *txn) ticket(origin uuid.UUID) uint64 {
	if v, ok := t.tickets[origin]; ok {
		return v
	}
	return t.c.tickets[origin]
}

func (t *txn) typeStats(typ string) typeStats {
	if s, ok := t.types[typ]; ok {
		return s
	}
	if s, ok := t.c.types[typ]; ok {
		return s
	}
	return typeStats{NextLUID: 1}
}

func (t *txn) hasID(id changeset.ID) (bool, error) {
	if t.ids[id] {
		return true, nil
	}
	for _, p := range t.c.pending {
		if p.ids[id] {
			return true, nil
		}
	}
	_, ok, err := t.get(originKey(id.Origin, id.Seq))
	return ok, err
}

// get reads a key that likely does not exist (a new record, a changeset
// not yet integrated) from Pebble, through one iterator for the whole
// group.
//
// The iterator uses L6's bloom filters, which Pebble's Get and iterators
// skip by default (they expect keys to exist there): without them each
// such read cost a data block of the last level, half of a bulk load's
// staging in a large replica. For a key that does exist, the filter is
// only a cost, so those reads are Gets (expectAny).
//
// The iterator does not see the batches applied after it was made, but
// those are still in c.pending until this group is committed (commit
// prunes them only then), and lookups read c.pending first.
func (t *txn) get(key []byte) ([]byte, bool, error) {
	if t.it == nil {
		it, err := t.c.r.db.NewIter(&pebble.IterOptions{UseL6Filters: true})
		if err != nil {
			return nil, false, err
		}
		t.it = it
	}
	if !t.it.SeekPrefixGE(key) || !bytes.Equal(t.it.Key(), key) {
		return nil, false, t.it.Error()
	}
	v, err := t.it.ValueAndErr()
	if err != nil {
		return nil, false, err
	}
	return bytes.Clone(v), true, nil
}

// readState is Replica.readState through get.
func (t *txn) readState(typ string, id uuid.UUID) (*state, error) {
	v, ok, err := t.get(recordKey(typ, id))
	if err != nil || !ok {
		return nil, err
	}
	return t.c.r.decodeStateOf(typ, id, v)
}

// closeReader closes the group's iterator.
func (t *txn) closeReader() {
	if t.it != nil {
		t.it.Close()
		t.it = nil
	}
}

// pendingState finds a record in the batches not yet applied, newest first.
func (t *txn) pendingState(k recKey) (*state, bool) {
	for i := len(t.c.pending) - 1; i >= 0; i-- {
		if s, ok := t.c.pending[i].states[k]; ok {
			return s, true
		}
	}
	return nil, false
}

// flushMeta writes the per-batch keys: tickets, type stats and the digest.
func (t *txn) flushMeta() {
	for o, v := range t.tickets {
		t.w.Set(ticketKey(o), appendU64(nil, v), nil)
	}
	for typ, s := range t.types {
		t.w.Set(typeKey(typ), typeStatsValue(s), nil)
	}
	t.w.Set(metaKey(metaDigest), t.dig.bytes(), nil)
	t.w.Set(metaKey(metaHLC), appendU64(nil, uint64(t.hlc)), nil)
}

// unit stages one atomic request on top of t. Nothing reaches t until merge.
type unit struct {
	t   *txn
	seq uint64
	hlc int64
	// states is the unit's view of every record it has looked at: nil for
	// a record never seen.
	states map[recKey]*state
	ids    map[changeset.ID]bool
	out    []stagedCS
	skip   int
	set    map[uuid.UUID]uint64
	// creator of local changesets made from edits ("": Options.Creator)
	creator string
}

type stagedCS struct {
	cs      *changeset.Changeset
	enc     []byte
	changes []stagedChange
}

type stagedChange struct {
	k        recKey
	old, new *state
}

func (t *txn) unit() *unit {
	return &unit{t: t, seq: t.seq, hlc: t.hlc, states: map[recKey]*state{}, ids: map[changeset.ID]bool{}}
}

// lookup returns the record's current state in the unit's view (nil: never
// seen; see state.visible for live). It reads the DB at most once per
// record and unit, as e says (expect).
func (u *unit) lookup(k recKey, e expect) (*state, error) {
	if s, ok := u.states[k]; ok {
		return s, nil
	}
	if s, ok := u.t.states[k]; ok {
		return s, nil
	}
	if s, ok := u.t.pendingState(k); ok {
		// Changed by an earlier batch the applier may not have applied.
		return s, nil
	}
	var cur *state
	var err error
	switch e {
	case expectNew:
		cur, err = u.t.readState(k.typ, k.id)
	case expectAny:
		cur, err = u.t.c.r.readState(k.typ, k.id)
	}
	if err != nil {
		return nil, err
	}
	u.states[k] = cur
	return cur, nil
}

// expect is what a lookup expects to find, which picks how it reads.
type expect uint8

const (
	// expectAny: a record that may well exist (an update, a delete, a
	// put): a Get, which stops at the first level that holds it.
	expectAny expect = iota
	// expectNew: a record that likely does not exist (an add): the
	// group's iterator, which checks every level's bloom filter (get).
	expectNew
	// expectNone: a record whose UUID this commit generated: no read.
	expectNone
)

// edits stages one local changeset built from edits against current state.
// flags marks it as a nullification or resolution (settle.go).
func (u *unit) edits(edits []Edit, flags ...func(*changeset.Changeset)) (*changeset.Changeset, error) {
	r := u.t.c.r
	cs := &changeset.Changeset{Creator: u.creator}
	if cs.Creator == "" {
		cs.Creator = r.opts.Creator
	}
	for _, f := range flags {
		f(cs)
	}
	seen := map[recKey]bool{}
	for i := range edits {
		e := edits[i] // a copy: the caller's Edit is not modified
		fresh := e.Op == Create && e.Record == uuid.Nil
		if fresh {
			e.Record = r.opts.NewUUID()
		}
		k := recKey{e.Type, e.Record}
		if seen[k] {
			return nil, fmt.Errorf("replica: two edits of %s %s in one commit", e.Type, e.Record)
		}
		seen[k] = true
		want := expectAny
		switch {
		case fresh:
			want = expectNone
		case e.Op == Create:
			want = expectNew
		}
		cur, err := u.lookup(k, want)
		if err != nil {
			return nil, err
		}
		ch, err := e.change(cur.visible())
		if err != nil {
			return nil, err
		}
		if ch != nil {
			cs.Changes = append(cs.Changes, *ch)
		}
	}
	if len(cs.Changes) == 0 {
		return nil, nil
	}
	cs.Normalize()
	cs.Created = u.tick(r.opts.Clock())
	if err := u.append(cs, true, true); err != nil {
		return nil, err
	}
	return cs, nil
}

// integrate stages changesets from elsewhere (Origin == uuid.Nil: written
// here), in order, all or none. A changeset that does not apply cleanly is
// settled by settle (settle.go) when it is not nil, else refused with a
// *ConflictError.
func (u *unit) integrate(css []*changeset.Changeset, settle Settler) error {
	r := u.t.c.r
	for i, in := range css {
		if in == nil {
			return fmt.Errorf("replica: changeset %d of the unit is nil", i+1)
		}
		local := in.Origin == uuid.Nil
		if !local {
			if in.Origin == r.id {
				// Our own changesets are not in the identity index:
				// their OriginSeq is their Seq. A peer can only have
				// durable ones (I5), and they must be the very same.
				if in.OriginSeq <= r.durable.Load() {
					if err := r.sameAsLogged(in); err != nil {
						return err
					}
					u.skip++
					continue
				}
				return fmt.Errorf("replica: a peer sent changeset %s, which this replica wrote but no longer has; it was restored from an older copy: re-clone it", in.ID())
			}
			have, err := u.has(in.ID())
			if err != nil {
				return err
			}
			if have {
				u.skip++
				continue
			}
		}
		cs := *in // the caller's changeset is not modified
		if local {
			cs.Created = u.tick(cs.Created)
		}
		// A nullification or resolution made elsewhere settled a conflict
		// there: its old values are that replica's, so it is not checked
		// here; its writes take effect by stamp like any other (I6).
		checked := local || !(cs.IsNullification || cs.IsResolution)
		err := u.append(&cs, local, checked)
		var ce *ConflictError
		if err != nil && settle != nil && !local && errors.As(err, &ce) {
			err = u.settle(&cs, settle)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tick returns the creation time of a new local changeset: at least want
// (the clock), and later than every changeset the unit's view holds, so
// that its writes win against everything this replica has seen (the hybrid
// logical clock; DESIGN.md, "Merge").
func (u *unit) tick(want time.Time) time.Time {
	ns := want.UnixNano()
	if ns <= u.hlc {
		ns = u.hlc + 1
	}
	u.hlc = ns
	return time.Unix(0, ns).UTC()
}

func (u *unit) has(id changeset.ID) (bool, error) {
	if u.ids[id] {
		return true, nil
	}
	return u.t.hasID(id)
}

// append applies cs to the unit's view, refusing it if checked and it does
// not apply cleanly, and stages it. For a local changeset it first assigns
// Origin and OriginSeq.
func (u *unit) append(cs *changeset.Changeset, local, checked bool) error {
	r := u.t.c.r
	u.seq++
	cs.Seq, cs.Source = u.seq, r.id
	if local {
		cs.Origin, cs.OriginSeq = r.id, u.seq
	}
	enc, err := changeset.Encode(nil, cs)
	if err != nil {
		u.seq--
		return err
	}
	st := stagedCS{cs: cs, enc: enc, changes: make([]stagedChange, len(cs.Changes))}
	for i := range cs.Changes {
		ch := &cs.Changes[i]
		k := recKey{ch.RecordType, ch.Record}
		e := expectAny
		if ch.Op == changeset.Add {
			e = expectNew
		}
		cur, err := u.lookup(k, e)
		if err != nil {
			u.seq--
			return err
		}
		next, err := applyChange(cs, ch, cur, checked)
		if err != nil {
			u.seq--
			// Undo the earlier changes of this changeset in the view.
			for _, sc := range st.changes[:i] {
				u.states[sc.k] = sc.old
			}
			return err
		}
		st.changes[i] = stagedChange{k: k, old: cur, new: next}
		u.states[k] = next
	}
	u.ids[cs.ID()] = true
	u.hlc = max(u.hlc, cs.Created.UnixNano())
	u.out = append(u.out, st)
	return nil
}

func (u *unit) setTickets(set map[uuid.UUID]uint64) error {
	for origin, v := range set {
		held := u.seq // our own changesets: OriginSeq is Seq
		if origin != u.t.c.r.id {
			var err error
			if held, err = u.t.c.r.maxIntegrated(origin); err != nil {
				return err
			}
			// ...and what batches not yet applied hold from it.
			for _, p := range u.t.c.pending {
				held = max(held, maxFrom(p.ids, origin))
			}
			held = max(held, maxFrom(u.t.ids, origin))
		}
		if v > held {
			return fmt.Errorf("replica: ticket %s = %d is ahead of the log, which holds changesets from it up to %d", origin, v, held)
		}
	}
	u.set = set
	return nil
}

// merge writes the unit into the batch and returns what it appended.
func (u *unit) merge() ([]*changeset.Changeset, int) {
	t := u.t
	out := make([]*changeset.Changeset, 0, len(u.out))
	for _, st := range u.out {
		cs := st.cs
		t.w.Set(t.w.arena.logKey(cs.Seq), st.enc, nil)
		if cs.Origin != u.t.c.r.id {
			t.w.Set(originKey(cs.Origin, cs.OriginSeq), appendU64(nil, cs.Seq), nil)
		}
		t.ids[cs.ID()] = true
		if cs.OriginSeq > t.ticket(cs.Origin) {
			t.tickets[cs.Origin] = cs.OriginSeq
		}
		for _, sc := range st.changes {
			t.writeRecord(cs.Seq, sc)
		}
		t.n++
		t.size += len(st.enc)
		out = append(out, cs)
	}
	for origin, v := range u.set {
		t.tickets[origin] = v
	}
	t.seq, t.hlc = u.seq, u.hlc
	return out, u.skip
}

// writeRecord stages one record's change in t's batch and overlays.
func (t *txn) writeRecord(seq uint64, sc stagedChange) {
	stats := t.typeStats(sc.k.typ)
	putRecord(&t.w, &t.w.arena, seq, sc, &stats, &t.dig)
	t.types[sc.k.typ] = stats
	t.states[sc.k] = sc.new
}

// putRecord writes the keys of one record's change: its new state, history
// entry, property index changes and, for a record that becomes live, a new
// LUID (set in sc.new, so later changes in the batch carry it on; a record
// deleted and added again gets a new one). It updates stats and dig from
// the visible states. The commit path and verify's replay both use it, so a
// replay writes byte-for-byte what a commit wrote.
func putRecord(b keyWriter, a *arena, seq uint64, sc stagedChange, stats *typeStats, dig *digest) {
	k := sc.k
	was, is := sc.old.visible(), sc.new.visible()
	switch {
	case was == nil && is != nil:
		sc.new.LUID = stats.NextLUID
		stats.NextLUID++
		b.Set(a.luidRevKey(k.typ, sc.new.LUID), k.id[:], nil)
	case sc.old != nil:
		sc.new.LUID = sc.old.LUID
	}
	b.Set(a.historyKey(k.typ, k.id, seq), nil, nil)
	b.Set(a.recordKey(k.typ, k.id), encodeState(a, sc.new), nil)
	var oldProps, newProps []Prop
	if was != nil {
		oldProps = was.Props
		dig.sub(recordHash(k.typ, k.id, oldProps))
		stats.Live--
	}
	if is != nil {
		newProps = is.Props
		dig.add(recordHash(k.typ, k.id, newProps))
		stats.Live++
	}
	diffProps(oldProps, newProps, func(p Prop) {
		b.Delete(a.propKey(k.typ, p.Name, p.Value, k.id), nil)
	}, func(p Prop) {
		b.Set(a.propKey(k.typ, p.Name, p.Value, k.id), nil, nil)
	})
}

// diffProps calls del for each property of old not in new (or changed), and
// add for each of new not in old (or changed). Both are sorted by name.
func diffProps(old, new []Prop, del, add func(Prop)) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && old[i].Name < new[j].Name):
			del(old[i])
			i++
		case i == len(old) || new[j].Name < old[i].Name:
			add(new[j])
			j++
		default:
			if old[i].Value != new[j].Value {
				del(old[i])
				add(new[j])
			}
			i++
			j++
		}
	}
}

// typeStatsValue is the S value: next LUID, then live count.
func typeStatsValue(s typeStats) []byte { return appendU64(appendU64(nil, s.NextLUID), s.Live) }

// maxFrom is the highest sequence number from origin among ids (0: none).
func maxFrom(ids map[changeset.ID]bool, origin uuid.UUID) uint64 {
	var m uint64
	for id := range ids {
		if id.Origin == origin {
			m = max(m, id.Seq)
		}
	}
	return m
}

// keyWriter is what putRecord writes to: a Pebble batch (verify's replay) or
// an opBuffer (the commit path).
type keyWriter interface {
	Set(key, value []byte, _ *pebble.WriteOptions) error
	Delete(key []byte, _ *pebble.WriteOptions) error
}

// opBuffer collects a group's writes so the applier can write them to the
// batch in key order. Pebble's memtable inserter reuses the position of the
// previous insert, so sorted inserts cost a fraction of scattered ones; the
// sort is stable, so writes to one key keep their order.
type opBuffer struct {
	ops   []op
	arena arena // the keys and values of ops
}

type op struct {
	key, value []byte
	del        bool
	n          int // order of the write, so writes to one key keep it
}

func (w *opBuffer) Set(key, value []byte, _ *pebble.WriteOptions) error {
	w.ops = append(w.ops, op{key: key, value: value, n: len(w.ops)})
	return nil
}

func (w *opBuffer) Delete(key []byte, _ *pebble.WriteOptions) error {
	w.ops = append(w.ops, op{key: key, del: true, n: len(w.ops)})
	return nil
}

// build writes the ops, sorted by key, into a new batch of db.
func (w *opBuffer) build(db *pebble.DB) *pebble.Batch {
	// An unstable sort with the write order as the tie-break: stable, and
	// O(n log n) where SortStableFunc's merges cost O(n log² n) moves.
	slices.SortFunc(w.ops, func(a, b op) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.n, b.n)
	})
	size := 0
	for _, o := range w.ops {
		size += len(o.key) + len(o.value) + 16
	}
	b := db.NewBatchWithSize(size)
	for _, o := range w.ops {
		if o.del {
			b.Delete(o.key, nil)
		} else {
			b.Set(o.key, o.value, nil)
		}
	}
	putOps(w.ops)
	w.ops, w.arena = nil, arena{}
	return b
}

// opsPool keeps the write buffers of applied groups: a bulk load's group
// holds tens of thousands of writes, and growing a new buffer each time
// cost a seventh of its CPU in copying.
var opsPool sync.Pool

func getOps() []op {
	if p, ok := opsPool.Get().(*[]op); ok {
		return (*p)[:0]
	}
	return nil
}

func putOps(ops []op) {
	if cap(ops) == 0 || cap(ops) > 1<<20 {
		return
	}
	clear(ops[:cap(ops)]) // drop the keys and values for the GC
	ops = ops[:0]
	opsPool.Put(&ops)
}
