package merge_test

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// The convergence simulation (DESIGN.md, "Merge", I11–I13): replicas edit
// the same few records concurrently, so that conflicts are frequent, and
// pull from each other in random pairs with random resolvers, restarting
// now and then; then they sync until nothing moves, and every replica must
// hold the same records (equal digests), every changeset exactly once, and
// pass verify.
//
//	go test ./merge -run TestSimulation -sim.seeds 2000     # many seeds
//	go test ./merge -run TestSimulation -sim.seed 12345 -v  # one seed
var (
	simSeeds = flag.Int("sim.seeds", 12, "how many seeds TestSimulation runs")
	simSeed  = flag.Uint64("sim.seed", 0, "run TestSimulation with this seed only")
	simSteps = flag.Int("sim.steps", 120, "steps per simulation")
)

// simOp is one step of a simulation, concrete enough to replay.
type simOp struct {
	kind     string // create, update, delete, pull, restart
	a, b     int    // replica (and source replica for pull)
	rec      int    // record index
	props    map[string]string
	resolver string // for pull: "", mine, theirs
}

func (o simOp) String() string {
	switch o.kind {
	case "pull":
		return fmt.Sprintf("r%d pulls r%d (resolver %q)", o.a, o.b, o.resolver)
	case "restart":
		return fmt.Sprintf("r%d restarts", o.a)
	case "delete":
		return fmt.Sprintf("r%d deletes #%d", o.a, o.rec)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range o.props {
			if !yield(k) {
				return
			}
		}
	})
	var kv []string
	for _, k := range keys {
		kv = append(kv, k+"="+o.props[k])
	}
	return fmt.Sprintf("r%d %ss #%d %s", o.a, o.kind, o.rec, strings.Join(kv, " "))
}

// genHistory makes a random history of steps for n replicas.
func genHistory(rng *rand.Rand, n, steps int) []simOp {
	const records = 4
	names := []string{"status", "owner", "title"}
	values := []string{"a", "b", "c"}
	props := func() map[string]string {
		m := map[string]string{}
		for _, name := range names {
			switch rng.IntN(3) {
			case 0:
				m[name] = values[rng.IntN(len(values))]
			case 1:
				if rng.IntN(4) == 0 {
					m[name] = "" // unset
				}
			}
		}
		if len(m) == 0 {
			m[names[0]] = values[rng.IntN(len(values))]
		}
		return m
	}
	var h []simOp
	for range steps {
		a := rng.IntN(n)
		switch k := rng.IntN(20); {
		case k < 3:
			h = append(h, simOp{kind: "create", a: a, rec: rng.IntN(records), props: props()})
		case k < 9:
			h = append(h, simOp{kind: "update", a: a, rec: rng.IntN(records), props: props()})
		case k < 10:
			h = append(h, simOp{kind: "delete", a: a, rec: rng.IntN(records)})
		case k < 19:
			b := rng.IntN(n - 1)
			if b >= a {
				b++
			}
			h = append(h, simOp{kind: "pull", a: a, b: b, resolver: []string{"", "mine", "theirs"}[rng.IntN(3)]})
		default:
			h = append(h, simOp{kind: "restart", a: a})
		}
	}
	return h
}

// sim runs one history on n fresh replicas and checks convergence. It
// returns the first problem found (nil: all good).
type sim struct {
	t     *testing.T
	dirs  []string
	reps  []*merge.Local
	opts  []*replica.Options
	clock int64 // shared logical time, ns
	ids   []uuid.UUID
	// counts, for the test to show the history was not trivial
	conflicts, integrated, unresolved int
}

func runSim(t *testing.T, seed uint64, n int, h []simOp) (err error) {
	_, err = runSimStats(t, seed, n, h)
	return err
}

func runSimStats(t *testing.T, seed uint64, n int, h []simOp) (_ *sim, err error) {
	s := &sim{t: t}
	// Each run's replicas are removed as soon as it ends: a replica takes
	// tens of MiB on disk (Pebble preallocates its WAL), and a long run or
	// a shrink makes thousands.
	base, err := os.MkdirTemp("", "prophet-sim-")
	if err != nil {
		return s, err
	}
	defer func() {
		for _, l := range s.reps {
			if l != nil {
				l.Close()
			}
		}
		os.RemoveAll(base)
	}()
	rng := rand.New(rand.NewPCG(seed, 99))
	db := uuid.New()
	for i := range 4 {
		s.ids = append(s.ids, uuid.NewSHA1(db, fmt.Appendf(nil, "record-%d", i)))
	}
	for i := range n {
		// Each replica's clock runs at the shared time plus its own skew,
		// up to a second either way: the hybrid logical clock must keep
		// causality anyway.
		skew := rng.Int64N(2e9) - 1e9
		o := &replica.Options{Creator: fmt.Sprintf("r%d", i), Clock: func() time.Time { return time.Unix(0, 1.7e18+s.clock+skew) }}
		dir := filepath.Join(base, fmt.Sprintf("r%d", i))
		r, err := replica.Init(dir, db, o)
		if err != nil {
			return s, err
		}
		r.Close()
		l, err := merge.Open(ctx, dir, o)
		if err != nil {
			return s, err
		}
		s.dirs, s.reps, s.opts = append(s.dirs, dir), append(s.reps, l), append(s.opts, o)
	}
	for _, op := range h {
		s.clock += 1 + rng.Int64N(1e6)
		if err := s.step(op); err != nil {
			return s, fmt.Errorf("%v: %w", op, err)
		}
	}
	return s, s.settle()
}

func (s *sim) step(op simOp) error {
	l := s.reps[op.a]
	id := s.ids[op.rec]
	var err error
	switch op.kind {
	case "create":
		_, err = l.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Create, Set: op.props})
	case "update":
		_, err = l.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: op.props})
	case "delete":
		_, err = l.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Delete})
	case "restart":
		if err := l.Close(); err != nil {
			return err
		}
		s.reps[op.a], err = merge.Open(ctx, s.dirs[op.a], s.opts[op.a])
		return err
	case "pull":
		return s.pull(op.a, op.b, op.resolver)
	}
	// An edit that does not apply here (the record is missing, or exists)
	// is refused, as the CLI refuses it: not a problem.
	if errors.Is(err, replica.ErrNotFound) || errors.Is(err, replica.ErrConflict) {
		return nil
	}
	return err
}

// pull runs one pull; an unresolved conflict is settled the second time
// with a resolver, as a person would after reading the error.
func (s *sim) pull(a, b int, resolver string) error {
	opts := &merge.Options{Clock: func() time.Time { return time.Unix(0, 1.7e18+s.clock) }}
	switch resolver {
	case "mine":
		opts.Resolver = merge.Mine
	case "theirs":
		opts.Resolver = merge.Theirs
	}
	rep, err := merge.Pull(ctx, s.reps[b], s.reps[a], opts)
	s.conflicts += rep.Conflicts
	s.integrated += rep.Integrated
	var ue *merge.UnresolvedError
	if errors.As(err, &ue) {
		s.unresolved++
		opts.Resolver = merge.Theirs
		if a%2 == 0 {
			opts.Resolver = merge.Mine
		}
		rep, err = merge.Pull(ctx, s.reps[b], s.reps[a], opts)
		s.conflicts += rep.Conflicts
		s.integrated += rep.Integrated
	}
	return err
}

// settle syncs every pair until nothing moves, then checks the invariants.
func (s *sim) settle() error {
	n := len(s.reps)
	quiet := false
	for round := 0; round < 8 && !quiet; round++ {
		quiet = true
		for a := range n {
			for b := range n {
				if a == b {
					continue
				}
				before := s.reps[a].R.LatestSeq()
				if err := s.pull(a, b, "mine"); err != nil {
					return fmt.Errorf("settling: r%d pulls r%d: %w", a, b, err)
				}
				if s.reps[a].R.LatestSeq() != before {
					quiet = false
				}
			}
		}
	}
	if !quiet {
		return errors.New("I13: syncing every pair 8 times over still moves changesets")
	}
	// I11: equal digests.
	for i := 1; i < n; i++ {
		if s.reps[i].R.Digest() != s.reps[0].R.Digest() {
			return fmt.Errorf("I11: r%d and r0 have exchanged everything but hold different records:\n  r0: %s\n  r%d: %s", i, s.dump(0), i, s.dump(i))
		}
	}
	// I12: every changeset exactly once, everywhere.
	var want []changeset.ID
	for i, l := range s.reps {
		ids, err := logIDs(l)
		if err != nil {
			return err
		}
		sorted := slices.SortedFunc(slices.Values(ids), cmpID)
		if d := slices.CompactFunc(slices.Clone(sorted), func(x, y changeset.ID) bool { return x == y }); len(d) != len(sorted) {
			return fmt.Errorf("I12: r%d holds a changeset twice", i)
		}
		if i == 0 {
			want = sorted
		} else if !slices.Equal(sorted, want) {
			return fmt.Errorf("I12: r%d holds %d changesets, r0 %d: they have exchanged everything, so they must hold the same ones", i, len(sorted), len(want))
		}
		rep, err := l.R.Verify(ctx)
		if err != nil {
			return err
		}
		if !rep.OK() {
			return fmt.Errorf("verify r%d: %s", i, strings.Join(rep.Problems, "; "))
		}
	}
	return nil
}

func cmpID(x, y changeset.ID) int {
	if c := strings.Compare(x.Origin.String(), y.Origin.String()); c != 0 {
		return c
	}
	return int(x.Seq) - int(y.Seq)
}

func logIDs(l *merge.Local) ([]changeset.ID, error) {
	var ids []changeset.ID
	it := l.R.Log(1)
	defer it.Close()
	for it.Next() {
		id, err := it.ID()
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, it.Err()
}

func (s *sim) dump(i int) string {
	var out []string
	for k, id := range s.ids {
		rec, err := s.reps[i].R.Get("bug", id)
		if err != nil {
			continue
		}
		var kv []string
		for _, p := range rec.Props {
			kv = append(kv, p.Name+"="+p.Value)
		}
		out = append(out, fmt.Sprintf("#%d{%s}", k, strings.Join(kv, " ")))
	}
	return strings.Join(out, " ")
}

// shrink looks for a shorter history that still fails, removing chunks of
// steps while the failure stays.
func shrink(t *testing.T, seed uint64, n int, h []simOp) []simOp {
	for chunk := len(h) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(h); {
			try := append(slices.Clone(h[:i]), h[i+chunk:]...)
			if runSim(t, seed, n, try) != nil {
				h = try
			} else {
				i += chunk
			}
		}
	}
	return h
}

func TestSimulation(t *testing.T) {
	seeds := make([]uint64, *simSeeds)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	if *simSeed != 0 {
		seeds = []uint64{*simSeed}
	}
	var total sim
	defer func() {
		// The histories must be conflict-heavy, or they prove little.
		if !t.Failed() && len(seeds) > 3 && (total.conflicts < 10*len(seeds) || total.unresolved == 0) {
			t.Errorf("the simulations met only %d conflicts (%d unresolved) in %d seeds: make them conflict more", total.conflicts, total.unresolved, len(seeds))
		}
	}()
	for _, seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 1))
		n := 3 + rng.IntN(6)
		h := genHistory(rng, n, *simSteps)
		st, err := runSimStats(t, seed, n, h)
		if err == nil {
			total.conflicts += st.conflicts
			total.integrated += st.integrated
			total.unresolved += st.unresolved
			t.Logf("seed %d: %d replicas, %d changesets integrated, %d conflicts settled, %d pulls stopped by a conflict", seed, n, st.integrated, st.conflicts, st.unresolved)
		}
		if err != nil {
			short := shrink(t, seed, n, h)
			var lines []string
			for _, op := range short {
				lines = append(lines, "  "+op.String())
			}
			t.Fatalf("seed %d (%d replicas): %v\nshortest failing history found (%d of %d steps):\n%s\nrerun: go test ./merge -run TestSimulation -sim.seed %d -v",
				seed, n, err, len(short), len(h), strings.Join(lines, "\n"), seed)
		}
	}
}
