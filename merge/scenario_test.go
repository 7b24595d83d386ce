package merge_test

// Scenario scripts (cockroachdb/datadriven) over named replicas on disk.
//
//	go test ./merge -run TestScenarios            # check every script
//	go test ./merge -run TestScenarios/divergent  # one script (by file name)
//	go test ./merge -run TestScenarios -rewrite   # regenerate the expected outputs
//
// Each file in testdata/scenarios is one topic. A script drives real
// replicas (merge.Open on t.TempDir()) that are deterministic: they share a
// fake clock that advances one second before each command (a replica may run
// ahead or behind it by its own skew), and UUIDs come from a counter
// (uuid.NewSHA1), so every output is stable. Every UUID the harness knows is
// printed as its alias: a replica's UUID as its name, a record's as the id
// the script gave it, a database's as db:NAME.
//
// Commands (arguments in any order; "on" names the replica acted upon):
//
//	init name=A [db=D] [skew=DUR] [creator=C]
//	    A new replica. The first init of database D (default "main")
//	    creates it; later ones join it (replica.Init with its UUID), as if
//	    they had been cloned empty. skew shifts A's clock (e.g. -500ms, 2s).
//	    creator is recorded on A's changesets (default: A capitalized).
//	clone from=A name=B [skew=DUR] [creator=C] [prefer=mine|theirs] [force]
//	    merge.Clone of A into a new replica B; prints the pull report.
//	copydir from=A name=B
//	    B is a byte copy of A's directory (A closed meanwhile): the same
//	    replica UUID, so it prints as A.
//	create on=A id=ALIAS [type=T] PROP=VALUE...
//	update on=A id=ALIAS [type=T] PROP=VALUE...   (PROP= unsets PROP)
//	delete on=A id=ALIAS [type=T]
//	    A local edit (replica.Commit). A record's UUID is derived from its
//	    alias, so two replicas creating the same alias create the same
//	    record. Prints the changeset written (as log does) or the error.
//	    Values with spaces or commas: PROP=(a crash, twice).
//	pull into=B from=A [prefer=mine|theirs] [force]
//	push from=A to=B [prefer=mine|theirs] [force]
//	    merge.Pull(A, B). Prints the merge.Report (resolutions: decisions
//	    received for the resolution database; read, skipped: log entries
//	    read from A and skipped by the merge tickets without decoding;
//	    integrated: changesets appended to B, settlements included;
//	    conflicts: conflicts settled; position/latest: how far A's log has
//	    been read, of how long it was), then the error if there is one.
//	sync A B [prefer=...]
//	    pull into=A from=B, then pull into=B from=A.
//	show on=A [id=ALIAS] [type=T]
//	    One record (its properties; "deleted" with its LUID; or "not
//	    found"), or every live record of every type, with LUID, and the
//	    creator, origin replica and time of the add that made it live.
//	    Records without an id are listed sorted by alias.
//	log on=A [from=SEQ | last=N] [hash]
//	    One line per changeset of A's log (from SEQ on, or the last N):
//	      SEQ ORIGIN#ORIGINSEQ [N] [R] @TIME by CREATOR: CHANGE; CHANGE...
//	    With hash, each line ends with the first 12 hex digits of the
//	    changeset's content hash (the same on every replica).
//	    N marks a nullification, R a resolution; TIME is the changeset's
//	    creation time since the scenario began (the hybrid logical clock
//	    adds nanoseconds). A change is
//	      add ID p=v ...            update ID p=old→new ...
//	      delete ID (p=v ...)       with ∅ for an absent value.
//	conflicts on=A
//	    Every decision in A's resolution database: ORIGIN#SEQ, its stamp
//	    (the creation time of the resolution written with it, as log shows
//	    it), its fingerprint, the record, how it was made and the conflict.
//	    Then, per conflict fingerprint (F1, F2... by first appearance in
//	    this script), what resolution.DB.Lookup answers: the winning
//	    outcome and its votes.
//	tickets on=A
//	    A's merge tickets (per origin, the highest origin seq integrated)
//	    and its positions in its peers' logs.
//	digest
//	    Whether every open replica shows the same records (replica.Digest),
//	    and if not, the groups that agree.
//	verify on=A
//	    replica.Verify: "ok" with counts, or the problems.
//	restart on=A
//	    Close A and open it again from disk.
//	skew on=A by=DUR
//	    Change A's clock skew from now on.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
)

func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		s := newScenario(t)
		defer s.close()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			s.t = t
			s.now += time.Second
			out, err := s.run(td)
			if err != nil {
				// A mistake in the script, not an outcome to record.
				t.Fatalf("%s: %v", td.Pos, err)
			}
			return s.alias(out)
		})
	})
}

// scenarioEpoch is time zero of every scenario.
var scenarioEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// scenarioNS namespaces the deterministic UUIDs.
var scenarioNS = uuid.MustParse("6f1c3a52-0d1e-4b7a-9c55-2d3e4f5a6b7c")

type scenario struct {
	t     *testing.T
	base  string
	now   time.Duration // since scenarioEpoch
	uuids int           // UUIDs handed out by NewUUID

	reps  map[string]*srep
	order []string                       // replica names, in creation order
	dbs   map[string]uuid.UUID           // database name → UUID
	names map[uuid.UUID]string           // every known UUID → its alias
	fps   map[resolution.Fingerprint]int // F1, F2... in order of first appearance
}

// srep is one replica of a scenario.
type srep struct {
	name string
	dir  string
	skew time.Duration
	opts *replica.Options
	l    *merge.Local // nil when closed
}

func newScenario(t *testing.T) *scenario {
	return &scenario{t: t, base: t.TempDir(), reps: map[string]*srep{}, dbs: map[string]uuid.UUID{},
		names: map[uuid.UUID]string{}, fps: map[resolution.Fingerprint]int{}}
}

func (s *scenario) close() {
	for _, name := range s.order {
		if r := s.reps[name]; r.l != nil {
			if err := r.l.Close(); err != nil {
				s.t.Errorf("closing %s: %v", name, err)
			}
			r.l = nil
		}
	}
}

func (s *scenario) newUUID() uuid.UUID {
	s.uuids++
	return uuid.NewSHA1(scenarioNS, fmt.Appendf(nil, "uuid-%d", s.uuids))
}

// record returns the UUID of a record alias (the same on every replica).
func (s *scenario) record(alias string) uuid.UUID {
	id := uuid.NewSHA1(scenarioNS, []byte("record:"+alias))
	s.names[id] = alias
	return id
}

// alias replaces every known UUID in out by its alias.
func (s *scenario) alias(out string) string {
	// Longest alias first does not matter: UUIDs are all 36 characters.
	for _, id := range slices.SortedFunc(maps.Keys(s.names), func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) }) {
		out = strings.ReplaceAll(out, id.String(), s.names[id])
	}
	return out
}

func (s *scenario) clock(r *srep) func() time.Time {
	return func() time.Time { return scenarioEpoch.Add(s.now + r.skew) }
}

// since formats a Unix-ns time relative to the scenario's start.
func since(ns int64) string {
	return "@" + time.Unix(0, ns).Sub(scenarioEpoch).String()
}

func (s *scenario) newRep(td *datadriven.TestData, name string) (*srep, error) {
	if name == "" {
		return nil, errors.New("missing name=")
	}
	if _, ok := s.reps[name]; ok {
		return nil, fmt.Errorf("replica %s already exists", name)
	}
	r := &srep{name: name, dir: filepath.Join(s.base, name)}
	if v := argOr(td, "skew", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, err
		}
		r.skew = d
	}
	creator := argOr(td, "creator", strings.ToUpper(name[:1])+name[1:])
	r.opts = &replica.Options{Clock: s.clock(r), NewUUID: s.newUUID, Creator: creator}
	return r, nil
}

func (s *scenario) add(r *srep) {
	s.reps[r.name] = r
	s.order = append(s.order, r.name)
	s.names[r.l.R.UUID()] = r.name
}

func (s *scenario) get(td *datadriven.TestData, key string) (*srep, error) {
	name := argOr(td, key, "")
	r, ok := s.reps[name]
	if !ok {
		return nil, fmt.Errorf("%s=%q: no such replica", key, name)
	}
	if r.l == nil {
		return nil, fmt.Errorf("replica %s is closed", name)
	}
	return r, nil
}

func argOr(td *datadriven.TestData, key, def string) string {
	a, ok := td.Arg(key)
	if !ok {
		return def
	}
	return strings.Join(a.Vals, ", ")
}

func (s *scenario) run(td *datadriven.TestData) (string, error) {
	ctx := context.Background()
	switch td.Cmd {
	case "init":
		r, err := s.newRep(td, argOr(td, "name", ""))
		if err != nil {
			return "", err
		}
		dbName := argOr(td, "db", "main")
		db := s.dbs[dbName] // uuid.Nil: Init makes a new database
		rr, err := replica.Init(r.dir, db, r.opts)
		if err != nil {
			return "", err
		}
		if db == uuid.Nil {
			db = rr.DatabaseUUID()
			s.dbs[dbName] = db
			s.names[db] = "db:" + dbName
		}
		if err := rr.Close(); err != nil {
			return "", err
		}
		if r.l, err = merge.Open(ctx, r.dir, r.opts); err != nil {
			return "", err
		}
		s.add(r)
		return fmt.Sprintf("%s: replica of %s", r.name, db), nil

	case "clone":
		src, err := s.get(td, "from")
		if err != nil {
			return "", err
		}
		r, err := s.newRep(td, argOr(td, "name", ""))
		if err != nil {
			return "", err
		}
		l, rep, err := merge.Clone(ctx, src.l, r.dir, r.opts, s.mergeOpts(td, r))
		if l == nil {
			return "", fmt.Errorf("clone: %v", err)
		}
		r.l = l
		s.add(r)
		return s.report(rep, err), nil

	case "copydir":
		src, err := s.get(td, "from")
		if err != nil {
			return "", err
		}
		r, err := s.newRep(td, argOr(td, "name", ""))
		if err != nil {
			return "", err
		}
		if err := src.l.Close(); err != nil {
			return "", err
		}
		src.l = nil
		if err := os.CopyFS(r.dir, os.DirFS(src.dir)); err != nil {
			return "", err
		}
		if src.l, err = merge.Open(ctx, src.dir, src.opts); err != nil {
			return "", err
		}
		if r.l, err = merge.Open(ctx, r.dir, r.opts); err != nil {
			return "", err
		}
		// Not s.add: the copy has the same UUID, which keeps its alias.
		s.reps[r.name] = r
		s.order = append(s.order, r.name)
		return fmt.Sprintf("%s: a copy of %s's directory (replica %s)", r.name, src.name, r.l.R.UUID()), nil

	case "create", "update", "delete":
		r, err := s.get(td, "on")
		if err != nil {
			return "", err
		}
		alias := argOr(td, "id", "")
		if alias == "" {
			return "", errors.New("missing id=")
		}
		e := replica.Edit{Type: argOr(td, "type", "ticket"), Record: s.record(alias), Set: map[string]string{}}
		e.Op = map[string]replica.EditOp{"create": replica.Create, "update": replica.Update, "delete": replica.Delete}[td.Cmd]
		for _, a := range td.CmdArgs {
			switch a.Key {
			case "on", "id", "type":
			default:
				if e.Op == replica.Delete {
					return "", fmt.Errorf("delete takes no properties (%s)", a.Key)
				}
				e.Set[a.Key] = strings.Join(a.Vals, ", ")
			}
		}
		cs, err := r.l.R.Commit(ctx, e)
		if err != nil {
			return "error: " + err.Error(), nil
		}
		if cs == nil {
			return "nothing to commit", nil
		}
		return s.logLine(cs), nil

	case "pull", "push":
		into, from := "into", "from"
		if td.Cmd == "push" {
			into, from = "to", "from"
		}
		dst, err := s.get(td, into)
		if err != nil {
			return "", err
		}
		src, err := s.get(td, from)
		if err != nil {
			return "", err
		}
		rep, err := merge.Pull(ctx, src.l, dst.l, s.mergeOpts(td, dst))
		return s.report(rep, err), nil

	case "sync":
		if len(td.CmdArgs) < 2 {
			return "", errors.New("sync A B")
		}
		a, b := s.reps[td.CmdArgs[0].Key], s.reps[td.CmdArgs[1].Key]
		if a == nil || b == nil || a.l == nil || b.l == nil {
			return "", errors.New("sync: unknown or closed replica")
		}
		var out []string
		for _, p := range [][2]*srep{{a, b}, {b, a}} {
			rep, err := merge.Pull(ctx, p[1].l, p[0].l, s.mergeOpts(td, p[0]))
			out = append(out, fmt.Sprintf("%s ← %s: %s", p[0].name, p[1].name, s.report(rep, err)))
			if err != nil {
				break
			}
		}
		return strings.Join(out, "\n"), nil

	case "show":
		r, err := s.get(td, "on")
		if err != nil {
			return "", err
		}
		if alias := argOr(td, "id", ""); alias != "" {
			rec, err := r.l.R.Get(argOr(td, "type", "ticket"), s.record(alias))
			if errors.Is(err, replica.ErrNotFound) {
				if l, _ := r.l.R.LUID(argOr(td, "type", "ticket"), s.record(alias)); l != 0 {
					return fmt.Sprintf("%s: deleted (luid %d)", alias, l), nil
				}
				return alias + ": not found", nil
			}
			if err != nil {
				return "", err
			}
			return s.showRecord(rec), nil
		}
		var out []string
		for _, tc := range r.l.R.Counts() {
			err := r.l.R.List(tc.Type, nil, func(rec *replica.Record) error {
				out = append(out, s.alias(s.showRecord(rec)))
				return nil
			})
			if err != nil {
				return "", err
			}
		}
		if len(out) == 0 {
			return "no records", nil
		}
		slices.Sort(out)
		return strings.Join(out, "\n"), nil

	case "log":
		r, err := s.get(td, "on")
		if err != nil {
			return "", err
		}
		from := uint64(1)
		if td.HasArg("from") {
			td.ScanArgs(s.t, "from", &from)
		}
		if td.HasArg("last") {
			var last uint64
			td.ScanArgs(s.t, "last", &last)
			if n := r.l.R.LatestSeq(); n >= last {
				from = n - last + 1
			}
		}
		var out []string
		it := r.l.R.Log(from)
		for it.Next() {
			cs, err := it.Changeset()
			if err != nil {
				it.Close()
				return "", err
			}
			line := s.logLine(cs)
			if td.HasArg("hash") {
				h, err := cs.Hash()
				if err != nil {
					it.Close()
					return "", err
				}
				line += " [" + h.String()[:12] + "]"
			}
			out = append(out, line)
		}
		if err := errors.Join(it.Err(), it.Close()); err != nil {
			return "", err
		}
		if len(out) == 0 {
			return "empty", nil
		}
		return strings.Join(out, "\n"), nil

	case "conflicts":
		r, err := s.get(td, "on")
		if err != nil {
			return "", err
		}
		return s.conflicts(r)

	case "tickets":
		r, err := s.get(td, "on")
		if err != nil {
			return "", err
		}
		var out []string
		tk := r.l.R.Tickets()
		for _, id := range slices.SortedFunc(maps.Keys(tk), func(a, b uuid.UUID) int { return strings.Compare(s.alias(a.String()), s.alias(b.String())) }) {
			out = append(out, fmt.Sprintf("ticket %s = %d", id, tk[id]))
		}
		for _, name := range s.order {
			p := s.reps[name]
			if p == r || p.l == nil {
				continue
			}
			pos, err := r.l.R.PeerPosition(p.l.R.UUID())
			if err != nil {
				return "", err
			}
			if pos > 0 {
				out = append(out, fmt.Sprintf("position in %s = %d", p.name, pos))
			}
		}
		if len(out) == 0 {
			return "none", nil
		}
		return strings.Join(out, "\n"), nil

	case "digest":
		groups := map[replica.Digest][]string{}
		var order []replica.Digest
		for _, name := range s.order {
			r := s.reps[name]
			if r.l == nil {
				continue
			}
			d := r.l.R.Digest()
			if groups[d] == nil {
				order = append(order, d)
			}
			groups[d] = append(groups[d], name)
		}
		if len(order) == 1 {
			return fmt.Sprintf("equal: %s", strings.Join(groups[order[0]], " ")), nil
		}
		var out []string
		for _, d := range order {
			out = append(out, "["+strings.Join(groups[d], " ")+"]")
		}
		return "differ: " + strings.Join(out, " "), nil

	case "verify":
		r, err := s.get(td, "on")
		if err != nil {
			return "", err
		}
		v, err := r.l.R.Verify(ctx)
		if err != nil {
			return "", err
		}
		if v.OK() {
			return fmt.Sprintf("ok: %d changesets, %d live records", v.Changesets, v.Records), nil
		}
		return "problems:\n  " + strings.Join(v.Problems, "\n  "), nil

	case "restart":
		r, err := s.get(td, "on")
		if err != nil {
			return "", err
		}
		if err := r.l.Close(); err != nil {
			return "", err
		}
		r.l = nil
		if r.l, err = merge.Open(ctx, r.dir, r.opts); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s reopened: latest %d", r.name, r.l.R.LatestSeq()), nil

	case "skew":
		r, err := s.get(td, "on")
		if err != nil {
			return "", err
		}
		d, err := time.ParseDuration(argOr(td, "by", ""))
		if err != nil {
			return "", err
		}
		r.skew = d
		return fmt.Sprintf("%s runs %s off the shared clock", r.name, d), nil
	}
	return "", fmt.Errorf("unknown command %q", td.Cmd)
}

func (s *scenario) mergeOpts(td *datadriven.TestData, dst *srep) *merge.Options {
	o := &merge.Options{Force: td.HasArg("force"), Clock: s.clock(dst)}
	switch argOr(td, "prefer", "") {
	case "mine":
		o.Resolver = merge.Mine
	case "theirs":
		o.Resolver = merge.Theirs
	case "":
	default:
		s.t.Fatalf("%s: prefer=mine or prefer=theirs", td.Pos)
	}
	return o
}

func (s *scenario) report(rep merge.Report, err error) string {
	out := fmt.Sprintf("resolutions=%d read=%d skipped=%d integrated=%d conflicts=%d position=%d/%d",
		rep.Resolutions, rep.Read, rep.Skipped, rep.Integrated, rep.Conflicts, rep.Position, rep.Latest)
	if err != nil {
		kind := "error"
		var ue *merge.UnresolvedError
		switch {
		case errors.As(err, &ue):
			kind = "unresolved"
		case errors.Is(err, merge.ErrSameReplica), errors.Is(err, merge.ErrOtherDatabase):
			kind = "refused"
		}
		out += "\n" + kind + ": " + err.Error()
	}
	return out
}

func (s *scenario) showRecord(rec *replica.Record) string {
	var kv []string
	for _, p := range rec.Props {
		kv = append(kv, p.Name+"="+p.Value)
	}
	id := rec.UUID.String()
	if rec.Type != "ticket" {
		id = rec.Type + ":" + id
	}
	return fmt.Sprintf("%s (luid %d) %s; added by %s on %s %s", id, rec.LUID, strings.Join(kv, " "),
		rec.Creator, rec.Origin, since(rec.Created.UnixNano()))
}

func val(v string) string {
	if v == "" {
		return "∅"
	}
	return v
}

func (s *scenario) logLine(cs *changeset.Changeset) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s#%d", cs.Seq, cs.Origin, cs.OriginSeq)
	if cs.IsNullification {
		b.WriteString(" N")
	}
	if cs.IsResolution {
		b.WriteString(" R")
	}
	fmt.Fprintf(&b, " %s by %s:", since(cs.Created.UnixNano()), cs.Creator)
	for i, ch := range cs.Changes {
		if i > 0 {
			b.WriteString(";")
		}
		id := ch.Record.String()
		if ch.RecordType != "ticket" {
			id = ch.RecordType + ":" + id
		}
		fmt.Fprintf(&b, " %s %s", ch.Op, id)
		var kv []string
		for _, p := range ch.Props {
			switch ch.Op {
			case changeset.Add:
				kv = append(kv, p.Name+"="+val(p.New))
			case changeset.Delete:
				kv = append(kv, p.Name+"="+val(p.Old))
			default:
				kv = append(kv, p.Name+"="+val(p.Old)+"→"+val(p.New))
			}
		}
		switch {
		case ch.Op == changeset.Delete:
			fmt.Fprintf(&b, " (%s)", strings.Join(kv, " "))
		case len(kv) > 0:
			b.WriteString(" " + strings.Join(kv, " "))
		}
	}
	return b.String()
}

func outcome(o resolution.Outcome) string {
	if !o.Live {
		return "deleted"
	}
	var kv []string
	for _, p := range o.Props {
		kv = append(kv, p.Name+"="+val(p.Value))
	}
	return "live " + strings.Join(kv, " ")
}

func (s *scenario) fingerprint(f resolution.Fingerprint) string {
	n, ok := s.fps[f]
	if !ok {
		n = len(s.fps) + 1
		s.fps[f] = n
	}
	return fmt.Sprintf("F%d", n)
}

func (s *scenario) conflicts(r *srep) (string, error) {
	if r.l.Res == nil {
		return "no resolution database", nil
	}
	var out []string
	var fps []resolution.Fingerprint
	err := r.l.Res.All(func(d resolution.Decision) error {
		c := d.Conflict
		var base []string
		for _, p := range c.Base {
			base = append(base, p.Name+"="+val(p.Value))
		}
		out = append(out, fmt.Sprintf("%s#%d %s %s %s how=%s: base(%s) source(%s) target(%s) → final(%s)",
			d.Origin, d.Seq, since(d.Stamp), s.fingerprint(d.Fingerprint), c.Record, d.How,
			strings.Join(base, " "), outcome(c.Source), outcome(c.Target), outcome(d.Final)))
		if !slices.Contains(fps, d.Fingerprint) {
			fps = append(fps, d.Fingerprint)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(out) == 0 {
		return "none", nil
	}
	slices.SortStableFunc(fps, func(a, b resolution.Fingerprint) int { return cmp.Compare(s.fps[a], s.fps[b]) })
	for _, f := range fps {
		w, votes, total, ok, err := r.l.Res.Lookup(f)
		if err != nil {
			return "", err
		}
		if ok {
			out = append(out, fmt.Sprintf("%s: %s by %d of %d (newest %s#%d)", s.fingerprint(f), outcome(w.Final), votes, total, w.Origin, w.Seq))
		}
	}
	return strings.Join(out, "\n"), nil
}
