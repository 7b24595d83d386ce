package foreign

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
)

// OpState is a sync operation's state (seed 003).
type OpState uint8

const (
	Queued     OpState = iota + 1 // waiting to be processed
	Processing                    // being processed: at most one per record
	Completed                     // synced
	Errored                       // failed for good; Reason says why
	Canceled                      // a newer queued op for the record superseded it (Ref)
	Dropped                       // outdated: a newer op for the record already exists (Ref)
	Duplicate                     // an op with the same version already exists (Ref)
	Disabled                      // received, but the record's kind is not synced
)

var opStateNames = [...]string{"", "queued", "processing", "completed", "errored", "canceled", "dropped", "duplicate", "disabled"}

func (s OpState) String() string {
	if int(s) < len(opStateNames) && s > 0 {
		return opStateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// Active says whether the op still waits or runs.
func (s OpState) Active() bool { return s == Queued || s == Processing }

// Direction is where an op carries a change.
type Direction uint8

const (
	Inbound  Direction = 1 // remote -> gateway replica
	Outbound Direction = 2 // gateway replica -> remote
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "inbound"
	case Outbound:
		return "outbound"
	}
	return fmt.Sprintf("direction(%d)", d)
}

// Op is a durable sync operation: one change to one record, in one
// direction. Its Version orders the ops of a record: for an outbound op the
// local sequence number of the newest changeset it carries, for an inbound
// one the remote's version of the object (an RT transaction ID, a GitHub
// updated_at in Unix nanoseconds).
type Op struct {
	ID      uint64    `msgpack:"id"`
	Dir     Direction `msgpack:"dir"`
	Ref     Ref       `msgpack:"ref"`
	Remote  string    `msgpack:"remote,omitempty"` // the remote object, when known
	Version int64     `msgpack:"version"`
	// Outbound: the properties the changesets changed, and whether the
	// record was added or deleted. Inbound: what the remote event named.
	Props   []string `msgpack:"props,omitempty"`
	Create  bool     `msgpack:"create,omitempty"`
	Delete  bool     `msgpack:"delete,omitempty"`
	Payload []byte   `msgpack:"payload,omitempty"` // the gateway's own, for inbound events
	// Mark is the gateway's note, written before its remote write
	// (SetMark).
	Mark string `msgpack:"mark,omitempty"`

	State    OpState   `msgpack:"state"`
	By       uint64    `msgpack:"by,omitempty"` // canceled_by, dropped_for, duplicate_of
	Reason   string    `msgpack:"reason,omitempty"`
	Attempts int       `msgpack:"attempts,omitempty"`
	Created  time.Time `msgpack:"created"`
	Updated  time.Time `msgpack:"updated"`
}

type refMsg struct {
	Type   string    `msgpack:"t"`
	Record uuid.UUID `msgpack:"r"`
}

func (r Ref) MarshalMsgpack() ([]byte, error) { return msgpack.Marshal(refMsg{r.Type, r.Record}) }
func (r *Ref) UnmarshalMsgpack(b []byte) error {
	var m refMsg
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return err
	}
	r.Type, r.Record = m.Type, m.Record
	return nil
}

func opKey(id uint64) []byte { return key(kOp, u64(id)) }

func (s *State) loadOp(id uint64) (*Op, error) {
	v, ok, err := s.get(opKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("foreign: state handle %s: no op %d", s.dir, id)
	}
	op := new(Op)
	if err := msgpack.Unmarshal(v, op); err != nil {
		return nil, fmt.Errorf("foreign: state handle %s: corrupt op %d: %w", s.dir, id, err)
	}
	return op, nil
}

// putOp stages op and its indexes.
func (w *Writer) putOp(op *Op) error {
	v, err := msgpack.Marshal(op)
	if err != nil {
		return err
	}
	if err := w.b.Set(opKey(op.ID), v, nil); err != nil {
		return err
	}
	if err := w.b.Set(key(kOpRecord, refKey(op.Ref), u64(op.ID)), nil, nil); err != nil {
		return err
	}
	if op.State.Active() {
		return w.b.Set(key(kOpActive, u64(op.ID)), nil, nil)
	}
	return w.b.Delete(key(kOpActive, u64(op.ID)), nil)
}

// recover runs at open: it finds the last op ID, and puts the ops that were
// processing when the process died back in the queue, to be retried (the
// gateways' writes are idempotent: they check the remote before they write).
func (s *State) recover() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kOp}, UpperBound: []byte{kOp + 1}})
	if err != nil {
		return err
	}
	if it.Last() {
		s.op = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if err := it.Close(); err != nil {
		return err
	}
	active, err := s.activeOps()
	if err != nil {
		return err
	}
	return s.Update(func(w *Writer) error {
		for _, op := range active {
			if op.State == Processing {
				op.State, op.Reason = Queued, "retried: the process stopped while it was processing"
				if err := w.putOp(op); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (s *State) activeOps() ([]*Op, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kOpActive}, UpperBound: []byte{kOpActive + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*Op
	for ok := it.First(); ok; ok = it.Next() {
		op, err := s.loadOp(binary.BigEndian.Uint64(it.Key()[1:]))
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, it.Error()
}

// recordOps returns the ops of one record, oldest first.
func (s *State) recordOps(r Ref) ([]*Op, error) {
	lo := key(kOpRecord, refKey(r))
	hi := append(slices.Clone(lo), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*Op
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(lo)+8 {
			continue
		}
		op, err := s.loadOp(binary.BigEndian.Uint64(k[len(lo):]))
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, it.Error()
}

// Ops returns the ops, oldest first: all of them, or those of one record
// (the audit trail `prophet foreign ops` prints).
func (s *State) Ops(r *Ref) ([]*Op, error) {
	if r != nil {
		return s.recordOps(*r)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kOp}, UpperBound: []byte{kOp + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*Op
	for ok := it.First(); ok; ok = it.Next() {
		op := new(Op)
		if err := msgpack.Unmarshal(it.Value(), op); err != nil {
			return nil, fmt.Errorf("foreign: state handle %s: corrupt op: %w", s.dir, err)
		}
		out = append(out, op)
	}
	return out, it.Error()
}

// Submit records a new op and applies seed 003's timestamp rules against
// the record's other ops in the same direction:
//
//   - an op with the same version exists: Duplicate (By: that op);
//   - an op with a newer version exists (not canceled or duplicate):
//     Dropped (By: the newer op);
//   - older queued ops are Canceled (By: this op); an outbound op takes
//     over their properties and their attempts, so nothing they carried is
//     lost and a create that may have reached the remote is looked for
//     before it is made again;
//   - otherwise Queued; it runs when no other op of the record processes.
//
// With w nil Submit writes on its own; otherwise w must be UpdateOps's
// writer, so that no other op transition interleaves. It returns the op as
// recorded.
func (s *State) Submit(op Op, now time.Time, w *Writer) (*Op, error) {
	if w != nil {
		return s.submitLocked(op, now, w)
	}
	var out *Op
	err := s.UpdateOps(func(w *Writer) error {
		var err error
		out, err = s.submitLocked(op, now, w)
		return err
	})
	return out, err
}

// UpdateOps is Update holding the ops lock: ops submitted with its writer
// are decided and written with no other op transition in between.
func (s *State) UpdateOps(fn func(w *Writer) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.op
	err := s.Update(fn)
	if err != nil {
		s.op = last // nothing was written
	}
	return err
}

func (s *State) submitLocked(op Op, now time.Time, w *Writer) (*Op, error) {
	s.op++
	op.ID, op.Created, op.Updated = s.op, now, now
	if op.State == 0 {
		op.State = Queued
	}
	others, err := s.recordOps(op.Ref)
	if err != nil {
		return nil, err
	}
	if op.State == Queued {
		for _, o := range others {
			if o.Dir != op.Dir || o.State == Canceled || o.State == Duplicate || o.State == Disabled {
				continue
			}
			switch {
			case o.Version == op.Version:
				op.State, op.By = Duplicate, o.ID
			case o.Version > op.Version && op.State == Queued:
				op.State, op.By = Dropped, o.ID
			}
		}
	}
	if op.State == Queued {
		for _, o := range others {
			if o.Dir != op.Dir || o.State != Queued || o.Version >= op.Version {
				continue
			}
			o.State, o.By, o.Updated = Canceled, op.ID, now
			if op.Dir == Outbound {
				op.Props = union(op.Props, o.Props)
				op.Create = op.Create || o.Create
				op.Attempts = max(op.Attempts, o.Attempts)
				if op.Mark == "" {
					op.Mark = o.Mark
				}
			}
			if err := w.putOp(o); err != nil {
				return nil, err
			}
		}
	}
	if err := w.putOp(&op); err != nil {
		return nil, err
	}
	return &op, nil
}

func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// errOpMoved: the op is no longer in the state its runner thinks (another
// push in this process canceled or took it).
var errOpMoved = errors.New("foreign: the op changed under its runner")

// finish moves op from state `from` to st, with extra's writes in the same
// batch; if the stored op is no longer in `from`, nothing is written and
// the error is errOpMoved.
func (s *State) finish(op *Op, from, st OpState, reason string, now time.Time, extra func(w *Writer) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.loadOp(op.ID)
	if err != nil {
		return err
	}
	if cur.State != from {
		return errOpMoved
	}
	return s.Update(func(w *Writer) error {
		op.State, op.Reason, op.Updated = st, reason, now
		if extra != nil {
			if err := extra(w); err != nil {
				return err
			}
		}
		return w.putOp(op)
	})
}

// SetMark durably records a gateway's note on a processing op before it
// writes to the remote (RT: the ticket's ETag), so that a retry can tell
// which remote changes that write made.
func (s *State) SetMark(op *Op, mark string) error {
	op.Mark = mark
	return s.finish(op, Processing, Processing, op.Reason, op.Updated, nil)
}

// RunReport counts what Run did.
type RunReport struct {
	Completed, Errored, Dropped, Disabled int
	// Waiting ops stay queued for the next run: they need another op
	// first, or the remote could not be reached (Wait says why).
	Waiting int
	Wait    []error
	Errors  []error // one per errored op
}

// ErrDrop is returned by an op's handler to mark it Dropped rather than
// Errored: it is outdated (the record changed since).
var ErrDrop = errors.New("foreign: the op is outdated")

// ErrDisabled is returned by an op's handler when the remote object is no
// longer synced by this foreign replica (an RT ticket moved out of its
// queue): the op is Disabled, with the reason.
var ErrDisabled = errors.New("foreign: the remote object is no longer synced here")

// ErrLater is returned by an op's handler when the op cannot run yet (it
// needs another record's op first, or the remote changed since the last
// pull): it stays Queued, for the next round or the next push.
var ErrLater = errors.New("foreign: the op waits")

// Handler processes one op. extra stages state writes that go with the op's
// completion (remote IDs, echoes), in the same batch.
type Handler func(ctx context.Context, op *Op) (extra func(w *Writer) error, err error)

// Run processes the queued ops of dir, oldest first: at most one op per
// record at a time, up to workers records in parallel. An op whose handler
// fails is Errored with the error as its reason and the others go on; Run
// stops early only when ctx ends.
func (s *State) Run(ctx context.Context, dir Direction, workers int, now func() time.Time, h Handler) (RunReport, error) {
	var rep RunReport
	if workers < 1 {
		workers = 1
	}
	later := map[uint64]bool{} // ops that asked to wait, since the last progress
	wait := map[uint64]error{} // why each op still waiting waits
	for {
		active, err := s.activeOps()
		if err != nil {
			return rep, err
		}
		// The oldest queued op of each record whose ops are all queued.
		busy := map[Ref]bool{}
		var ready []*Op
		for _, op := range active {
			if op.Dir != dir {
				continue
			}
			if op.State == Processing || busy[op.Ref] || later[op.ID] {
				busy[op.Ref] = true
				continue
			}
			busy[op.Ref] = true
			ready = append(ready, op)
		}
		if len(ready) == 0 {
			rep.Waiting = len(wait)
			for _, id := range slices.Sorted(maps.Keys(wait)) {
				rep.Wait = append(rep.Wait, wait[id])
			}
			return rep, nil
		}
		var (
			mu       sync.Mutex
			wg       sync.WaitGroup
			sem      = make(chan struct{}, workers)
			progress bool
		)
		for _, op := range ready {
			if err := ctx.Err(); err != nil {
				break
			}
			err := s.finish(op, Queued, Processing, "", now(), func(*Writer) error { op.Attempts++; return nil })
			if errors.Is(err, errOpMoved) {
				continue
			}
			if err != nil {
				wg.Wait()
				return rep, err
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				extra, herr := h(ctx, op)
				st, reason := Completed, ""
				switch {
				case herr == nil:
				case errors.Is(herr, ErrDrop):
					st, reason = Dropped, herr.Error()
				case errors.Is(herr, ErrDisabled):
					st, reason, extra = Disabled, herr.Error(), nil
				case errors.Is(herr, ErrLater) || Transient(herr):
					st, reason, extra = Queued, herr.Error(), nil
				case ctx.Err() != nil:
					// Stopped, not failed: it runs again next time.
					st, reason, extra = Queued, "interrupted: "+herr.Error(), nil
				default:
					st, reason, extra = Errored, herr.Error(), nil
				}
				err := s.finish(op, Processing, st, reason, now(), extra)
				mu.Lock()
				defer mu.Unlock()
				if st == Queued {
					later[op.ID] = true
					wait[op.ID] = fmt.Errorf("%s: %w", op.Ref, herr)
				} else {
					delete(wait, op.ID)
					progress = true
				}
				switch {
				case err != nil:
					rep.Errors = append(rep.Errors, fmt.Errorf("%s: recording the op's outcome: %w", op.Ref, err))
					rep.Errored++
				case st == Completed:
					rep.Completed++
				case st == Dropped:
					rep.Dropped++
				case st == Disabled:
					rep.Disabled++
				case st == Errored:
					rep.Errored++
					rep.Errors = append(rep.Errors, fmt.Errorf("%s: %w", op.Ref, herr))
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if progress {
			clear(later) // what they waited for may be done
		}
	}
}

// Requeue puts the errored ops back in the queue (those of record, when
// not nil), for the next push: after the cause is fixed (a missing queue
// made, a right granted). It returns how many.
func (s *State) Requeue(record *uuid.UUID, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ops, err := s.Ops(nil)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.Update(func(w *Writer) error {
		for _, op := range ops {
			if op.State != Errored || (record != nil && op.Ref.Record != *record) {
				continue
			}
			op.State, op.Reason, op.Updated = Queued, "queued again by hand after: "+op.Reason, now
			if err := w.putOp(op); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
