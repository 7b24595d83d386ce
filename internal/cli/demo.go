package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

var demoCmd = &command{
	name:    "demo",
	summary: "watch three replicas work offline, conflict and converge",
	detail: `
Shows prophet's main job in one go, with no setup and no server: alice makes
a database, bob and carol clone it, alice and bob change the same ticket
offline (clean changes and one real conflict), and they pull from each other
until all three hold the same records. The conflict is settled once, and the
resolution database settles it everywhere else without asking. It prints the
story step by step, ending with the three state digests, which are equal.

The replicas stay in --dir DIR (a new or empty directory; default: a new
temporary directory), to look around: prophet --replica DIR/bob log,
prophet --replica DIR/alice conflicts, and so on.`,
	mode: openNothing,
	min:  0, max: 0,
	setup: func(fs *flag.FlagSet) runFunc {
		dir := fs.String("dir", "", "make the replicas in `DIR` (new or empty; default: a new temporary directory)")
		return func(ctx context.Context, c *call) (err error) {
			d := &demo{ctx: ctx, c: c, dir: *dir, local: map[string]*merge.Local{}}
			defer func() {
				for _, l := range d.local {
					closeLocal(l, &err)
				}
			}()
			return d.run()
		}
	},
}

// demo is one run of prophet demo. It uses the replica and merge packages
// as an application would, in this process.
type demo struct {
	ctx   context.Context
	c     *call
	dir   string
	local map[string]*merge.Local // by person
	asked int                     // questions asked by a pull: the resolution database leaves none
}

const demoType = "ticket"

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.c.out, format, args...) }

func (d *demo) run() error {
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "prophet-demo-")
		if err != nil {
			return err
		}
		d.dir = dir
	} else if err := checkEmptyDir(d.dir, "run the demo in"); err != nil {
		return err
	}
	d.printf("prophet demo: alice, bob and carol keep the same tickets, each in a replica of their own\n")
	d.printf("(directories in %s). They work offline and sync; no server is involved.\n\n", d.dir)

	// 1. alice starts the database.
	alice, err := d.start("alice")
	if err != nil {
		return err
	}
	printer, err := d.create(alice, "printer on fire")
	if err != nil {
		return err
	}
	if _, err := d.create(alice, "no tea"); err != nil {
		return err
	}
	d.printf("1. alice starts a database (prophet init) and files two tickets (prophet create):\n")
	if err := d.list(alice, "     "); err != nil {
		return err
	}

	// 2. bob and carol clone it.
	var cloned merge.Report
	for i, who := range []string{"bob", "carol"} {
		if cloned, err = d.clone(who, uint64(i+1), alice); err != nil {
			return err
		}
	}
	d.printf("2. bob and carol clone alice's replica (prophet clone): each gets her %s, in a\n", count(uint64(cloned.Integrated), "changeset"))
	d.printf("   replica of the same database with a replica UUID of its own.\n")

	// 3. alice and bob work offline.
	bob := d.local["bob"]
	type edit struct {
		who  *merge.Local
		name string
		set  map[string]string
	}
	for _, e := range []edit{
		{alice, "owner", map[string]string{"owner": "alice"}},
		{alice, "status", map[string]string{"status": "open"}},
		{bob, "priority", map[string]string{"priority": "high"}},
		{bob, "status", map[string]string{"status": "closed"}},
	} {
		if _, err := e.who.R.Commit(d.ctx, replica.Edit{Type: demoType, Record: printer, Op: replica.Update, Set: e.set}); err != nil {
			return err
		}
	}
	if _, err := d.create(alice, "paper jam"); err != nil {
		return err
	}
	if _, err := d.create(bob, "coffee cold"); err != nil {
		return err
	}
	d.printf("3. Offline, alice and bob both change ticket 1, \"printer on fire\" (prophet update):\n")
	d.printf("     alice sets owner=alice, then status=open, and files \"paper jam\"\n")
	d.printf("     bob   sets priority=high, then status=closed, and files \"coffee cold\"\n")
	d.printf("   owner and priority are different properties: they merge cleanly. status is one\n")
	d.printf("   property set to two values: a real conflict.\n")

	// 4. bob pulls alice and settles the conflict.
	var seen []merge.Conflict
	theirs := merge.ResolverFunc{N: "theirs", F: func(cf *merge.Conflict) (replica.Outcome, bool, error) {
		seen = append(seen, *cf) // runs in the commit: quick, and read after the pull
		return cf.Source, true, nil
	}}
	opts := d.c.mergeOptions()
	opts.Resolver = theirs
	rep, err := merge.Pull(d.ctx, alice, bob, opts)
	if err != nil {
		return err
	}
	d.printf("4. bob pulls from alice (prophet pull): %s, and %s:\n", count(fresh(rep), "new changeset"), count(uint64(len(seen)), "conflict"))
	for _, cf := range seen {
		for i, p := range cf.Base {
			d.printf("     ticket 1 %s: was %s, alice says %s, bob says %s\n", p.Name, quote(p.Value), quote(cf.Source.Props[i].Value), quote(cf.Target.Props[i].Value))
		}
	}
	d.printf("   bob settles it with --prefer theirs: alice owns the ticket now, so her status stands.\n")
	d.printf("   The pull writes the settlement (%s of bob's) and records the decision in\n", count(settlement(rep), "changeset"))
	d.printf("   bob's resolution database. Now status=%s.\n", d.get(bob, printer, "status"))

	// 5. carol pulls from both: she meets the same conflict, and bob's
	// decision settles it. (Had alice pulled from bob first, carol would
	// receive alice's log with the conflict settled in it: nothing left
	// to settle.)
	carol := d.local["carol"]
	var sum merge.Report
	for _, src := range []*merge.Local{alice, bob} {
		if rep, err = d.pull(carol, src); err != nil {
			return err
		}
		sum.Read, sum.Skipped, sum.Integrated = sum.Read+rep.Read, sum.Skipped+rep.Skipped, sum.Integrated+rep.Integrated
		sum.Conflicts, sum.Resolutions = sum.Conflicts+rep.Conflicts, sum.Resolutions+rep.Resolutions
	}
	d.printf("5. carol pulls from alice, then from bob (%s). From bob she also gets his\n", count(fresh(sum), "new changeset"))
	d.printf("   decision (%s); when she meets the same conflict, the decision settles it:\n", count(uint64(sum.Resolutions), "resolution"))
	d.printf("   %s settled, status=%s, %s asked.\n", count(uint64(sum.Conflicts), "conflict"), d.get(carol, printer, "status"), count(uint64(d.asked), "question"))

	// 6. alice pulls bob: the same conflict, settled by the resolution
	// database.
	if rep, err = d.pull(alice, bob); err != nil {
		return err
	}
	d.printf("6. alice pulls from bob (%s) and gets his decision too (%s): the same\n", count(fresh(rep), "new changeset"), count(uint64(rep.Resolutions), "resolution"))
	d.printf("   conflict is settled the same way: %s settled, status=%s, %s asked.\n", count(uint64(rep.Conflicts), "conflict"), d.get(alice, printer, "status"), count(uint64(d.asked), "question"))

	// 7. Everyone holds the same records.
	d.printf("7. All three now hold the same records, so their state digests (prophet info) are equal:\n")
	equal := true
	for _, who := range []string{"alice", "bob", "carol"} {
		dig := d.local[who].R.Digest()
		equal = equal && dig == alice.R.Digest()
		d.printf("     %-5s %s\n", who, dig)
	}
	d.printf("   digests equal: %s\n", map[bool]string{true: "yes", false: "no"}[equal])
	d.printf("   carol's tickets (the numbers are local to a replica, the UUIDs the same everywhere):\n")
	if err := d.list(carol, "     "); err != nil {
		return err
	}
	d.printf("\nThe replicas are in %s: try prophet --replica %s conflicts,\n", d.dir, filepath.Join(d.dir, "alice"))
	d.printf("or prophet --replica %s log.\n", filepath.Join(d.dir, "carol"))
	if !equal {
		return errors.New("the demo's replicas did not converge (this is a bug); please report it with the output above")
	}
	return d.c.writeErr()
}

// fresh is how many changesets a pull brought in from the source.
func fresh(rep merge.Report) uint64 { return rep.Read - rep.Skipped }

// settlement is how many changesets of its own a pull wrote to settle
// conflicts (nullifications and resolutions).
func settlement(rep merge.Report) uint64 { return uint64(rep.Integrated) - fresh(rep) }

// options are the replica options for who, the n-th replica the demo makes.
func (d *demo) options(who string, n uint64) (*replica.Options, *testHooks) {
	o := &replica.Options{Creator: who + "@example.com", LockWait: d.c.opts.LockWait}
	h := d.c.hooks.derive(n)
	h.apply(o)
	return o, h
}

// start makes alice's replica of a new database.
func (d *demo) start(who string) (*merge.Local, error) {
	dir := filepath.Join(d.dir, who)
	o, h := d.options(who, 0)
	r, err := replica.Init(dir, uuid.Nil, o)
	if err != nil {
		return nil, err
	}
	if err := r.Close(); err != nil {
		return nil, err
	}
	l, err := merge.Open(d.ctx, dir, o)
	if err != nil {
		return nil, err
	}
	h.opened(l.R)
	d.local[who] = l
	return l, nil
}

// clone makes who's replica, a clone of src.
func (d *demo) clone(who string, n uint64, src *merge.Local) (merge.Report, error) {
	o, h := d.options(who, n)
	l, rep, err := merge.Clone(d.ctx, src, filepath.Join(d.dir, who), o, d.c.mergeOptions())
	if l != nil {
		d.local[who] = l
		h.opened(l.R)
	}
	return rep, err
}

// pull pulls from src into dst with no resolver: a conflict that the
// resolution database does not settle would go to the prompt, which counts
// the question and fails the pull.
func (d *demo) pull(dst, src *merge.Local) (merge.Report, error) {
	o := d.c.mergeOptions()
	o.Prompt = func(context.Context, *merge.Conflict) (replica.Outcome, error) {
		d.asked++
		return replica.Outcome{}, errors.New("the demo asks no questions")
	}
	return merge.Pull(d.ctx, src, dst, o)
}

func (d *demo) create(l *merge.Local, title string) (uuid.UUID, error) {
	cs, err := l.R.Commit(d.ctx, replica.Edit{Type: demoType, Op: replica.Create, Set: map[string]string{"title": title, "status": "new"}})
	if err != nil {
		return uuid.Nil, err
	}
	return cs.Changes[0].Record, nil
}

func (d *demo) get(l *merge.Local, id uuid.UUID, name string) string {
	rec, err := l.R.Get(demoType, id)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return quote(rec.Get(name))
}

// list prints l's tickets, by LUID.
func (d *demo) list(l *merge.Local, indent string) error {
	var recs []*replica.Record
	if err := l.R.List(demoType, nil, func(rec *replica.Record) error { recs = append(recs, rec); return nil }); err != nil {
		return err
	}
	slices.SortFunc(recs, func(a, b *replica.Record) int { return cmp.Compare(a.LUID, b.LUID) })
	for _, rec := range recs {
		d.printf("%s%s %d %s", indent, demoType, rec.LUID, rec.UUID)
		for _, p := range rec.Props {
			d.printf(" %s", formatProp(p.Name, p.Value))
		}
		d.printf("\n")
	}
	return nil
}
