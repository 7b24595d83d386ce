package foreign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
)

// Namespace is the UUIDv5 namespace of every name-based UUID the gateways
// make: a foreign replica's from its canonical URL, a remote object's from
// its URL. Changing it would change every such UUID.
var Namespace = uuid.MustParse("8a6f8a52-0d7e-5b8c-9d0a-5f3c1e7b2a41")

// NameUUID is the name-based (v5) UUID of a URL.
func NameUUID(url string) uuid.UUID { return uuid.NewSHA1(Namespace, []byte(url)) }

// Gateway is what one kind of remote (RT, GitHub, Phabricator) gives the
// framework. The framework turns it into a merge source and a merge sink,
// keeps the state handle, and runs the sync operations.
type Gateway interface {
	// Kind names the gateway ("rt").
	Kind() string
	// URL is the foreign replica's canonical address; its UUID is
	// NameUUID(URL()).
	URL() string
	// Latest is the position of the remote's newest change, cheaply (one
	// request): a pull with nothing new stops there.
	Latest(ctx context.Context, st *State) (uint64, error)
	// Changes calls emit for each remote change after position after, in
	// the remote's order, with increasing positions.
	Changes(ctx context.Context, st *State, after uint64, emit func(Change) error) error
	// Owns says whether changesets of origin (one of which has OriginSeq
	// seq) were made from this remote's changes, by any gateway replica.
	Owns(ctx context.Context, st *State, origin uuid.UUID, seq uint64) (bool, error)
	// Outbound says which properties of a local change the remote takes
	// (ok false: none; the change is not the remote's business).
	Outbound(ch *changeset.Change) (props []string, ok bool)
	// Apply carries an outbound op to the remote: it makes the remote
	// object match rec (nil: the record is deleted) in op.Props, checking
	// the remote first so that a retry after a lost response changes
	// nothing twice.
	Apply(ctx context.Context, st *State, op *Op, rec *replica.Record) (Applied, error)
	// Derived lists the properties the remote computes (times of the last
	// change, say): a conflict on them alone is settled for the remote.
	Derived() []string
}

// RemoteChangesets is implemented by gateways that recognise, by their
// content, the changesets any gateway replica made from their remote (a
// gateway whose changesets have per-gateway origins, which no remote
// lookup can attribute): a push skips them.
type RemoteChangesets interface {
	FromRemote(cs *changeset.Changeset) bool
}

// Change is one remote change, translated.
type Change struct {
	Pos uint64 // its position in the remote's feed
	// Changeset brings it; nil when there is nothing to integrate (an
	// echo of our own push, or a change of no record).
	Changeset *changeset.Changeset
	// Echo is the op whose push made the change, if one did.
	Echo uint64
	// Ref and Version describe it for the inbound op of the audit trail.
	Ref     Ref
	Version int64
	// Record is the state writes that go with it once integrated
	// (remote <-> record maps, snapshots); run when the position passes it.
	Record func(w *Writer) error
	// State is the remote object's properties after the change, as the
	// record should hold them (nil: not known): after the merge, the
	// record takes any of them that an older stamp kept from taking
	// effect (see Pull).
	State map[string]string
}

// Applied is what an outbound op did on the remote.
type Applied struct {
	Remote string   // the remote object
	Echoes []string // the remote changes the write made, to skip at pull
	// Report holds the values the remote now has that the record should
	// take (an ID it assigned, its status): committed to the gateway
	// replica as one local changeset, so the next pull finds them equal.
	Report map[string]string
	// Snapshot is the remote object as the write left it.
	Snapshot map[string]string
	// Related are other remote objects the write's answer names that the
	// gateway replica should hold (the user who wrote it, a project it
	// is tagged with): each becomes a record, as one local report
	// changeset, unless it has one, and is mapped with its snapshot.
	Related []Related
}

// Related is a remote object an outbound op's answer names.
type Related struct {
	Ref    Ref
	Remote string
	Props  map[string]string
}

// Options tune a foreign replica.
type Options struct {
	Logger  *slog.Logger
	Clock   func() time.Time
	Workers int // outbound ops run in parallel, one per record (default 4)
	// Creator stamps the local changesets that report what a push did
	// (default: the foreign replica's address); its push skips them.
	Creator string
}

// Foreign is a foreign replica, seen from one gateway replica.
type Foreign struct {
	gw    Gateway
	local *merge.Local
	st    *State
	id    uuid.UUID
	o     Options
}

// Open opens the foreign replica that gw reaches, with its state handle
// under local's directory.
func Open(local *merge.Local, gw Gateway, opts *Options) (*Foreign, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Creator == "" {
		// Its own: the reports of one foreign replica are skipped by its
		// own push only, and reach the others.
		o.Creator = gw.URL()
	}
	id := NameUUID(gw.URL())
	st, err := OpenState(stateDir(local.R.Dir(), id))
	if err != nil {
		return nil, err
	}
	f := &Foreign{gw: gw, local: local, st: st, id: id, o: o}
	var v View = f
	st.view.CompareAndSwap(nil, &v) // a shared handle keeps its first view: the same replica
	if err := f.stamp(); err != nil {
		st.Close()
		return nil, err
	}
	return f, nil
}

// stamp records, the first time, which remote the state handle is for, and
// refuses a handle made for another one.
func (f *Foreign) stamp() error {
	have, err := f.st.Meta("url")
	if err != nil {
		return err
	}
	switch have {
	case f.gw.URL():
		if g, err := f.st.Meta("gateway"); err != nil || g != "" {
			return err
		}
		return f.st.Update(func(w *Writer) error { return w.SetMeta("gateway", f.local.R.UUID().String()) })
	case "":
		return f.st.Update(func(w *Writer) error {
			if err := w.SetMeta("url", f.gw.URL()); err != nil {
				return err
			}
			if err := w.SetMeta("gateway", f.local.R.UUID().String()); err != nil {
				return err
			}
			return w.SetMeta("kind", f.gw.Kind())
		})
	}
	return fmt.Errorf("foreign: the state handle %s belongs to %s, not %s", f.st.Dir(), have, f.gw.URL())
}

// Close closes the state handle (not the gateway replica).
func (f *Foreign) Close() error { return f.st.Close() }

// UUID is the foreign replica's UUID.
func (f *Foreign) UUID() uuid.UUID { return f.id }

// State is the state handle.
func (f *Foreign) State() *State { return f.st }

// Gateway is the gateway.
func (f *Foreign) Gateway() Gateway { return f.gw }

const feedCursor = "feed"

func (f *Foreign) position() (uint64, error) { return f.st.FeedPosition() }

// FeedPosition is the position in the remote's feed that pulls have
// integrated up to (0: none yet).
func (s *State) FeedPosition() (uint64, error) {
	v, err := s.Cursor(feedCursor)
	if err != nil || v == "" {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}

// source is the foreign replica as a merge source: its "log" is the
// remote's change feed, positioned by the gateway's positions.
type source struct {
	f       *Foreign
	latest  uint64
	changes []Change // emitted or skipped, in order, for the audit trail
}

func (s *source) Info(ctx context.Context) (merge.Info, error) {
	latest, err := s.f.gw.Latest(ctx, s.f.st)
	if err != nil {
		return merge.Info{}, err
	}
	// A remote's newest position can fall below what was read (RT's
	// newest ticket left the queue): that is not a restored copy, and the
	// feed is not read again from the start.
	if pos, err := s.f.position(); err == nil && latest < pos {
		latest = pos
	}
	s.latest = latest
	// A foreign replica joins whatever database its gateway replica is
	// of: the check across databases is for native replicas.
	return merge.Info{Replica: s.f.id, Database: s.f.local.R.DatabaseUUID(), Latest: latest}, nil
}

func (s *source) Resolutions(context.Context, map[uuid.UUID]uint64, func(resolution.Decision) error) error {
	return nil // a remote has no resolution database
}

func (s *source) Changesets(ctx context.Context, after uint64, fn func(seq uint64, raw []byte) error) error {
	var last uint64
	return s.f.gw.Changes(ctx, s.f.st, after, func(c Change) error {
		if c.Pos <= last || c.Pos <= after {
			return fmt.Errorf("foreign: %s gave change positions out of order (%d after %d)", s.f.gw.URL(), c.Pos, max(last, after))
		}
		last = c.Pos
		s.changes = append(s.changes, c)
		if c.Changeset == nil {
			return nil
		}
		c.Changeset.Seq, c.Changeset.Source = c.Pos, s.f.id
		raw, err := changeset.Encode(nil, c.Changeset)
		if err != nil {
			return fmt.Errorf("foreign: %s: encoding the changeset of remote change %d: %w", s.f.gw.URL(), c.Pos, err)
		}
		return fn(c.Pos, raw)
	})
}

// sink is the gateway replica as the sink of a pull from the foreign
// replica: the position in the remote's feed lives in the state handle.
type sink struct {
	*merge.Local
	f *Foreign
}

func (s sink) Position(_ context.Context, peer uuid.UUID) (uint64, error) { return s.f.position() }

func (s sink) SetPosition(_ context.Context, _ uuid.UUID, seq uint64) error {
	return nil // Pull writes it, with the audit trail, once the merge is done
}

// Pull integrates the remote's changes since the last pull into the gateway
// replica, through the ordinary merge: conflicts with local edits are
// settled by the resolvers and the resolution database. A conflict on the
// remote's derived properties alone is settled for the remote.
func (f *Foreign) Pull(ctx context.Context, mopts *merge.Options) (merge.Report, error) {
	f.st.feed.Lock() // a pull and an event's integration number changesets: one at a time
	defer f.st.feed.Unlock()
	var o merge.Options
	if mopts != nil {
		o = *mopts
	}
	o.Resolver = f.derivedResolver(o.Resolver)
	src := &source{f: f}
	start, err := f.position()
	if err != nil {
		return merge.Report{}, err
	}
	rep, err := merge.Pull(ctx, src, sink{Local: f.local, f: f}, &o)
	pos := rep.Position
	if err == nil && len(src.changes) > 0 {
		// Everything read is integrated: the position passes the echoes
		// at the end too.
		pos = max(pos, src.changes[len(src.changes)-1].Pos)
	}
	if pos > start {
		if werr := f.record(src.changes, pos, true); werr != nil && err == nil {
			err = werr
		}
		rep.Position = pos
		if cerr := f.catchUp(ctx, src.changes, pos); cerr != nil && err == nil {
			err = cerr
		}
	}
	return rep, err
}

// catchUp makes the records of the objects a pull changed hold what the
// remote holds. A remote change that applied cleanly can still lose to the
// record's newer stamp (records are last-writer-wins registers, and a
// remote stamps its changes with its own clock, to the second): then the
// record would keep a value the remote no longer has, on every replica,
// and nothing would ever push or pull it again. catchUp commits, as one
// local changeset per record (a report, which this foreign replica's push
// skips), the remote's values for the properties where the record differs
// and holds no local edit still to push.
func (f *Foreign) catchUp(ctx context.Context, changes []Change, pos uint64) error {
	final := map[Ref]map[string]string{}
	var order []Ref
	for _, c := range changes {
		if c.Pos > pos || c.State == nil || c.Ref.Type == "" {
			continue
		}
		if _, ok := final[c.Ref]; !ok {
			order = append(order, c.Ref)
		}
		final[c.Ref] = c.State
	}
	if len(order) == 0 {
		return nil
	}
	r := f.local.R
	for _, ref := range order {
		pending, err := f.pendingProps(ref)
		if err != nil {
			return err
		}
		rec, err := r.Get(ref.Type, ref.Record)
		if errors.Is(err, replica.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		set := map[string]string{}
		for k, v := range final[ref] {
			if rec.Get(k) != v && !pending[k] {
				set[k] = v
			}
		}
		if len(set) == 0 {
			continue
		}
		cctx := replica.WithCreator(context.WithoutCancel(ctx), f.o.Creator)
		if _, err := r.Commit(cctx, replica.Edit{Type: ref.Type, Record: ref.Record, Op: replica.Update, Set: set}); err != nil && !errors.Is(err, replica.ErrNotFound) {
			return fmt.Errorf("foreign: bringing %s level with %s: %w", ref, f.gw.URL(), err)
		}
	}
	return nil
}

// fromHere says, without asking the remote, whether cs came from it: a
// report of this foreign replica's push, a changeset its gateway knows by
// content (RemoteChangesets), or one of an origin already known to be the
// remote's.
func (f *Foreign) fromHere(cs *changeset.Changeset) bool {
	r := f.local.R
	if cs.Creator == f.o.Creator && cs.Origin == r.UUID() {
		return true
	}
	if rc, ok := f.gw.(RemoteChangesets); ok && rc.FromRemote(cs) {
		return true
	}
	if cs.Origin != r.UUID() {
		if owns, known, err := f.st.Owns(cs.Origin); err == nil && known && owns {
			return true
		}
	}
	return false
}

// Record reads a live record for the gateway (View).
func (f *Foreign) Record(ref Ref) (*replica.Record, error) {
	rec, err := f.local.R.Get(ref.Type, ref.Record)
	if errors.Is(err, replica.ErrNotFound) {
		return nil, nil
	}
	return rec, err
}

// Ticket is the gateway replica's merge ticket for origin (View).
func (f *Foreign) Ticket(origin uuid.UUID) uint64 { return f.local.R.Ticket(origin) }

// Pending is pendingProps, for the gateway (View).
func (f *Foreign) Pending(ref Ref) (map[string]bool, error) { return f.pendingProps(ref) }

// pendingProps lists the properties of a record with a local edit still
// to push, which the remote's values must not overwrite: those changed by
// changesets after the push position that did not come from this remote
// (read from the record's history, not the log), and those of its queued
// outbound ops.
func (f *Foreign) pendingProps(ref Ref) (map[string]bool, error) {
	pos, err := f.st.PushPosition()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	err = f.local.R.History(ref.Type, ref.Record, func(cs *changeset.Changeset) error {
		if cs.Seq <= pos || f.fromHere(cs) {
			return nil
		}
		for _, ch := range cs.Changes {
			if ch.RecordType != ref.Type || ch.Record != ref.Record {
				continue
			}
			for _, p := range ch.Props {
				out[p.Name] = true
			}
		}
		return nil
	})
	if errors.Is(err, replica.ErrNotFound) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	// And what queued outbound ops still carry (the push position passed
	// them, but the remote does not have them yet).
	ops, err := f.st.recordOps(ref)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if op.Dir == Outbound && op.State.Active() {
			for _, p := range op.Props {
				out[p] = true
			}
		}
	}
	return out, nil
}

// record writes the new feed position with the gateway's state writes of
// the changes it passes, and, with audit, an inbound op per change (the
// trail of a pull; an event has its own op already).
func (f *Foreign) record(changes []Change, pos uint64, audit bool) error {
	now := f.o.Clock()
	return f.st.UpdateOps(func(w *Writer) error {
		for _, c := range changes {
			if c.Pos > pos {
				break
			}
			if c.Record != nil {
				if err := c.Record(w); err != nil {
					return err
				}
			}
			if !audit || c.Ref.Type == "" {
				continue
			}
			op := Op{Dir: Inbound, Ref: c.Ref, Version: c.Version, State: Completed, Reason: "remote change " + strconv.FormatUint(c.Pos, 10)}
			if c.Changeset == nil {
				op.State, op.By, op.Reason = Duplicate, c.Echo, "echo of our own push"
			}
			if _, err := f.st.Submit(op, now, w); err != nil {
				return err
			}
		}
		return w.SetCursor(feedCursor, strconv.FormatUint(pos, 10))
	})
}

// derivedResolver settles, for the remote, a conflict that is only about
// the properties the remote derives; anything else goes to next.
func (f *Foreign) derivedResolver(next merge.Resolver) merge.Resolver {
	derived := f.gw.Derived()
	return merge.ResolverFunc{N: f.gw.Kind() + "-derived", F: func(c *merge.Conflict) (replica.Outcome, bool, error) {
		if c.Source.Live == c.Target.Live && c.Source.Live {
			only := true
			for i, p := range c.Source.Props {
				if p.Value != c.Target.Props[i].Value && !slices.Contains(derived, p.Name) {
					only = false
					break
				}
			}
			if only {
				return c.Source, true, nil
			}
		}
		if next == nil {
			return replica.Outcome{}, false, nil
		}
		return next.Resolve(c)
	}}
}

// PushReport counts what a push did.
type PushReport struct {
	Read      int // local changesets read
	Owned     int // of which came from this remote
	Queued    int // outbound ops queued
	Completed int
	Errored   int
	Dropped   int
	Disabled  int     // ops for objects no longer synced here
	Waiting   int     // ops left queued for the next push (see Wait)
	Wait      []error // why they wait
	Errors    []error // one per errored op
}

// Push sends the gateway replica's changes that the remote lacks. It is
// a merge from the gateway replica into the foreign replica as a sink
// (Sink): the merge reads the local log after the push position (the
// state handle's, never the merge tickets) and the sink queues one
// outbound op per record changed (a newer one cancels an older queued
// one). Then the queued ops run, several records at once. A record whose
// op fails is reported; the others go on.
func (f *Foreign) Push(ctx context.Context) (PushReport, error) {
	var rep PushReport
	if _, err := merge.Pull(ctx, f.local, f.Sink(&rep), nil); err != nil {
		return rep, err
	}
	run, err := f.st.Run(ctx, Outbound, f.o.Workers, f.o.Clock, f.apply)
	rep.Completed, rep.Errored, rep.Dropped, rep.Errors = run.Completed, run.Errored, run.Dropped, run.Errors
	rep.Waiting, rep.Wait, rep.Disabled = run.Waiting, run.Wait, run.Disabled
	return rep, err
}

// Sink is the foreign replica as a merge sink: merge.Pull(ctx,
// gatewayReplica, f.Sink(&rep), nil) queues, as outbound sync operations,
// whatever of the gateway replica's log the remote lacks, and moves the
// push position (Push then runs the ops). Its merge tickets are empty: what
// the remote has is the push position and the owned origins, never the
// gateway's tickets (seed 004). Decisions go to the gateway's resolution
// database, which the foreign replica shares.
func (f *Foreign) Sink(rep *PushReport) merge.Sink {
	if rep == nil {
		rep = &PushReport{}
	}
	return &pushSink{f: f, rep: rep}
}

var (
	_ merge.Source = (*source)(nil)
	_ merge.Sink   = (*pushSink)(nil)
	_ merge.Sink   = sink{}
)

type pushSink struct {
	f   *Foreign
	rep *PushReport
}

func (s *pushSink) Info(context.Context) (merge.Info, error) {
	return merge.Info{Replica: s.f.id, Database: s.f.local.R.DatabaseUUID()}, nil
}

func (s *pushSink) Tickets(context.Context) (map[uuid.UUID]uint64, error) {
	return map[uuid.UUID]uint64{}, nil
}

func (s *pushSink) Position(_ context.Context, peer uuid.UUID) (uint64, error) {
	if peer != s.f.local.R.UUID() {
		return 0, fmt.Errorf("foreign: %s takes pushes from its gateway replica %s only, not %s", s.f.gw.URL(), s.f.local.R.UUID(), peer)
	}
	return s.f.st.PushPosition()
}

// SetPosition: Bulk moves the position with the ops it queues, in one
// batch; the merge's own call after it finds it there already.
func (s *pushSink) SetPosition(_ context.Context, _ uuid.UUID, seq uint64) error {
	pos, err := s.f.st.PushPosition()
	if err != nil || seq <= pos {
		return err
	}
	return s.f.st.Update(func(w *Writer) error { return w.SetPushPosition(seq) })
}

func (s *pushSink) ResolutionDB() merge.Resolutions { return s.f.local.ResolutionDB() }

// pushBatch is how many changesets' ops are queued per batch.
const pushBatch = 1000

// Bulk turns the changesets into outbound ops, a batch at a time, each
// batch with the push position after it.
func (s *pushSink) Bulk(ctx context.Context, next func() (*replica.Unit, error)) (replica.BulkResult, error) {
	f, r := s.f, s.f.local.R
	var res replica.BulkResult
	byRec := map[Ref]*Op{}
	var order []Ref
	var last uint64
	flush := func() error {
		if last == 0 {
			return nil
		}
		now := f.o.Clock()
		err := f.st.UpdateOps(func(w *Writer) error {
			for _, ref := range order {
				if _, err := f.st.Submit(*byRec[ref], now, w); err != nil {
					return err
				}
				s.rep.Queued++
			}
			return w.SetPushPosition(last)
		})
		clear(byRec)
		order = order[:0]
		return err
	}
	n := 0
	for {
		u, err := next()
		if errors.Is(err, io.EOF) || (err == nil && u == nil) {
			break
		}
		if err != nil {
			return res, err
		}
		res.Units++
		for _, cs := range u.Changesets {
			res.Changesets++
			s.rep.Read++
			n++
			last = max(last, cs.Seq)
			// From the remote (or a report of what a push to it did):
			// known here first, else asked of the gateway, once per origin.
			owns := f.fromHere(cs)
			if !owns && cs.Origin != r.UUID() {
				var err error
				if owns, err = f.owns(ctx, cs.Origin, cs.OriginSeq); err != nil {
					return res, err
				}
			}
			if owns {
				s.rep.Owned++
				continue
			}
			for i := range cs.Changes {
				ch := &cs.Changes[i]
				props, ok := f.gw.Outbound(ch)
				if !ok {
					continue
				}
				ref := Ref{Type: ch.RecordType, Record: ch.Record}
				op := byRec[ref]
				if op == nil {
					op = &Op{Dir: Outbound, Ref: ref}
					byRec[ref] = op
					order = append(order, ref)
				}
				op.Version = int64(cs.Seq)
				op.Props = union(op.Props, props)
				switch ch.Op {
				case changeset.Add:
					op.Create, op.Delete = true, false
				case changeset.Delete:
					op.Delete = true
				}
			}
		}
		if n >= pushBatch {
			if err := flush(); err != nil {
				return res, err
			}
			n = 0
		}
	}
	res.LastSeq = last
	return res, flush()
}

// owns asks the state handle, then the gateway, whether changesets of
// origin came from the remote; the gateway's answer is kept.
func (f *Foreign) owns(ctx context.Context, origin uuid.UUID, seq uint64) (bool, error) {
	owns, known, err := f.st.Owns(origin)
	if err != nil || known {
		return owns, err
	}
	owns, err = f.gw.Owns(ctx, f.st, origin, seq)
	if err != nil {
		return false, err
	}
	return owns, f.st.Update(func(w *Writer) error { return w.SetOwns(origin, owns) })
}

// apply runs one outbound op: the gateway writes to the remote, then what
// the remote assigned is committed to the gateway replica.
func (f *Foreign) apply(ctx context.Context, op *Op) (func(w *Writer) error, error) {
	r := f.local.R
	rec, err := r.Get(op.Ref.Type, op.Ref.Record)
	switch {
	case errors.Is(err, replica.ErrNotFound):
		rec = nil
	case err != nil:
		return nil, err
	}
	if rec == nil && !op.Delete {
		return nil, fmt.Errorf("%w: the record is gone", ErrDrop)
	}
	a, err := f.gw.Apply(ctx, f.st, op, rec)
	if err != nil {
		return nil, err
	}
	if rec != nil && len(a.Report) > 0 {
		// The remote has the write: what follows must not be cut short
		// by an interrupt, or the echoes would be lost with it.
		if err := f.report(context.WithoutCancel(ctx), op, rec, a.Report); err != nil {
			return nil, err
		}
	}
	related, err := f.related(context.WithoutCancel(ctx), a.Related)
	if err != nil {
		return nil, err
	}
	return func(w *Writer) error {
		for _, rel := range related {
			if err := w.Map(rel.Remote, rel.Ref); err != nil {
				return err
			}
			if err := w.SetSnapshot(rel.Remote, rel.Props); err != nil {
				return err
			}
		}
		if a.Remote != "" {
			op.Remote = a.Remote
			if err := w.Map(a.Remote, op.Ref); err != nil {
				return err
			}
			if a.Snapshot != nil {
				if err := w.SetSnapshot(a.Remote, a.Snapshot); err != nil {
					return err
				}
			}
		}
		for _, e := range a.Echoes {
			if err := w.SetEcho(e, op.ID); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// related makes records of the related objects not mapped yet that have
// none, and returns those to map.
func (f *Foreign) related(ctx context.Context, objs []Related) ([]Related, error) {
	var out []Related
	for _, rel := range objs {
		if _, mapped, err := f.st.Record(rel.Remote); err != nil || mapped {
			if err != nil {
				return nil, err
			}
			continue
		}
		_, err := f.local.R.Get(rel.Ref.Type, rel.Ref.Record)
		if errors.Is(err, replica.ErrNotFound) {
			cctx := replica.WithCreator(ctx, f.o.Creator)
			_, err = f.local.R.Commit(cctx, replica.Edit{Type: rel.Ref.Type, Record: rel.Ref.Record, Op: replica.Create, Set: rel.Props})
			if errors.Is(err, replica.ErrConflict) {
				err = nil // another op, in parallel, made it first
			}
		}
		if err != nil {
			return nil, fmt.Errorf("recording %s of %s: %w", rel.Ref, f.gw.URL(), err)
		}
		out = append(out, rel)
	}
	return out, nil
}

// report commits, as one local changeset, the values the remote assigned
// that differ from the record: only where the record still holds what it
// held when the op read it (a newer local edit wins, and goes out with the
// next push).
func (f *Foreign) report(ctx context.Context, op *Op, was *replica.Record, values map[string]string) error {
	r := f.local.R
	now, err := r.Get(op.Ref.Type, op.Ref.Record)
	if errors.Is(err, replica.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	set := map[string]string{}
	for k, v := range values {
		if now.Get(k) != v && now.Get(k) == was.Get(k) {
			set[k] = v
		}
	}
	if len(set) == 0 {
		return nil
	}
	ctx = replica.WithCreator(ctx, f.o.Creator)
	if _, err := r.Commit(ctx, replica.Edit{Type: op.Ref.Type, Record: op.Ref.Record, Op: replica.Update, Set: set}); err != nil && !errors.Is(err, replica.ErrNotFound) {
		return fmt.Errorf("recording what %s assigned: %w", f.gw.URL(), err)
	}
	return nil
}

// Sync pulls, then pushes: the push then works from what the remote has
// now, and a conflict between the two sides is settled before anything of
// ours goes out.
func (f *Foreign) Sync(ctx context.Context, mopts *merge.Options) (merge.Report, PushReport, error) {
	pr, err := f.Pull(ctx, mopts)
	if err != nil {
		return pr, PushReport{}, err
	}
	push, err := f.Push(ctx)
	return pr, push, err
}
