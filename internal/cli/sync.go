package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
)

// What clone, pull, push, conflicts and demo share: finding the other
// replica, opening replicas with their resolution databases, the progress
// line and the conflict prompt on a terminal, and what a merge says it did.

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// openLocal opens the replica in dir with its resolution database: for
// writing, with the creator, or read-only (then a replica that never settled
// a conflict has no resolution database, and l.Res is nil). Errors about a
// replica other than the command's own name it, since report names c.dir.
func (c *call) openLocal(ctx context.Context, dir string, write bool) (*merge.Local, error) {
	if c.shared(dir) {
		return c.sess.shared, nil
	}
	o := c.opts
	o.ReadOnly = !write
	if write {
		o.Creator = c.creator(ctx)
	}
	l, err := merge.Open(ctx, dir, &o)
	if err != nil {
		return nil, c.otherReplicaErr(err, dir)
	}
	if write {
		c.hooks.opened(l.R)
	}
	return l, nil
}

func (c *call) otherReplicaErr(err error, dir string) error {
	if filepath.Clean(dir) == filepath.Clean(c.dir) {
		return err
	}
	switch {
	case errors.Is(err, replica.ErrNoReplica):
		return userf(err, "no replica in %s; give the directory of a replica", dir)
	case errors.Is(err, replica.ErrCorrupt):
		return userf(err, "replica %s is damaged: %v; run prophet --replica %s verify to see what is wrong", dir, err, dir)
	}
	return err
}

// closeLocal closes l and keeps the first error.
func (c *call) closeLocal(l *merge.Local, err *error) {
	if c.shared(l.R.Dir()) {
		return // serve's, open for everyone
	}
	closeLocal(l, err)
}

func closeLocal(l *merge.Local, err *error) {
	if cerr := l.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("closing replica %s: %w", l.R.Dir(), cerr)
	}
}

// location is the other replica of a pull or push: a directory or the URL
// of a prophet serve, given as such or through a peer name.
type location struct {
	peer     string // the peer name; "" when given as a path or URL
	dir      string
	url      string // set instead of dir for a served replica
	tokenEnv string // the variable holding its token (peer add --token-env)
	typed    string // the directory as typed, when dir was made absolute for it
}

// String is how messages name it: the path or URL as given, or the peer's
// name.
func (l location) String() string {
	switch {
	case l.peer != "":
		return l.peer
	case l.url != "":
		return l.url
	case l.typed != "":
		return l.typed
	}
	return l.dir
}

// locate turns SOURCE or TARGET into a location: a peer name first, then a
// directory. arg "" means the peer named origin.
func (c *call) locate(arg string) (location, error) {
	pf, err := readPeersFile(c.dir)
	if err != nil {
		return location{}, err
	}
	peers := pf.Peers
	if arg == "" {
		if _, ok := peers[originPeer]; !ok {
			return location{}, userf(nil, "%s needs a replica directory or a peer name, and there is no peer named %s; %s", c.cmd.name, originPeer, knownPeers(peers))
		}
		arg = originPeer
	}
	if isURL(arg) {
		return location{url: arg}, nil
	}
	if loc, ok := peers[arg]; ok {
		if isURL(loc) {
			return location{peer: arg, url: loc, tokenEnv: pf.TokenEnv[arg]}, nil
		}
		return location{peer: arg, dir: loc}, nil
	}
	if fi, err := os.Stat(c.path(arg)); err != nil || !fi.IsDir() {
		return location{}, userf(err, "%s is neither a peer nor a directory; %s", arg, knownPeers(peers))
	}
	return location{dir: c.path(arg), typed: arg}, nil
}

// sameDir reports whether a and b are the same directory.
func sameDir(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// syncFlags are pull's and push's flags.
type syncFlags struct {
	prefer string
	force  bool
	dryRun bool
	live   bool // pull only
	since  string
}

func addSyncFlags(fs *flag.FlagSet) *syncFlags {
	f := &syncFlags{}
	fs.StringVar(&f.prefer, "prefer", "", "settle conflicts nothing else settles: `mine` (this replica's values) or theirs")
	fs.BoolVar(&f.force, "force", false, "merge even if the replicas belong to different databases")
	fs.BoolVar(&f.dryRun, "dry-run", false, "only count what would be read and what is new; change nothing")
	fs.StringVar(&f.since, "since", "", "Phabricator: reach back this far for revisions (`30d`, 12w, 720h); later pulls keep the window")
	return f
}

// sync is pull (push false: from the other replica into this one) and push
// (into the other replica from this one).
func (c *call) sync(ctx context.Context, f *syncFlags, push bool) (err error) {
	switch f.prefer {
	case "", "mine", "theirs":
	default:
		return usagef("%s: --prefer %q: want mine or theirs; run prophet %s --help", c.cmd.name, f.prefer, c.cmd.name)
	}
	if f.dryRun && f.prefer != "" {
		return usagef("%s: --dry-run settles nothing, so --prefer does not go with it; drop one", c.cmd.name)
	}
	arg := ""
	if len(c.args) > 0 {
		arg = c.args[0]
	}
	if !isForeign(arg) && !isURL(arg) {
		// A peer may name a foreign replica.
		peers, err := readPeers(c.dir)
		if err != nil {
			return err
		}
		name := arg
		if name == "" {
			name = originPeer
		}
		if loc, ok := peers[name]; ok && isForeign(loc) {
			arg = loc
		}
	}
	if isForeign(arg) {
		// A push to a foreign replica writes here too: what the remote
		// assigned, and the state handle.
		here, err := c.openLocal(ctx, c.dir, true)
		if err != nil {
			return err
		}
		defer c.closeLocal(here, &err)
		return c.syncForeign(ctx, f, push, here, arg)
	}
	here, err := c.openLocal(ctx, c.dir, !push && !f.dryRun)
	if err != nil {
		return err
	}
	defer c.closeLocal(here, &err)
	loc, err := c.locate(arg)
	if err != nil {
		return err
	}
	if f.live {
		if loc.url == "" || f.dryRun {
			return usagef("pull --live follows a served replica: give the URL of a prophet serve (or a peer that has one), without --dry-run")
		}
		return c.pullLive(ctx, f, here, loc)
	}
	if loc.url != "" {
		return c.syncHTTP(ctx, f, push, here, loc)
	}
	if sameDir(loc.dir, c.dir) {
		to := map[bool]string{false: "pull from", true: "push to"}[push]
		return userf(merge.ErrSameReplica, "%s is this replica (%s); %s another replica", loc, c.dir, to)
	}
	there, err := c.openLocal(ctx, loc.dir, push && !f.dryRun)
	if err != nil {
		return err
	}
	defer c.closeLocal(there, &err)
	src, dst := there, here
	if push {
		src, dst = here, there
	}
	if f.dryRun {
		return c.dryRun(ctx, loc, src, dst, f.force, push)
	}

	// "mine" is this replica's side, whichever way the changesets go.
	opts := c.mergeOptions()
	opts.Force = f.force
	switch {
	case f.prefer == "mine" && !push, f.prefer == "theirs" && push:
		opts.Resolver = merge.Mine
	case f.prefer != "":
		opts.Resolver = merge.Theirs
	}
	p := newProgress(c.stderr)
	opts.Progress = p.update
	var aborted bool
	if f.prefer == "" && isTerminal(c.stdin) && isTerminal(c.stderr) {
		opts.Prompt = c.prompt(p, here, loc, push, &aborted)
	}
	rep, err := merge.Pull(ctx, src, dst, opts)
	p.done()
	if err != nil {
		return c.explainMerge(err, rep, here, loc, push, aborted)
	}
	return c.writeSyncReport(rep, loc, absDir(src.R.Dir()), absDir(dst.R.Dir()), push)
}

// mergeOptions are the merge options every command uses: the test clock
// stamps decisions when it is set.
func (c *call) mergeOptions() *merge.Options {
	o := &merge.Options{}
	if !c.hooks.now.IsZero() {
		now := c.hooks.now
		o.Clock = func() time.Time { return now }
	}
	return o
}

// explainMerge turns a failed pull or push into one line.
func (c *call) explainMerge(err error, rep merge.Report, here *merge.Local, loc location, push, aborted bool) error {
	var ue *merge.UnresolvedError
	if !errors.As(err, &ue) {
		return err
	}
	cf := ue.Conflict
	what := fmt.Sprintf("changeset %s conflicts with %s, and nothing settles it", cf.Changeset.ID(), map[bool]string{false: "this replica", true: loc.String()}[push])
	if aborted {
		what = fmt.Sprintf("%s aborted at a conflict in changeset %s", c.cmd.name, cf.Changeset.ID())
	}
	before := "nothing was merged"
	if rep.Integrated > 0 {
		before = fmt.Sprintf("what came before it is merged (%s), nothing from it on", count(uint64(rep.Integrated), "changeset"))
	}
	return userf(err, "%s: %s; %s; run the %s again with --prefer mine or --prefer theirs to settle it and go on",
		what, strings.Join(describeConflict(cf, here, loc, push), ": "), before, c.cmd.name)
}

// describeConflict says what conflicts, from this replica's point of view
// (here, which gives the record's LUID; nil leaves it out):
// mine is this replica's side, theirs the other replica's (the target's
// when pushing). The first line names the record, the others one property
// each.
func describeConflict(cf *merge.Conflict, here *merge.Local, loc location, push bool) []string {
	mine, theirs := cf.Target, cf.Source
	if push {
		mine, theirs = cf.Source, cf.Target
	}
	head := fmt.Sprintf("%s %s", cf.Type, cf.Record)
	if here != nil {
		if luid, err := here.R.LUID(cf.Type, cf.Record); err == nil && luid > 0 {
			head = fmt.Sprintf("%s %d %s", cf.Type, luid, cf.Record)
		}
	}
	head += fmt.Sprintf(", %s by %s", opNoun(cf.Op), cf.Changeset.Creator)
	switch {
	case mine.Live && !theirs.Live:
		head += ", deleted in " + loc.String()
	case !mine.Live && theirs.Live:
		head += ", deleted here"
	case cf.Op == changeset.Add:
		head += ", created on both sides"
	}
	lines := []string{head}
	for i, p := range cf.Base {
		lines = append(lines, fmt.Sprintf("%s was %s, mine %s, theirs %s",
			p.Name, orUnset(p.Value), orUnset(mine.Props[i].Value), orUnset(theirs.Props[i].Value)))
	}
	return lines
}

func opNoun(op changeset.Op) string {
	switch op {
	case changeset.Add:
		return "an add"
	case changeset.Delete:
		return "a delete"
	}
	return "an update"
}

// prompt asks on the terminal how to settle a conflict nothing else
// settles.
func (c *call) prompt(p *progress, here *merge.Local, loc location, push bool, aborted *bool) func(context.Context, *merge.Conflict) (replica.Outcome, error) {
	in := bufio.NewReader(c.stdin)
	return func(ctx context.Context, cf *merge.Conflict) (replica.Outcome, error) {
		p.done()
		mine, theirs := cf.Target, cf.Source
		if push {
			mine, theirs = cf.Source, cf.Target
		}
		fmt.Fprintf(c.stderr, "conflict with %s: ", loc)
		for i, l := range describeConflict(cf, here, loc, push) {
			if i > 0 {
				l = "  " + l
			}
			fmt.Fprintln(c.stderr, l)
		}
		for {
			fmt.Fprint(c.stderr, "keep [m]ine, take [t]heirs, or [a]bort? ")
			line, err := in.ReadString('\n')
			switch strings.ToLower(strings.TrimSpace(line)) {
			case "m", "mine":
				return mine, nil
			case "t", "theirs":
				return theirs, nil
			case "a", "abort":
				*aborted = true
				return replica.Outcome{}, errors.New("aborted")
			}
			if err != nil { // end of input, or the terminal went away
				fmt.Fprintln(c.stderr)
				*aborted = true
				return replica.Outcome{}, err
			}
		}
	}
}

// writeSyncReport says what a pull or push did; src and dst name the
// replicas in --json (absolute directories, or URLs).
func (c *call) writeSyncReport(rep merge.Report, loc location, src, dst string, push bool) error {
	upToDate := rep.Integrated == 0 && rep.Resolutions == 0
	if c.json {
		j := syncJSON{Direction: c.cmd.name, Source: src, Target: dst,
			Peer: loc.peer, SourceReplica: jsonUUID(rep.Source), Read: rep.Read, Skipped: rep.Skipped,
			Integrated: rep.Integrated, Conflicts: rep.Conflicts, Resolutions: rep.Resolutions, UpToDate: upToDate}
		return writeJSON(c.out, j)
	}
	if upToDate {
		who := "already up to date with " + loc.String()
		if push {
			who = loc.String() + " is already up to date"
		}
		if rep.Read > 0 {
			who += fmt.Sprintf(" (read %s, all already there)", count(rep.Read, "changeset"))
		}
		fmt.Fprintln(c.out, who)
		return c.writeErr()
	}
	verb := "pulled from"
	if push {
		verb = "pushed to"
	}
	fmt.Fprintf(c.out, "%s %s: %s integrated, %d skipped (already there)", verb, loc, count(uint64(rep.Integrated), "changeset"), rep.Skipped)
	if rep.Conflicts > 0 {
		fmt.Fprintf(c.out, ", %s settled", count(uint64(rep.Conflicts), "conflict"))
	}
	if rep.Resolutions > 0 {
		fmt.Fprintf(c.out, ", %s received", count(uint64(rep.Resolutions), "resolution"))
	}
	fmt.Fprintln(c.out)
	return c.writeErr()
}

// count walks the log of src (a local replica) after pos and counts what a
// replica self, at selfLatest and with tickets, lacks, the way the merge
// decides it (merge.Lacks, without decoding). tickets is updated.
func (j *dryRunJSON) count(ctx context.Context, src *merge.Local, pos uint64, tickets map[uuid.UUID]uint64, self uuid.UUID, selfLatest uint64) error {
	return src.Changesets(ctx, pos, func(seq uint64, raw []byte) error {
		j.Read++
		id, err := changeset.PeekID(raw)
		if err != nil {
			return fmt.Errorf("changeset %d of %s: %w", seq, src.R.Dir(), err)
		}
		if !merge.Lacks(id, tickets, self, selfLatest) {
			j.AlreadyHere++
			return nil
		}
		tickets[id.Origin] = id.Seq
		j.New++
		return nil
	})
}

// dryRun counts what a pull from src into dst would read, and how much of
// it is new by dst's merge tickets, the way the merge decides it (without
// decoding). It writes nothing. Conflicts are found only by integrating, so
// it cannot say whether there are any.
func (c *call) dryRun(ctx context.Context, loc location, src, dst *merge.Local, force, push bool) error {
	si, _ := src.Info(ctx)
	di, _ := dst.Info(ctx)
	if err := merge.Check(si, di, force); err != nil {
		return err
	}
	pos, err := dst.R.PeerPosition(si.Replica)
	if err != nil {
		return err
	}
	if pos > si.Latest {
		pos = 0 // the source was restored from an older copy: read it all
	}
	j := dryRunJSON{Direction: c.cmd.name, DryRun: true, Source: absDir(src.R.Dir()), Target: absDir(dst.R.Dir()),
		Peer: loc.peer, SourceReplica: jsonUUID(si.Replica)}
	if err := j.count(ctx, src, pos, dst.R.Tickets(), di.Replica, di.Latest); err != nil {
		return err
	}
	have := map[uuid.UUID]uint64{}
	if dst.Res != nil {
		if have, err = dst.Res.Tickets(); err != nil {
			return err
		}
	}
	err = src.Resolutions(ctx, have, func(resolution.Decision) error { j.Resolutions++; return nil })
	if err != nil {
		return err
	}
	return c.writeDryRun(j, loc, push)
}

// writeDryRun says what a dry run counted.
func (c *call) writeDryRun(j dryRunJSON, loc location, push bool) error {
	if c.json {
		return writeJSON(c.out, j)
	}
	if push {
		fmt.Fprintf(c.out, "dry run: a push to %s would read %s of this replica, %d new there, and send %s\n",
			loc, count(j.Read, "changeset"), j.New, count(uint64(j.Resolutions), "resolution"))
	} else {
		fmt.Fprintf(c.out, "dry run: a pull from %s would read %s, %d new here, and receive %s\n",
			loc, count(j.Read, "changeset"), j.New, count(uint64(j.Resolutions), "resolution"))
	}
	fmt.Fprintln(c.out, "nothing was changed; conflicts are only found by a real "+c.cmd.name)
	return c.writeErr()
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

// isTerminal reports whether f is an *os.File on a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// progress is the one line a long pull or clone keeps updating on stderr,
// when stderr is a terminal and the merge has run for a second.
type progress struct {
	w     io.Writer
	on    bool
	start time.Time
	last  time.Time
	shown bool
}

func newProgress(stderr io.Writer) *progress {
	return &progress{w: stderr, on: isTerminal(stderr), start: time.Now()}
}

// update is merge.Options.Progress. The merge calls it from its reader
// goroutine, never at the same time as done.
func (p *progress) update(rep merge.Report) {
	if !p.on {
		return
	}
	now := time.Now()
	el := now.Sub(p.start)
	if el < time.Second || now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last, p.shown = now, true
	fmt.Fprintf(p.w, "\r%s changesets, %s/s\x1b[K", thousands(rep.Read), thousands(uint64(float64(rep.Read)/el.Seconds())))
}

// done clears the line, if one was shown.
func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// thousands is n with commas: 12,345.
func thousands(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// elapsed is a duration for people: 12ms, 1.2s.
func elapsed(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
