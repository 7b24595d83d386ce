package merge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
)

// Conflict is one record's conflict met in a merge: what the replica
// reports (replica.Conflict), the changeset that brought it, and its
// fingerprint in the resolution database.
type Conflict struct {
	replica.Conflict
	Changeset   *changeset.Changeset
	Fingerprint resolution.Fingerprint
}

// Describe says what conflicts, in a few lines for people.
func (c *Conflict) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s %s (%s from replica %s by %s):", c.Type, c.Record, c.Op, c.Changeset.Origin, c.Changeset.Creator)
	switch {
	case c.Source.Live && !c.Target.Live:
		b.WriteString(" the record is deleted here")
	case !c.Source.Live && c.Target.Live:
		b.WriteString(" there it is deleted, here it is not")
	case c.Op == changeset.Add:
		b.WriteString(" the record already exists here")
	}
	for i, p := range c.Base {
		fmt.Fprintf(&b, "\n    %s: was %s, there %s, here %s", p.Name, quote(p.Value), quote(c.Source.Props[i].Value), quote(c.Target.Props[i].Value))
	}
	return b.String()
}

func quote(s string) string {
	if s == "" {
		return "(absent)"
	}
	return fmt.Sprintf("%q", s)
}

// Resolver settles a conflict: ok false means it has no opinion and the next
// resolver is asked. It runs inside the commit of the changeset, so it must
// be quick; for a question to a person, use Options.Prompt.
type Resolver interface {
	Resolve(c *Conflict) (out replica.Outcome, ok bool, err error)
	// Name says how a decision was made, in the resolution database.
	Name() string
}

// ResolverFunc makes a Resolver of a function.
type ResolverFunc struct {
	N string
	F func(c *Conflict) (replica.Outcome, bool, error)
}

func (r ResolverFunc) Resolve(c *Conflict) (replica.Outcome, bool, error) { return r.F(c) }
func (r ResolverFunc) Name() string                                       { return "resolver:" + r.N }

// Mine keeps what this replica has; Theirs takes what the incoming change
// makes of the record.
var (
	Mine   Resolver = ResolverFunc{N: "mine", F: func(c *Conflict) (replica.Outcome, bool, error) { return c.Target, true, nil }}
	Theirs Resolver = ResolverFunc{N: "theirs", F: func(c *Conflict) (replica.Outcome, bool, error) { return c.Source, true, nil }}
)

// settle is the replica.Settler of a pull: the resolvers, in order.
//
//  1. identical changes: both sides agree, nothing to record;
//  2. the resolution database, by majority vote;
//  3. the merge's Resolver (--prefer mine|theirs, or the Go API's);
//  4. an update with no old value at all, from a source that says it
//     cannot send them (a foreign replica's gateway, NoOldValues): theirs;
//  5. otherwise the pull stops with *UnresolvedError; Pull then asks
//     Options.Prompt, if set, and runs again with the answer.
//
// Decisions of 3, 4 and 5 are recorded in the resolution database, so the
// replicas that meet the same conflict later settle it the same way.
func (s *stream) settle(cs *changeset.Changeset, conflicts []replica.Conflict, stamp time.Time) ([]replica.Outcome, error) {
	out := make([]replica.Outcome, len(conflicts))
	res := s.dst.ResolutionDB()
	for i := range conflicts {
		c := &Conflict{Conflict: conflicts[i], Changeset: cs}
		rc := toResolution(&c.Conflict)
		c.Fingerprint = rc.Fingerprint()
		if c.Identical() {
			out[i] = c.Target
			continue
		}
		if res != nil {
			w, _, _, ok, err := res.Lookup(c.Fingerprint)
			if err != nil {
				return nil, err
			}
			if ok {
				out[i] = fromOutcome(w.Final)
				s.conflicts++
				continue
			}
		}
		how := ""
		if a, ok := s.answers[c.Fingerprint]; ok {
			out[i], how = a, "prompt"
		}
		if how == "" && s.o.Resolver != nil {
			o, ok, err := s.o.Resolver.Resolve(c)
			if err != nil {
				return nil, fmt.Errorf("merge: resolver %s: %w", s.o.Resolver.Name(), err)
			}
			if ok {
				out[i], how = o, s.o.Resolver.Name()
			}
		}
		if how == "" && s.noOldValues && c.Op == changeset.Update && noOldValues(cs, c) {
			out[i], how = c.Source, "missing-old-values"
		}
		if how == "" {
			return nil, &UnresolvedError{Conflict: c}
		}
		if res != nil {
			if _, err := record(context.Background(), res, stamp, c, out[i], how); err != nil {
				return nil, err
			}
		}
		s.conflicts++
	}
	return out, nil
}

// NoOldValues is implemented by sources that cannot know old values (the
// gateways of foreign replicas): their updates that list none are accepted
// as they come when they conflict. A native replica always sends old values
// ("" is a value: absent), so this never applies to it.
type NoOldValues interface{ SendsNoOldValues() bool }

// noOldValues reports whether the change behind c lists no old value at all.
func noOldValues(cs *changeset.Changeset, c *Conflict) bool {
	for _, ch := range cs.Changes {
		if ch.RecordType == c.Type && ch.Record == c.Record {
			for _, p := range ch.Props {
				if p.Old != "" {
					return false
				}
			}
			return true
		}
	}
	return false
}

// record writes a decision into the resolution database.
// stamp is when the decision takes effect: the resolution's creation time.
func record(ctx context.Context, res Resolutions, stamp time.Time, c *Conflict, out replica.Outcome, how string) (resolution.Decision, error) {
	if res == nil {
		return resolution.Decision{}, nil
	}
	rc := toResolution(&c.Conflict)
	final := toOutcome(out)
	d, err := res.Record(ctx, resolution.Decision{Stamp: stamp.UnixNano(), Fingerprint: rc.Fingerprint(), Conflict: rc, Final: final, How: how})
	if err != nil {
		return d, fmt.Errorf("merge: recording how the conflict on %s %s was settled: %w", c.Type, c.Record, err)
	}
	return d, nil
}

func toResolution(c *replica.Conflict) resolution.Conflict {
	return resolution.Conflict{Type: c.Type, Record: c.Record, Base: toProps(c.Base), Source: toOutcome(c.Source), Target: toOutcome(c.Target)}
}

func toProps(ps []replica.Prop) []resolution.Prop {
	out := make([]resolution.Prop, len(ps))
	for i, p := range ps {
		out[i] = resolution.Prop{Name: p.Name, Value: p.Value}
	}
	return out
}

func toOutcome(o replica.Outcome) resolution.Outcome {
	return resolution.Outcome{Live: o.Live, Props: toProps(o.Props)}
}

func fromOutcome(o resolution.Outcome) replica.Outcome {
	out := replica.Outcome{Live: o.Live, Props: make([]replica.Prop, len(o.Props))}
	for i, p := range o.Props {
		out.Props[i] = replica.Prop{Name: p.Name, Value: p.Value}
	}
	return out
}
