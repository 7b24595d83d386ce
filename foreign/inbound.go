package foreign

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/resolution"
)

// EventGateway is implemented by gateways that take events pushed by the
// remote (GitHub's webhooks): each event becomes an inbound sync operation,
// run like the outbound ones, one per record at a time.
type EventGateway interface {
	Gateway
	// Event turns an event into the inbound op to submit: its record,
	// remote object, version (the object's updated_at) and payload. ok
	// false: the event concerns nothing synced (a pull request, say).
	Event(ctx context.Context, st *State, kind string, payload []byte) (op Op, ok bool, err error)
	// Inbound translates a queued inbound op into the change to
	// integrate, numbered pos (nil Changeset: nothing new).
	Inbound(ctx context.Context, st *State, op *Op, pos uint64) (Change, error)
}

// ErrNoEvents: the gateway takes no events.
var ErrNoEvents = errors.New("foreign: this kind of foreign replica takes no events")

func deliveryKey(id string) []byte { return key(kDelivery, []byte(id)) }

// Deliver records one delivered event as an inbound op under seed 003's
// rules (a redelivery of the same delivery ID, or an event of a version
// already seen, is a duplicate; an older one than what is there is
// dropped; older queued ones are canceled). It returns the op as recorded;
// RunInbound processes the queued ones.
func (f *Foreign) Deliver(ctx context.Context, delivery, kind string, payload []byte) (*Op, error) {
	eg, ok := f.gw.(EventGateway)
	if !ok {
		return nil, ErrNoEvents
	}
	if delivery != "" {
		v, seen, err := f.st.get(deliveryKey(delivery))
		if err != nil {
			return nil, err
		}
		if seen && len(v) == 8 {
			first, err := f.st.loadOp(binary.BigEndian.Uint64(v))
			if err != nil {
				return nil, err
			}
			dup := Op{Dir: Inbound, Ref: first.Ref, Remote: first.Remote, Version: first.Version, State: Duplicate, By: first.ID,
				Reason: "redelivery of " + delivery}
			return f.st.Submit(dup, f.o.Clock(), nil)
		}
	}
	op, ok, err := eg.Event(ctx, f.st, kind, payload)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	op.Dir = Inbound
	if op.Reason == "" {
		op.Reason = kind + " event " + delivery
	}
	// The record changed here since: the local edit is newer and goes out
	// with the next push (seed 003: dropped).
	pending, err := f.pendingFor(op.Ref)
	if err != nil {
		return nil, err
	}
	if pending {
		op.State, op.Reason = Dropped, "the record changed here since; the local edit goes out with the next push"
	}
	var out *Op
	err = f.st.UpdateOps(func(w *Writer) error {
		var err error
		if out, err = f.st.submitLocked(op, f.o.Clock(), w); err != nil {
			return err
		}
		if delivery != "" {
			return w.b.Set(deliveryKey(delivery), u64(out.ID), nil)
		}
		return nil
	})
	return out, err
}

// pendingFor says whether the record has a local edit still to push.
func (f *Foreign) pendingFor(ref Ref) (bool, error) {
	props, err := f.pendingProps(ref)
	return len(props) > 0, err
}

// RunInbound processes the queued inbound ops: each becomes a changeset,
// integrated through the ordinary merge (conflicts settled by mopts'
// resolvers and the resolution database; one nothing settles errs the op).
func (f *Foreign) RunInbound(ctx context.Context, mopts *merge.Options) (RunReport, error) {
	eg, ok := f.gw.(EventGateway)
	if !ok {
		return RunReport{}, ErrNoEvents
	}
	return f.st.Run(ctx, Inbound, f.o.Workers, f.o.Clock, func(ctx context.Context, op *Op) (func(*Writer) error, error) {
		f.st.feed.Lock() // one translation and integration at a time: they number changesets
		defer f.st.feed.Unlock()
		pos, err := f.position()
		if err != nil {
			return nil, err
		}
		c, err := eg.Inbound(ctx, f.st, op, pos+1)
		if err != nil {
			return nil, err
		}
		if c.Changeset == nil {
			return nil, nil // nothing new: the version is here already
		}
		if err := f.integrate(ctx, []Change{c}, mopts); err != nil {
			return nil, err
		}
		return nil, nil
	})
}

// integrate merges changes (numbered after the feed position) into the
// gateway replica, then records them as a pull does.
func (f *Foreign) integrate(ctx context.Context, changes []Change, mopts *merge.Options) error {
	var o merge.Options
	if mopts != nil {
		o = *mopts
	}
	o.Resolver = f.derivedResolver(o.Resolver)
	src := &listSource{f: f, changes: changes}
	rep, err := merge.Pull(ctx, src, sink{Local: f.local, f: f}, &o)
	if err != nil {
		return err
	}
	last := changes[len(changes)-1].Pos
	if rep.Position < last {
		return fmt.Errorf("foreign: integrated up to %d of %d", rep.Position, last)
	}
	if err := f.record(changes, last, false); err != nil {
		return err
	}
	return f.catchUp(ctx, changes, last)
}

// listSource is a merge source of given changes (an event's).
type listSource struct {
	f       *Foreign
	changes []Change
}

func (s *listSource) Info(ctx context.Context) (merge.Info, error) {
	return merge.Info{Replica: s.f.id, Database: s.f.local.R.DatabaseUUID(), Latest: s.changes[len(s.changes)-1].Pos}, nil
}

func (s *listSource) Resolutions(context.Context, map[uuid.UUID]uint64, func(resolution.Decision) error) error {
	return nil
}

func (s *listSource) Changesets(ctx context.Context, after uint64, fn func(seq uint64, raw []byte) error) error {
	for _, c := range s.changes {
		if c.Pos <= after || c.Changeset == nil {
			continue
		}
		c.Changeset.Seq, c.Changeset.Source = c.Pos, s.f.id
		raw, err := changeset.Encode(nil, c.Changeset)
		if err != nil {
			return err
		}
		if err := fn(c.Pos, raw); err != nil {
			return err
		}
	}
	return nil
}
