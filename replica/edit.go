package replica

import (
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// EditOp is what a local edit asks for.
type EditOp uint8

const (
	// Create adds a new record with the properties in Set.
	Create EditOp = iota + 1
	// Update sets the properties in Set ("" unsets) on a live record.
	Update
	// Delete removes a live record.
	Delete
	// Put makes a record hold exactly the properties in Set: it creates the
	// record if it is not live, and unsets every property Set leaves out.
	// Import uses it, so importing the same file twice changes nothing.
	Put
)

// Edit is a local change to one record. The commit turns it into a
// changeset.Change against the record's state at that moment, so the old
// values it records are exact even when other commits race with it.
type Edit struct {
	Type string
	// Record is the record's UUID. With Create, uuid.Nil asks for a new one
	// (Options.NewUUID).
	Record uuid.UUID
	Op     EditOp
	// Set holds the new values; "" means unset. Commit and Bulk only read
	// it, and keep no reference once they return: the caller may reuse it.
	Set map[string]string
}

// change builds the Change for e against cur (nil: no live record). It
// returns nil when the edit changes nothing.
func (e *Edit) change(cur *state) (*changeset.Change, error) {
	switch e.Op {
	case Create, Update, Delete, Put:
	default:
		return nil, fmt.Errorf("replica: edit of %s %s has no valid op (%d); use Create, Update, Delete or Put", e.Type, e.Record, e.Op)
	}
	ch := &changeset.Change{RecordType: e.Type, Record: e.Record}
	var arr [8]string // on the stack for a typical edit
	names := arr[:0]
	for n := range e.Set {
		names = append(names, n)
	}
	slices.Sort(names)
	n := len(names)
	if cur != nil && e.Op != Create {
		n += len(cur.Props)
	}
	ch.Props = make([]changeset.PropChange, 0, n)
	switch {
	case e.Op == Create && cur != nil:
		return nil, fmt.Errorf("%w: %s %s already exists", ErrConflict, e.Type, e.Record)
	case e.Op == Create || (e.Op == Put && cur == nil):
		ch.Op = changeset.Add
		for _, n := range names {
			if v := e.Set[n]; v != "" {
				ch.Props = append(ch.Props, changeset.PropChange{Name: n, New: v})
			}
		}
	case cur == nil:
		return nil, fmt.Errorf("%w: %s %s", ErrNotFound, e.Type, e.Record)
	case e.Op == Delete:
		ch.Op = changeset.Delete
		for _, p := range cur.Props {
			ch.Props = append(ch.Props, changeset.PropChange{Name: p.Name, Old: p.Value})
		}
	case e.Op == Update || e.Op == Put:
		ch.Op = changeset.Update
		if e.Op == Put {
			for _, p := range cur.Props {
				if _, ok := e.Set[p.Name]; !ok {
					ch.Props = append(ch.Props, changeset.PropChange{Name: p.Name, Old: p.Value})
				}
			}
		}
		for _, n := range names {
			if old, v := cur.get(n), e.Set[n]; old != v {
				ch.Props = append(ch.Props, changeset.PropChange{Name: n, Old: old, New: v})
			}
		}
		if len(ch.Props) == 0 {
			return nil, nil
		}
	}
	return ch, nil
}

// ConflictError says exactly why a changeset does not apply. It wraps
// ErrConflict.
type ConflictError struct {
	ID       changeset.ID
	Type     string
	Record   uuid.UUID
	Op       changeset.Op
	Prop     string // "" when the conflict is about the record itself
	Expected string // the change's old value
	Actual   string // the current value
	Reason   string
}

func (e *ConflictError) Error() string {
	s := fmt.Sprintf("replica: changeset %s conflicts: %s of %s %s: %s", e.ID, e.Op, e.Type, e.Record, e.Reason)
	if e.Prop != "" {
		s += fmt.Sprintf(" (property %q is %q, the change expects %q)", e.Prop, e.Actual, e.Expected)
	}
	return s
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// check reports whether ch applies cleanly to the visible state cur (nil: no
// live record): an add needs no live record, an update or delete a live one
// whose values are the change's old values, and a delete must list every
// property. This is conflict detection (DESIGN.md, "Merge").
func check(id changeset.ID, ch *changeset.Change, cur *state) error {
	conflict := func(reason string) *ConflictError {
		return &ConflictError{ID: id, Type: ch.RecordType, Record: ch.Record, Op: ch.Op, Reason: reason}
	}
	switch ch.Op {
	case changeset.Add:
		if cur != nil {
			return conflict("the record already exists")
		}
		return nil
	case changeset.Update, changeset.Delete:
		if cur == nil {
			return conflict("the record does not exist")
		}
		for _, p := range ch.Props {
			if have := cur.get(p.Name); have != p.Old {
				e := conflict("an old value does not match")
				e.Prop, e.Expected, e.Actual = p.Name, p.Old, have
				return e
			}
		}
		// Every listed property matched a (non-empty) current value, so
		// equal counts mean it lists exactly the record's.
		if ch.Op == changeset.Delete && len(ch.Props) != len(cur.Props) {
			return conflict("the delete does not list every property the record has")
		}
		return nil
	}
	return conflict("unknown change type")
}

// applyChange returns the state after ch, written by cs, on top of cur (nil:
// never seen). With checked, it first refuses a change that does not apply
// cleanly to the visible state (check). The writes themselves are
// last-writer-wins by stamp: an add or delete writes the live register, and
// every property change its property's register (a delete leaves the
// property registers alone, so an update that wins against the delete can
// bring them back). cur is not modified. This is the replica's one
// definition of what a change does; verify replays the log with it.
func applyChange(cs *changeset.Changeset, ch *changeset.Change, cur *state, checked bool) (*state, error) {
	if checked {
		if err := check(cs.ID(), ch, cur.visible()); err != nil {
			return nil, err
		}
	}
	var next *state
	if cur != nil {
		next = cur.cloneGrow(len(ch.Props))
	} else {
		next = &state{Regs: make([]reg, 0, len(ch.Props)), Props: make([]Prop, 0, len(ch.Props))}
	}
	k := stampOf(cs)
	if ch.Op == changeset.Add && k.cmp(next.AddK) > 0 {
		next.AddK = k
	}
	switch ch.Op {
	case changeset.Add, changeset.Delete:
		if k.cmp(next.LiveK) > 0 || (cur == nil) {
			next.Live, next.LiveK = ch.Op == changeset.Add, k
			if ch.Op == changeset.Add {
				next.Creator, next.Origin, next.Created = cs.Creator, cs.Origin, k.T
			}
		}
	}
	if ch.Op != changeset.Delete {
		for _, p := range ch.Props {
			next.write(p.Name, p.New, k)
		}
	}
	next.derive()
	return next, nil
}
