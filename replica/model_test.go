package replica_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
)

// model is the dumb reference: records as maps, nothing else.
type model map[string]map[uuid.UUID]map[string]string

func (m model) list(typ string, filter map[string]string) []uuid.UUID {
	var out []uuid.UUID
next:
	for id, props := range m[typ] {
		for k, v := range filter {
			if props[k] != v {
				continue next
			}
		}
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return out
}

// TestAgainstModel runs random creates, updates, puts and deletes (one or
// several edits per changeset) against the engine and a map, and checks
// that lists, gets and filters agree throughout; then that a second replica
// fed the log ends with the same digest, and that verify and a reopen agree.
func TestAgainstModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	r, dir := newReplica(t)
	m := model{}
	types := []string{"bug", "comment"}
	vals := []string{"", "a", "b", "c"}
	names := []string{"status", "owner", "title"}
	randSet := func() map[string]string {
		set := map[string]string{}
		for _, n := range names {
			if rng.IntN(2) == 0 {
				set[n] = vals[rng.IntN(len(vals))]
			}
		}
		return set
	}
	pick := func(typ string) (uuid.UUID, bool) {
		ids := slices.Collect(maps.Keys(m[typ]))
		if len(ids) == 0 {
			return uuid.Nil, false
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		return ids[rng.IntN(len(ids))], true
	}
	for step := range 600 {
		var edits []replica.Edit
		touched := map[uuid.UUID]bool{}
		for range 1 + rng.IntN(3) {
			typ := types[rng.IntN(len(types))]
			e := replica.Edit{Type: typ, Set: randSet()}
			id, ok := pick(typ)
			switch op := rng.IntN(10); {
			case !ok || op < 3:
				e.Op, e.Record = replica.Create, uuid.New()
			case op < 6:
				e.Op, e.Record = replica.Update, id
			case op < 8:
				e.Op, e.Record = replica.Put, id
			default:
				e.Op, e.Record, e.Set = replica.Delete, id, nil
			}
			if touched[e.Record] {
				continue
			}
			touched[e.Record] = true
			edits = append(edits, e)
		}
		if _, err := r.Commit(ctx, edits...); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for _, e := range edits {
			if m[e.Type] == nil {
				m[e.Type] = map[uuid.UUID]map[string]string{}
			}
			switch e.Op {
			case replica.Create, replica.Put:
				// Both leave the record holding exactly the non-empty values.
				props := map[string]string{}
				m[e.Type][e.Record] = props
				for k, v := range e.Set {
					if v != "" {
						props[k] = v
					}
				}
			case replica.Update:
				for k, v := range e.Set {
					if v == "" {
						delete(m[e.Type][e.Record], k)
					} else {
						m[e.Type][e.Record][k] = v
					}
				}
			case replica.Delete:
				delete(m[e.Type], e.Record)
			}
		}
		if step%25 == 0 {
			checkModel(t, r, m, types, map[string]string{names[rng.IntN(3)]: vals[rng.IntN(len(vals))]})
		}
	}
	checkModel(t, r, m, types, nil)
	mustVerify(t, r)

	// A replica fed the whole log holds the same state.
	b, _ := newReplica(t)
	css := readLog(t, r)
	if _, _, err := b.Integrate(ctx, css...); err != nil {
		t.Fatal(err)
	}
	if b.Digest() != r.Digest() {
		t.Fatalf("digest after replay %s, original %s", b.Digest(), r.Digest())
	}
	checkModel(t, b, m, types, nil)
	mustVerify(t, b)

	d := r.Digest()
	r.Close()
	r2, err := replica.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if r2.Digest() != d {
		t.Fatal("digest changed across reopen")
	}
	checkModel(t, r2, m, types, nil)
}

func checkModel(t *testing.T, r *replica.Replica, m model, types []string, filter map[string]string) {
	t.Helper()
	for _, typ := range types {
		var got []uuid.UUID
		err := r.List(typ, filter, func(rec *replica.Record) error {
			want := m[typ][rec.UUID]
			have := map[string]string{}
			for _, p := range rec.Props {
				have[p.Name] = p.Value
			}
			if !maps.Equal(want, have) {
				return fmt.Errorf("%s %s: engine %v, model %v", typ, rec.UUID, have, want)
			}
			got = append(got, rec.UUID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		if want := m.list(typ, filter); !slices.Equal(got, want) {
			t.Fatalf("list %s %v: engine %d records, model %d", typ, filter, len(got), len(want))
		}
		var live uint64
		for _, c := range r.Counts() {
			if c.Type == typ {
				live = c.Count
			}
		}
		if live != uint64(len(m[typ])) {
			t.Fatalf("count %s = %d, model %d", typ, live, len(m[typ]))
		}
	}
	for typ := range m {
		for id := range m[typ] {
			if _, err := r.Get(typ, id); err != nil {
				t.Fatal(err)
			}
		}
	}
}
