package replica

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/prophet-sync/prophet/changeset"
)

// ReadChangeset returns the changeset at seq in this replica's log, with Seq
// and Source filled in.
func (r *Replica) ReadChangeset(seq uint64) (*changeset.Changeset, error) {
	if err := r.live(); err != nil {
		return nil, err
	}
	v, ok, err := r.get(logKey(seq))
	if err != nil {
		return nil, err
	}
	if !ok || seq > r.durable.Load() {
		return nil, fmt.Errorf("%w: no changeset %d in the log (latest is %d)", ErrNotFound, seq, r.durable.Load())
	}
	return r.decodeEntry(seq, v)
}

func (r *Replica) decodeEntry(seq uint64, v []byte) (*changeset.Changeset, error) {
	cs, err := changeset.Decode(v)
	if err != nil {
		return nil, fmt.Errorf("replica %s: log entry %d: %w", r.dir, seq, err)
	}
	cs.Seq, cs.Source = seq, r.id
	return cs, nil
}

// LogIter walks the log in sequence order, streaming: it holds one entry at
// a time, whatever the log's size. It sees the log as of its creation and
// stops at the last durable changeset then (I5); to follow a growing log,
// make a new iterator from the last sequence seen + 1.
//
//	it := r.Log(from)
//	defer it.Close()
//	for it.Next() {
//		cs, err := it.Changeset()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
type LogIter struct {
	r     *Replica
	it    *pebble.Iterator
	seq   uint64
	want  uint64 // next sequence number expected: a gap is corruption
	first bool
	err   error
}

// Log returns an iterator over the changesets with sequence number >= from.
func (r *Replica) Log(from uint64) *LogIter {
	if from == 0 {
		from = 1
	}
	last := r.durable.Load()
	li := &LogIter{r: r, want: from, first: true}
	if li.err = r.live(); li.err != nil {
		return li
	}
	li.it, li.err = r.db.NewIter(&pebble.IterOptions{
		LowerBound: logKey(from),
		UpperBound: logKey(last + 1),
	})
	return li
}

// Next moves to the next changeset. It returns false at the end or on error.
func (li *LogIter) Next() bool {
	if li.err != nil {
		return false
	}
	var ok bool
	if li.first {
		ok, li.first = li.it.First(), false
	} else {
		ok = li.it.Next()
	}
	if !ok {
		li.err = li.it.Error()
		return false
	}
	k := li.it.Key()
	if len(k) != 9 {
		li.err = errCorruptKey(k)
		return false
	}
	li.seq, _ = u64(k[1:])
	if li.seq != li.want {
		li.err = fmt.Errorf("%w: replica %s: the log jumps from %d to %d", ErrCorrupt, li.r.dir, li.want-1, li.seq)
		return false
	}
	li.want++
	return true
}

// Seq is the current changeset's local sequence number.
func (li *LogIter) Seq() uint64 { return li.seq }

// Raw returns the current changeset's canonical bytes. They are valid only
// until the next call to Next; copy them to keep them.
func (li *LogIter) Raw() []byte { return li.it.Value() }

// ID reads the current changeset's identity without decoding the rest.
func (li *LogIter) ID() (changeset.ID, error) { return changeset.PeekID(li.it.Value()) }

// Changeset decodes the current changeset.
func (li *LogIter) Changeset() (*changeset.Changeset, error) {
	return li.r.decodeEntry(li.seq, li.it.Value()) // Decode keeps no reference to it
}

// Err is the error that stopped the iteration, if any.
func (li *LogIter) Err() error { return li.err }

// Close releases the iterator.
func (li *LogIter) Close() error {
	if li.it == nil {
		return li.err
	}
	err := li.it.Close()
	li.it = nil
	if li.err != nil {
		return li.err
	}
	return err
}

// sameAsLogged checks that a changeset a peer sent with this replica as its
// origin is byte for byte the one in the log at its sequence number. If it
// is not, this replica was restored from an older copy and has since
// written different changesets under the same numbers.
func (r *Replica) sameAsLogged(cs *changeset.Changeset) error {
	enc, err := changeset.Encode(nil, cs)
	if err != nil {
		return err
	}
	have, ok, err := r.get(logKey(cs.OriginSeq))
	if err != nil {
		return err
	}
	if !ok || !bytes.Equal(have, enc) {
		return fmt.Errorf("replica: a peer sent changeset %s, which this replica wrote, but its log holds a different changeset %d: this replica was restored from an older copy and has diverged; re-clone it", cs.ID(), cs.OriginSeq)
	}
	return nil
}

// Changed returns a channel that is closed the next time the durable log
// grows (a commit, an integration or a bulk batch becomes durable), or the
// replica closes. Take it before reading the log, and a new one after it
// fires: then no change is missed.
func (r *Replica) Changed() <-chan struct{} {
	r.changedMu.Lock()
	defer r.changedMu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
		if r.closed.Load() {
			close(r.changed)
		}
	}
	return r.changed
}

// signal wakes the waiters of Changed.
func (r *Replica) signal() {
	r.changedMu.Lock()
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.changedMu.Unlock()
}

// Follow calls fn with every changeset in the log after sequence number
// after, in order, then with each new one as soon as it is durable, until
// ctx is done (it returns ctx.Err()), fn returns an error (it returns it) or
// the replica closes (ErrClosed). It is the change feed of an app that
// embeds a replica; Seq of each changeset is where to start again.
func (r *Replica) Follow(ctx context.Context, after uint64, fn func(*changeset.Changeset) error) error {
	for {
		changed := r.Changed()
		if err := r.live(); err != nil {
			return err
		}
		it := r.Log(after + 1)
		for it.Next() {
			cs, err := it.Changeset()
			if err == nil {
				err = fn(cs)
			}
			if err != nil {
				it.Close()
				return err
			}
			after = cs.Seq
		}
		if err := it.Close(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Holds reports whether this replica's log holds a changeset with the
// identity of raw (canonical bytes), and, if so, whether it is the same
// changeset: a different one under a held identity is forged or corrupt.
func (r *Replica) Holds(raw []byte) (held, same bool, err error) {
	if err := r.live(); err != nil {
		return false, false, err
	}
	id, err := changeset.PeekID(raw)
	if err != nil {
		return false, false, err
	}
	seq := id.Seq // our own changesets: OriginSeq is Seq
	if id.Origin != r.id {
		v, ok, err := r.get(originKey(id.Origin, id.Seq))
		if err != nil || !ok {
			return false, false, err
		}
		if seq, err = u64(v); err != nil {
			return false, false, err
		}
	} else if seq > r.durable.Load() {
		return false, false, nil
	}
	have, ok, err := r.get(logKey(seq))
	if err != nil || !ok {
		return false, false, err
	}
	if bytes.Equal(have, raw) {
		return true, true, nil
	}
	// The same changeset may be encoded again identically only: compare
	// what a changeset's identity and content are, its canonical bytes.
	cs, err := changeset.Decode(raw)
	if err != nil {
		return true, false, err
	}
	enc, err := changeset.Encode(nil, cs)
	if err != nil {
		return true, false, err
	}
	return true, bytes.Equal(have, enc), nil
}
