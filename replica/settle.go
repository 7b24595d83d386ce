package replica

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// Settling conflicts (DESIGN.md, "Merge").
//
// A changeset from a peer conflicts when one of its changes does not apply
// cleanly to what this replica shows (check). The replica describes each
// conflicting record as a Conflict, a Settler (the merge package's resolver
// chain) picks the Outcome, and the replica then writes, in the same unit,
// so one batch:
//
//  1. a nullification: a local changeset that brings the conflicting
//     records to what the incoming changeset expects;
//  2. the incoming changeset, which now applies cleanly;
//  3. a resolution: a local changeset that brings them to the outcome.
//
// When both sides already agree (delete vs delete, the same new value) the
// incoming changeset is written alone: its writes take effect by stamp like
// any other's, and nothing needs settling.

// Outcome is one side of a record's conflict, or how it was settled: whether
// the record is live, and the value of each property in conflict ("" for
// absent), sorted by name.
type Outcome struct {
	Live  bool
	Props []Prop
}

// Get returns the value of name in o ("" if absent or not in o).
func (o *Outcome) Get(name string) string {
	for _, p := range o.Props {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

func (o *Outcome) equal(p *Outcome) bool {
	if o.Live != p.Live || len(o.Props) != len(p.Props) {
		return false
	}
	for i := range o.Props {
		if o.Props[i] != p.Props[i] {
			return false
		}
	}
	return true
}

// Conflict is one record's conflict with an incoming change. Its properties
// are those whose value here is not the change's old value (and, for a
// delete, those the change does not list), so both replicas of a conflict
// see the same ones, with Source and Target swapped.
type Conflict struct {
	Type   string
	Record uuid.UUID
	Op     changeset.Op // the incoming change's
	Base   []Prop       // the change's old values: what both sides started from
	Source Outcome      // what the incoming change makes of the record
	Target Outcome      // what this replica has
}

// Identical reports whether both sides already agree.
func (c *Conflict) Identical() bool { return c.Source.equal(&c.Target) }

// Settler decides how conflicts are settled: one Outcome per Conflict, in
// order. It runs on the committer goroutine, inside the unit being staged:
// it must be quick and must not call into the replica. An error fails the
// unit, and nothing of it is written.
//
// stamp is the creation time the resolution will have: the moment the
// decision takes effect, in the order every replica uses (record it with
// the decision).
type Settler func(cs *changeset.Changeset, conflicts []Conflict, stamp time.Time) ([]Outcome, error)

// conflictOf describes ch's conflict with cur (the visible state; nil: no
// live record).
func conflictOf(ch *changeset.Change, cur *state) Conflict {
	c := Conflict{Type: ch.RecordType, Record: ch.Record, Op: ch.Op}
	c.Source.Live, c.Target.Live = ch.Op != changeset.Delete, cur != nil
	target := func(name string) string {
		if cur == nil {
			return ""
		}
		return cur.get(name)
	}
	add := func(name, old, src string) {
		c.Base = append(c.Base, Prop{name, old})
		c.Source.Props = append(c.Source.Props, Prop{name, src})
		c.Target.Props = append(c.Target.Props, Prop{name, target(name)})
	}
	listed := map[string]bool{}
	for _, p := range ch.Props {
		listed[p.Name] = true
		// Against a record that is not live here every property an
		// update sets is in conflict: the other side sees them as
		// values its delete would remove.
		if target(p.Name) != p.Old || (cur == nil && ch.Op == changeset.Update) {
			add(p.Name, p.Old, p.New)
		}
	}
	if ch.Op == changeset.Delete && cur != nil {
		for _, p := range cur.Props {
			if !listed[p.Name] {
				add(p.Name, "", "")
			}
		}
	}
	sortProps(c.Base)
	sortProps(c.Source.Props)
	sortProps(c.Target.Props)
	return c
}

// settle integrates cs, which conflicts with the unit's view, as decided by
// settle: nullification, cs, resolution (see above).
func (u *unit) settle(cs *changeset.Changeset, settle Settler) error {
	type rec struct {
		k  recKey
		ch *changeset.Change
	}
	var recs []rec
	var conflicts []Conflict
	for i := range cs.Changes {
		ch := &cs.Changes[i]
		k := recKey{ch.RecordType, ch.Record}
		cur, err := u.lookup(k, expectAny)
		if err != nil {
			return err
		}
		if check(cs.ID(), ch, cur.visible()) != nil {
			recs = append(recs, rec{k, ch})
			conflicts = append(conflicts, conflictOf(ch, cur.visible()))
		}
	}
	// The nullification and the resolution come after cs, and after
	// everything here, in stamp order; the settler learns the
	// resolution's stamp, which is when the decision takes effect.
	r := u.t.c.r
	u.hlc = max(u.hlc, cs.Created.UnixNano())
	nullAt := u.tick(r.opts.Clock())
	resAt := u.tick(r.opts.Clock())
	finals, err := callSettler(settle, cs, conflicts, resAt)
	if err != nil {
		return err
	}
	if len(finals) != len(conflicts) {
		return fmt.Errorf("replica: the settler returned %d outcomes for %d conflicts of changeset %s", len(finals), len(conflicts), cs.ID())
	}
	identical := true
	for i := range conflicts {
		identical = identical && conflicts[i].Identical()
	}
	if identical {
		return u.append(cs, false, false)
	}

	// The nullification: each conflicting record as cs expects it.
	var null []changeset.Change
	for _, rc := range recs {
		cur, _ := u.lookup(rc.k, expectAny)
		vis := cur.visible()
		ch := changeset.Change{RecordType: rc.k.typ, Record: rc.k.id}
		switch {
		case rc.ch.Op == changeset.Add:
			ch.Op = changeset.Delete
			ch.Props = propChanges(vis.Props, nil)
		case vis == nil:
			// Back, with what it had (an update expects its other
			// properties to be there; a delete lists all of them).
			ch.Op = changeset.Add
			want := map[string]string{}
			if rc.ch.Op == changeset.Update {
				for _, g := range cur.liveRegs() {
					want[g.Name] = g.Value
				}
			}
			for _, p := range rc.ch.Props {
				want[p.Name] = p.Old
			}
			ch.Props = propChanges(nil, want)
		default:
			ch.Op = changeset.Update
			want := map[string]string{}
			if rc.ch.Op == changeset.Delete {
				for _, p := range vis.Props {
					want[p.Name] = ""
				}
			}
			for _, p := range rc.ch.Props {
				want[p.Name] = p.Old
			}
			ch.Props = propChanges(vis.Props, want)
		}
		null = append(null, ch)
	}
	if err := u.local(null, nullAt, func(c *changeset.Changeset) { c.IsNullification = true }); err != nil {
		return fmt.Errorf("replica: settling changeset %s: nullification: %w", cs.ID(), err)
	}
	if err := u.append(cs, false, true); err != nil {
		return fmt.Errorf("replica: settling changeset %s: it still conflicts after its nullification (this is a bug): %w", cs.ID(), err)
	}

	// The resolution: each conflicting record as decided. Where the
	// conflict is about the record being live, it writes the live register
	// itself (an add, or a delete), so that the latest decision wins that
	// too, wherever the changesets travel.
	var res []changeset.Change
	for i, rc := range recs {
		cur, _ := u.lookup(rc.k, expectAny)
		vis, f := cur.visible(), finals[i]
		liveness := conflicts[i].Source.Live != conflicts[i].Target.Live
		ch := changeset.Change{RecordType: rc.k.typ, Record: rc.k.id}
		want := map[string]string{}
		for _, p := range f.Props {
			want[p.Name] = p.Value
		}
		switch {
		case !f.Live && vis == nil && !liveness:
			continue
		case !f.Live:
			ch.Op = changeset.Delete
			if vis != nil {
				ch.Props = propChanges(vis.Props, nil)
			}
		case liveness || vis == nil:
			ch.Op = changeset.Add
			all := map[string]string{}
			for _, g := range cur.liveRegs() {
				all[g.Name] = g.Value
			}
			if vis != nil {
				for _, p := range vis.Props {
					all[p.Name] = p.Value
				}
			}
			for n, v := range want {
				all[n] = v
			}
			ch.Props = propChanges(nil, all)
		default:
			ch.Op = changeset.Update
			ch.Props = propChanges(vis.Props, want)
			if len(ch.Props) == 0 {
				continue
			}
		}
		res = append(res, ch)
	}
	if len(res) > 0 {
		if err := u.local(res, resAt, func(c *changeset.Changeset) { c.IsResolution = true }); err != nil {
			return fmt.Errorf("replica: settling changeset %s: resolution: %w", cs.ID(), err)
		}
	}
	return nil
}

// local stages a local changeset of changes, created at, not checked: a
// nullification or resolution, whose writes take effect by stamp.
func (u *unit) local(changes []changeset.Change, at time.Time, flag func(*changeset.Changeset)) error {
	r := u.t.c.r
	cs := &changeset.Changeset{Creator: r.opts.Creator, Created: at, Changes: changes}
	flag(cs)
	cs.Normalize()
	return u.append(cs, true, false)
}

// propChanges lists the property changes that take props (a visible state)
// to want: every name in want, set ("" unsets); with want nil, every
// property of props is unset (a delete). Names whose value does not change
// are left out.
func propChanges(props []Prop, want map[string]string) []changeset.PropChange {
	cur := map[string]string{}
	for _, p := range props {
		cur[p.Name] = p.Value
	}
	var out []changeset.PropChange
	if want == nil {
		for _, p := range props {
			out = append(out, changeset.PropChange{Name: p.Name, Old: p.Value})
		}
		return out
	}
	for n, v := range want {
		if cur[n] != v {
			out = append(out, changeset.PropChange{Name: n, Old: cur[n], New: v})
		}
	}
	return out
}

// callSettler calls settle, turning a panic in it into an error: it runs on
// the committer goroutine, which must survive it.
func callSettler(settle Settler, cs *changeset.Changeset, conflicts []Conflict, stamp time.Time) (out []Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("replica: the conflict settler panicked: %v", p)
		}
	}()
	out, err = settle(cs, conflicts, stamp)
	if err == nil && out == nil && len(conflicts) > 0 {
		err = errors.New("replica: the conflict settler returned no outcomes")
	}
	return out, err
}

func sortProps(ps []Prop) {
	slices.SortFunc(ps, func(a, b Prop) int { return strings.Compare(a.Name, b.Name) })
}
