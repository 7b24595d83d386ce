package merge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
)

// Info describes a replica taking part in a merge.
type Info struct {
	Replica  uuid.UUID // its own UUID
	Database uuid.UUID // shared by every replica of one database
	Latest   uint64    // the last sequence number of its log
}

// Source is what a merge reads from: a replica on disk (Local), over HTTP,
// or a foreign replica's gateway.
type Source interface {
	Info(ctx context.Context) (Info, error)
	// Resolutions calls fn for every decision of the source's resolution
	// database that the holder of have (per-origin highest Seq) lacks.
	Resolutions(ctx context.Context, have map[uuid.UUID]uint64, fn func(resolution.Decision) error) error
	// Changesets calls fn for every log entry after `after`, in log order,
	// with its sequence number and canonical bytes (valid during the call
	// only). It stops at the first error fn returns, and returns it.
	Changesets(ctx context.Context, after uint64, fn func(seq uint64, raw []byte) error) error
}

// FilteredSource is a Source that can leave out, on its side, what the
// puller already has: a source over a network sends only that. Pull uses it
// when the source implements it.
type FilteredSource interface {
	Source
	// ChangesetsFor calls fn, in log order, for the entries after `after`
	// that the puller lacks: those whose origin is not self and whose
	// origin sequence number is above tickets[origin], and those whose
	// origin is self above selfLatest (which the puller's replica then
	// refuses: it was restored from an older copy). It returns the last
	// sequence number it read, which may be beyond the last one sent: the
	// puller's position may advance to it. fn's error stops it and is
	// returned.
	ChangesetsFor(ctx context.Context, after uint64, tickets map[uuid.UUID]uint64, self uuid.UUID, selfLatest uint64, fn func(seq uint64, raw []byte) error) (last uint64, err error)
}

// Sink is what a merge integrates into.
type Sink interface {
	Info(ctx context.Context) (Info, error)
	// Tickets returns the merge tickets: per origin, the highest origin
	// sequence number integrated.
	Tickets(ctx context.Context) (map[uuid.UUID]uint64, error)
	// Position returns how far peer's log was read (0: never).
	Position(ctx context.Context, peer uuid.UUID) (uint64, error)
	SetPosition(ctx context.Context, peer uuid.UUID, seq uint64) error
	// Bulk integrates units from next, in order, until next returns (nil,
	// nil) or io.EOF (replica.Replica.Bulk).
	Bulk(ctx context.Context, next func() (*replica.Unit, error)) (replica.BulkResult, error)
	// ResolutionDB is the sink's resolution database.
	ResolutionDB() Resolutions
}

// Resolutions is a resolution database (resolution.DB).
type Resolutions interface {
	Tickets() (map[uuid.UUID]uint64, error)
	Integrate(ctx context.Context, ds []resolution.Decision) (int, error)
	Lookup(f resolution.Fingerprint) (winner resolution.Decision, votes, total int, ok bool, err error)
	Record(ctx context.Context, d resolution.Decision) (resolution.Decision, error)
}

// Options tune a merge.
type Options struct {
	// Force merges replicas of different databases.
	Force bool
	// Resolver settles conflicts that neither identical changes nor the
	// resolution database settle: Mine, Theirs, or your own. Nil: such a
	// conflict stops the merge (or goes to Prompt).
	Resolver Resolver
	// Prompt, when not nil, is asked about a conflict nothing else
	// settles (the CLI sets it on a terminal). It runs outside the commit
	// path; the merge records the answer and goes on.
	Prompt func(ctx context.Context, c *Conflict) (replica.Outcome, error)
	// Progress, when not nil, is called now and then with the counts so far.
	Progress func(Report)
	// Logger defaults to a discard logger.
	Logger *slog.Logger
	// Clock stamps decisions. Default: time.Now.
	Clock func() time.Time
}

// Report counts what a merge did.
type Report struct {
	Source      uuid.UUID
	Resolutions int    // decisions received for the resolution database
	Read        uint64 // log entries read from the source
	Skipped     uint64 // of which already here (by the merge tickets), not decoded
	Integrated  int    // changesets appended here (their own and settlements)
	Conflicts   int    // conflicts settled
	Position    uint64 // how far the source's log has been read
	Latest      uint64 // the source's last sequence number when the merge began
}

// UnresolvedError is a conflict that nothing settled. The merge stopped
// before the changeset, having integrated everything before it; run it again
// with a resolver (or --prefer) to go on from there.
type UnresolvedError struct {
	Conflict *Conflict
}

func (e *UnresolvedError) Error() string {
	c := e.Conflict
	return fmt.Sprintf("merge: changeset %s conflicts with this replica, and nothing settles it:\n%s\nnothing after it was merged; run the pull again with --prefer mine or --prefer theirs (or answer the prompt on a terminal) to settle it and go on",
		c.Changeset.ID(), c.Describe())
}

// ErrSameReplica and ErrOtherDatabase are the refusals.
var (
	ErrSameReplica   = errors.New("merge: a replica cannot merge with itself")
	ErrOtherDatabase = errors.New("merge: the replicas belong to different databases")
)

// ErrMalformed marks a changeset from the source that is not well formed
// (it also wraps changeset.ErrCorrupt): the source's fault, not the
// destination's.
var ErrMalformed = errors.New("merge: the source sent a malformed changeset")

// RefusedError is a changeset the destination refused to integrate, for
// the reason in Err (a replica restored from an older copy receiving its
// own changeset back, for one). Everything before it is integrated.
type RefusedError struct {
	ID  changeset.ID
	Seq uint64 // its sequence number in the source's log
	Err error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("merge: changeset %s (%d in the source's log): %v", e.ID, e.Seq, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Pull integrates into dst everything src has that dst lacks: first the
// resolution database, then the changesets after dst's position in src's
// log. A changeset that conflicts is settled by the resolvers (settle.go)
// in one unit with its nullification and resolution. Pull returns once
// everything integrated is durable; on error, everything integrated before
// it is durable and the position reflects it, so running Pull again goes
// on from there.
func Pull(ctx context.Context, src Source, dst Sink, opts *Options) (Report, error) {
	o := defaults(opts)
	answers := map[resolution.Fingerprint]replica.Outcome{}
	for {
		rep, err := pull(ctx, src, dst, &o, answers)
		var ue *UnresolvedError
		if o.Prompt == nil || !errors.As(err, &ue) {
			return rep, err
		}
		// Ask, outside the commit path, and go on from the conflicting
		// changeset: the settler takes the answer (and records it, stamped
		// with its resolution, like every decision).
		out, perr := o.Prompt(ctx, ue.Conflict)
		if perr != nil {
			return rep, fmt.Errorf("%w (prompt: %v)", err, perr)
		}
		if _, seen := answers[ue.Conflict.Fingerprint]; seen {
			return rep, fmt.Errorf("merge: the answer to the prompt did not settle the conflict: %w", err)
		}
		answers[ue.Conflict.Fingerprint] = out
	}
}

func defaults(opts *Options) Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// Check refuses a merge of a replica with itself, or across databases
// without force.
func Check(si, di Info, force bool) error {
	if si.Replica == di.Replica {
		return fmt.Errorf("%w: both are replica %s (a copy of a replica directory is the same replica; use prophet clone to make a new one)", ErrSameReplica, si.Replica)
	}
	if si.Database != di.Database && !force {
		return fmt.Errorf("%w: %s and %s; merging them mixes two unrelated sets of records: if that is what you want, use --force", ErrOtherDatabase, si.Database, di.Database)
	}
	return nil
}

func pull(ctx context.Context, src Source, dst Sink, o *Options, answers map[resolution.Fingerprint]replica.Outcome) (Report, error) {
	si, err := src.Info(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("merge: reading the source: %w", err)
	}
	di, err := dst.Info(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Source: si.Replica, Latest: si.Latest}
	if err := Check(si, di, o.Force); err != nil {
		return rep, err
	}
	if rep.Resolutions, err = pullResolutions(ctx, src, dst.ResolutionDB()); err != nil {
		return rep, err
	}
	pos, err := dst.Position(ctx, si.Replica)
	if err != nil {
		return rep, err
	}
	if pos > si.Latest {
		// The source's log is shorter than what was read from it: it was
		// restored from an older copy. Read it all again; the tickets keep
		// every changeset integrated once.
		o.Logger.Warn("the source's log is shorter than the position reached in it before; reading it from the start", "source", si.Replica, "position", pos, "latest", si.Latest)
		pos = 0
	}
	rep.Position = pos
	if pos == si.Latest {
		return rep, nil
	}
	tickets, err := dst.Tickets(ctx)
	if err != nil {
		return rep, err
	}
	s := &stream{o: o, src: src, dst: dst, self: di.Replica, selfLatest: di.Latest, tickets: tickets, rep: &rep, answers: answers,
		units: make(chan *unit, 64), stop: make(chan struct{})}
	if n, ok := src.(NoOldValues); ok {
		s.noOldValues = n.SendsNoOldValues()
	}
	err = s.run(ctx)
	if rep.Position > pos {
		if perr := dst.SetPosition(ctx, si.Replica, rep.Position); perr != nil && err == nil {
			err = perr
		}
	}
	return rep, err
}

func pullResolutions(ctx context.Context, src Source, res Resolutions) (int, error) {
	have, err := res.Tickets()
	if err != nil {
		return 0, err
	}
	var batch []resolution.Decision
	added := 0
	flush := func() error {
		n, err := res.Integrate(ctx, batch)
		added += n
		batch = batch[:0]
		return err
	}
	err = src.Resolutions(ctx, have, func(d resolution.Decision) error {
		batch = append(batch, d)
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	if err != nil {
		return added, fmt.Errorf("merge: resolution database: %w", err)
	}
	return added, nil
}

// unit is what the reader hands the integrating side: changesets to
// integrate as one unit, and the source positions around them.
type unit struct {
	css         []*changeset.Changeset
	first, last uint64 // source sequence numbers it spans
}

// stream runs one pull: a reader goroutine walks the source's log, skips
// what the tickets show is here without decoding it, decodes the rest and
// hands units to the sink's bulk load, which runs on the committer.
type stream struct {
	o    *Options
	src  Source
	dst  Sink
	self uuid.UUID
	// selfLatest is the destination's last changeset when the pull began:
	// every changeset of its own a source can hold is at or below it.
	selfLatest uint64
	tickets    map[uuid.UUID]uint64 // reader goroutine only
	rep        *Report              // reader goroutine, until it ends
	// conflicts settled (committer goroutine, in settle)
	conflicts int
	// noOldValues: the source cannot send old values (NoOldValues)
	noOldValues bool
	// answers given at the prompt in this pull, by fingerprint
	answers map[resolution.Fingerprint]replica.Outcome

	units chan *unit
	stop  chan struct{}
	read  struct {
		last uint64 // last entry read (reader goroutine; read after it ends)
		err  error
	}
}

func (s *stream) run(ctx context.Context) error {
	pos := s.rep.Position
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.units)
		s.read.err = s.reader(ctx, pos)
	}()
	var cur *unit // the unit handed out last
	res, err := s.dst.Bulk(ctx, func() (*replica.Unit, error) {
		var ok bool
		if cur, ok = <-s.units; !ok {
			return nil, nil
		}
		return &replica.Unit{Changesets: cur.css, Settle: s.settle}, nil
	})
	close(s.stop)
	<-done
	s.rep.Integrated, s.rep.Conflicts = res.Changesets, s.conflicts
	// The position moves only over what is durable here: after the
	// failing unit, or a write failure, it stays where it was, and the
	// next pull reads again what the tickets have not seen.
	var ue *replica.UnitError
	switch {
	case errors.As(err, &ue):
		// Everything before the failing unit is durable.
		s.rep.Position = cur.first - 1
		var uerr *UnresolvedError
		if errors.As(ue.Err, &uerr) {
			return uerr
		}
		return &RefusedError{ID: cur.css[0].ID(), Seq: cur.first, Err: ue.Err}
	case err != nil:
		return err
	case s.read.err != nil:
		// Everything handed out is durable.
		if cur != nil {
			s.rep.Position = cur.last
		}
		return s.read.err
	}
	s.rep.Position = s.read.last
	return nil
}

// reader walks the source's log after pos and sends units.
func (s *stream) reader(ctx context.Context, pos uint64) error {
	s.read.last = pos
	var group *unit // a nullification and what follows it
	send := func(u *unit) error {
		select {
		case s.units <- u:
			return nil
		case <-s.stop:
			return errStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	n := 0
	var delivered uint64
	fn := func(seq uint64, raw []byte) error {
		delivered++
		if n++; n%4096 == 0 && s.o.Progress != nil {
			s.o.Progress(*s.rep)
		}
		s.rep.Read++
		id, err := changeset.PeekID(raw)
		if err != nil {
			return fmt.Errorf("%w at %d of its log: %w; nothing from it on was merged (the source needs prophet verify)", ErrMalformed, seq, err)
		}
		// Our own changesets are skipped as long as we hold them; one we
		// do not hold goes on to the replica, which refuses it: this
		// replica was restored from an older copy, and must not reuse
		// its numbers.
		if (id.Origin == s.self && id.Seq <= s.selfLatest) || (id.Origin != s.self && s.tickets[id.Origin] >= id.Seq) {
			s.rep.Skipped++
			s.read.last = seq
			if group != nil {
				group.last = seq
			}
			return nil
		}
		cs, err := changeset.Decode(raw)
		if err != nil {
			return fmt.Errorf("%w at %d of its log: %w; nothing from it on was merged (the source needs prophet verify)", ErrMalformed, seq, err)
		}
		cs.Seq = seq
		s.tickets[id.Origin] = id.Seq
		s.read.last = seq
		// A nullification, the changeset it made room for and its
		// resolution were one unit where they were written: keep them so.
		switch {
		case group != nil && (len(group.css) == 1 || cs.IsResolution && cs.Origin == group.css[0].Origin):
			group.css = append(group.css, cs)
			group.last = seq
			if len(group.css) == 3 || cs.IsResolution {
				u := group
				group = nil
				return send(u)
			}
			return nil
		case group != nil:
			u := group
			group = nil
			if err := send(u); err != nil {
				return err
			}
		}
		u := &unit{css: []*changeset.Changeset{cs}, first: seq, last: seq}
		if cs.IsNullification {
			group = u
			return nil
		}
		return send(u)
	}
	var err error
	if fs, ok := s.src.(FilteredSource); ok {
		// The source leaves out what the tickets say is here: it was read
		// (and skipped) all the same, up to last.
		var last uint64
		last, err = fs.ChangesetsFor(ctx, pos, maps.Clone(s.tickets), s.self, s.selfLatest, fn)
		if err == nil && last > pos && last-pos >= delivered {
			unsent := last - pos - delivered
			s.rep.Read += unsent
			s.rep.Skipped += unsent
			s.read.last = max(s.read.last, last)
		}
	} else {
		err = s.src.Changesets(ctx, pos, fn)
	}
	if err == nil && group != nil {
		err = send(group)
	}
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

var errStopped = errors.New("merge: stopped")

// Snapshotter is a source that can hand over a copy of its whole database
// (replica.Snapshot, replica.SnapshotInfo): Clone then copies it instead of
// integrating the log changeset by changeset. A Local open for writing is
// one; so is an HTTP source.
type Snapshotter interface {
	Snapshot(ctx context.Context, dir string) (replica.SnapshotInfo, error)
}

// canSnapshot reports whether a Snapshotter can make a snapshot now: a
// Local needs to be open for writing.
func canSnapshot(src Source) bool {
	if l, ok := src.(*Local); ok {
		return !l.R.ReadOnly()
	}
	return true
}

// Clone makes a new replica in dir holding everything src has: same
// database UUID, new replica UUID. From a Snapshotter (a replica on this
// machine open for writing, or over HTTP) it copies the whole database
// (replica.CloneSnapshot) rather than integrating the log changeset by
// changeset; otherwise it inits and pulls. Either way it then pulls: the
// resolution database, and whatever came after the copy. An interrupted
// copy leaves no replica in dir (run the clone again); an interrupted pull
// leaves a replica like any other (pull again to finish it).
func Clone(ctx context.Context, src Source, dir string, ropts *replica.Options, opts *Options) (*Local, Report, error) {
	si, err := src.Info(ctx)
	if err != nil {
		return nil, Report{}, fmt.Errorf("merge: reading the source: %w", err)
	}
	var r *replica.Replica
	if sn, ok := src.(Snapshotter); ok && canSnapshot(src) {
		r, err = replica.CloneSnapshot(ctx, dir, func(tmp string) (replica.SnapshotInfo, error) {
			info, err := sn.Snapshot(ctx, tmp)
			if err == nil && (info.Replica != si.Replica || info.Database != si.Database) {
				err = fmt.Errorf("merge: the source's snapshot is of replica %s of database %s, not of %s of %s", info.Replica, info.Database, si.Replica, si.Database)
			}
			return info, err
		}, ropts)
	} else {
		r, err = replica.Init(dir, si.Database, ropts)
	}
	if err != nil {
		return nil, Report{Source: si.Replica, Latest: si.Latest}, err
	}
	l, err := attach(r, ropts)
	if err != nil {
		r.Close()
		return nil, Report{}, err
	}
	// The resolution database, and whatever the copy does not hold yet.
	rep, err := Pull(ctx, src, l, opts)
	if err != nil {
		return l, rep, err
	}
	if rep.Integrated == 0 && rep.Position == si.Latest {
		// Copied: report the log as read.
		rep.Read, rep.Integrated = si.Latest, int(si.Latest)
	}
	return l, rep, nil
}
