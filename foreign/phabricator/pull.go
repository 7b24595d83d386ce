package phabricator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/prophet-sync/prophet/foreign"
)

// What Conduit answers, as far as the gateway reads it.
type (
	revision struct {
		ID     int    `json:"id"`
		PHID   string `json:"phid"`
		Fields struct {
			Title      string `json:"title"`
			AuthorPHID string `json:"authorPHID"`
			Status     struct {
				Value string `json:"value"`
			} `json:"status"`
			RepositoryPHID *string `json:"repositoryPHID"`
			DiffPHID       string  `json:"diffPHID"`
			Summary        string  `json:"summary"`
			TestPlan       string  `json:"testPlan"`
			DateCreated    int64   `json:"dateCreated"`
			DateModified   int64   `json:"dateModified"`
		} `json:"fields"`
		Attachments struct {
			Reviewers struct {
				Reviewers []struct {
					ReviewerPHID string `json:"reviewerPHID"`
					Status       string `json:"status"`
					IsBlocking   bool   `json:"isBlocking"`
				} `json:"reviewers"`
			} `json:"reviewers"`
			Subscribers struct {
				SubscriberPHIDs []string `json:"subscriberPHIDs"`
			} `json:"subscribers"`
			Projects struct {
				ProjectPHIDs []string `json:"projectPHIDs"`
			} `json:"projects"`
		} `json:"attachments"`
	}
	diff struct {
		ID          int    `json:"id"`
		PHID        string `json:"phid"`
		Attachments struct {
			Commits struct {
				Commits []struct {
					Message string `json:"message"`
				} `json:"commits"`
			} `json:"commits"`
		} `json:"attachments"`
	}
	user struct {
		PHID   string `json:"phid"`
		Fields struct {
			Username     string `json:"username"`
			RealName     string `json:"realName"`
			DateModified int64  `json:"dateModified"`
		} `json:"fields"`
	}
	project struct {
		PHID   string `json:"phid"`
		Fields struct {
			Name         string `json:"name"`
			Slug         string `json:"slug"`
			DateModified int64  `json:"dateModified"`
		} `json:"fields"`
	}
	repository struct {
		PHID   string `json:"phid"`
		Fields struct {
			Name         string `json:"name"`
			Callsign     string `json:"callsign"`
			DateModified int64  `json:"dateModified"`
		} `json:"fields"`
	}
	xact struct {
		ID           int     `json:"id"`
		PHID         string  `json:"phid"`
		Type         *string `json:"type"`
		AuthorPHID   string  `json:"authorPHID"`
		DateCreated  int64   `json:"dateCreated"`
		DateModified int64   `json:"dateModified"`
		Comments     []struct {
			Removed      bool  `json:"removed"`
			DateModified int64 `json:"dateModified"`
			Content      struct {
				Raw string `json:"raw"`
			} `json:"content"`
		} `json:"comments"`
		Fields json.RawMessage `json:"fields"`
	}
)

// query is one of the query constraints a sync follows, with the window of
// dateModified it covers: first (where it starts) to last (the newest
// seen), and asked, the server's clock when it was last refreshed.
type query struct {
	Names       []string            `json:"names,omitempty"` // what the address said
	Constraints map[string][]string `json:"constraints"`
	First       int64               `json:"first"`
	Last        int64               `json:"last"`
	Asked       int64               `json:"asked"`
}

func (q *query) key() string {
	b, _ := json.Marshal(q.Constraints) // maps marshal sorted
	return string(b)
}

// State handle cursors: the queries (JSON), and per revision "rev/PHID":
// the diff last fetched and the newest transaction seen.
const cQueries = "queries"

func revCursor(phid string) string { return "rev/" + phid }

// revState is what the gateway keeps of a revision besides its snapshot.
type revState struct {
	Diff string `json:"diff"` // the diffPHID whose diff the record holds
	Xact int    `json:"xact"` // the newest transaction seen
	// Read is the server's clock when the revision was read: a change in
	// that same second can have come after the read, and is looked for
	// again (dateModified has one-second resolution).
	Read int64 `json:"read"`
}

func loadRevState(st *foreign.State, phid string) (revState, error) {
	var rs revState
	v, err := st.Cursor(revCursor(phid))
	if err != nil || v == "" {
		return rs, err
	}
	err = json.Unmarshal([]byte(v), &rs)
	return rs, err
}

// refresh is one pull's queries and the first page of each, which Latest
// reads and Changes goes on from.
type refresh struct {
	queries []*query
	fresh   []bool // a query never synced
	starts  []int64
	asked   []int64
	pages   []*Page[revision]
}

// queries loads the query set, adding the address's (or, for a handle with
// none, the default: the token's user) when missing.
func (g *Gateway) queries(ctx context.Context, st *foreign.State) ([]*query, []bool, error) {
	var qs []*query
	v, err := st.Cursor(cQueries)
	if err != nil {
		return nil, nil, err
	}
	if v != "" {
		if err := json.Unmarshal([]byte(v), &qs); err != nil {
			return nil, nil, fmt.Errorf("phabricator: the state handle's queries do not parse: %w", err)
		}
	}
	fresh := make([]bool, len(qs))
	have := func(names []string) bool {
		return slices.ContainsFunc(qs, func(q *query) bool { return slices.Equal(q.Names, names) })
	}
	add := func(q *query) {
		if !slices.ContainsFunc(qs, func(o *query) bool { return o.key() == q.key() }) {
			qs, fresh = append(qs, q), append(fresh, true)
		}
	}
	for _, names := range g.names {
		if have(names) {
			continue
		}
		phids, err := g.resolve(ctx, names)
		if err != nil {
			return nil, nil, err
		}
		add(&query{Names: names, Constraints: map[string][]string{"responsiblePHIDs": phids}})
	}
	if len(qs) == 0 {
		me, err := g.whoami(ctx)
		if err != nil {
			return nil, nil, err
		}
		add(&query{Constraints: map[string][]string{"responsiblePHIDs": {me.PHID}}})
	}
	return qs, fresh, nil
}

// resolve turns usernames and #project slugs into PHIDs.
func (g *Gateway) resolve(ctx context.Context, names []string) ([]string, error) {
	var users, slugs []string
	for _, n := range names {
		if s, ok := strings.CutPrefix(n, "#"); ok {
			slugs = append(slugs, s)
		} else {
			users = append(users, n)
		}
	}
	found := map[string]string{}
	if len(users) > 0 {
		err := Search(ctx, g.c, "user.search", map[string]any{"constraints": map[string]any{"usernames": users}}, func(u user) error {
			found[u.Fields.Username] = u.PHID
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(slugs) > 0 {
		err := Search(ctx, g.c, "project.search", map[string]any{"constraints": map[string]any{"slugs": slugs}}, func(p project) error {
			found["#"+p.Fields.Slug] = p.PHID
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var phids []string
	for _, n := range names {
		p, ok := found[n]
		if !ok {
			return nil, fmt.Errorf("phabricator: %s has no user or project %q (responsible= takes a username, or #slug for a project)", g.base, n)
		}
		phids = append(phids, p)
	}
	return phids, nil
}

// now is the server's clock as last seen, else this machine's.
func (g *Gateway) now() int64 {
	if t := g.c.ServerTime(); !t.IsZero() {
		return t.Unix()
	}
	return g.clock().Unix()
}

// reach is how far back a query's first sync, or a grow, goes.
func (g *Gateway) reach() time.Duration {
	if g.since > 0 {
		return g.since
	}
	return DefaultSince
}

// searchPage asks for one page of the revisions matching q modified in
// [start, end] (end 0: no end), newest change first.
func (g *Gateway) searchPage(ctx context.Context, q *query, start, end int64, after string) (*Page[revision], error) {
	c := map[string]any{}
	for k, v := range q.Constraints {
		c[k] = v
	}
	c["modifiedStart"] = start
	if end > 0 {
		c["modifiedEnd"] = end
	}
	p := map[string]any{"constraints": c, "order": "updated", "attachments": jsonAttachments(), "limit": 100}
	if after != "" {
		p["after"] = after
	}
	var pg Page[revision]
	if err := g.c.Call(ctx, "differential.revision.search", p, &pg); err != nil {
		return nil, err
	}
	return &pg, nil
}

// Latest refreshes each query's first page (one request per query): when
// every revision there is as last synced and there is no second page,
// nothing changed, and the pull stops.
func (g *Gateway) Latest(ctx context.Context, st *foreign.State) (uint64, error) {
	pos, err := st.FeedPosition()
	if err != nil {
		return 0, err
	}
	r, err := g.refresh(ctx, st)
	if err != nil {
		return 0, err
	}
	g.mu.Lock()
	if g.first == nil {
		g.first = map[*foreign.State]*refresh{}
	}
	g.first[st] = r
	g.mu.Unlock()
	changed := false
	for i, q := range r.queries {
		pg := r.pages[i]
		if r.fresh[i] || (pg.Cursor.After != nil && *pg.Cursor.After != "") || g.growing(q) {
			changed = true
			continue
		}
		for _, rev := range pg.Data {
			snap, err := st.Snapshot(rev.PHID)
			if err != nil {
				return 0, err
			}
			rs, err := loadRevState(st, rev.PHID)
			if err != nil {
				return 0, err
			}
			if !synced(rev, snap, rs) {
				changed = true
				break
			}
		}
	}
	if changed {
		return pos + 1, nil
	}
	// Nothing new up to now: the next refresh's window starts from here.
	for i, q := range r.queries {
		q.Asked = r.asked[i]
	}
	js, err := json.Marshal(r.queries)
	if err != nil {
		return 0, err
	}
	return pos, st.Update(func(w *foreign.Writer) error { return w.SetCursor(cQueries, string(js)) })
}

// refresh loads the queries and asks for the first page of each.
func (g *Gateway) refresh(ctx context.Context, st *foreign.State) (*refresh, error) {
	qs, fresh, err := g.queries(ctx, st)
	if err != nil {
		return nil, err
	}
	r := &refresh{queries: qs, fresh: fresh}
	for i, q := range qs {
		start := min(q.Last, q.Asked-int64(g.window/time.Second))
		if fresh[i] {
			start = g.now() - int64(g.reach()/time.Second)
		}
		start = max(start, 0)
		pg, err := g.searchPage(ctx, q, start, 0, "")
		if err != nil {
			return nil, err
		}
		r.starts = append(r.starts, start)
		r.asked = append(r.asked, g.now())
		r.pages = append(r.pages, pg)
	}
	return r, nil
}

// growing says whether Since reaches further back than q's window.
func (g *Gateway) growing(q *query) bool {
	return g.since > 0 && q.First > g.now()-int64(g.since/time.Second)
}

// synced says whether rev is synced as it is now: its snapshot is of the
// same dateModified, read after that second.
func synced(rev revision, snap map[string]string, rs revState) bool {
	return snap != nil && snap["updated"] == stamp(rev.Fields.DateModified) && rs.Read > rev.Fields.DateModified
}

// Changes syncs, per query, the revisions changed since its window's
// end (backdated), then grows the window into the past if Since asks.
func (g *Gateway) Changes(ctx context.Context, st *foreign.State, after uint64, emit func(foreign.Change) error) error {
	snaps, err := foreign.NewSnapshots(st, g.url, g.objectUUID, after)
	if err != nil {
		return err
	}
	g.mu.Lock()
	r := g.first[st]
	delete(g.first, st)
	g.mu.Unlock()
	if r == nil {
		if r, err = g.refresh(ctx, st); err != nil {
			return err
		}
	}
	p := &puller{Snapshots: snaps, g: g, st: st, emit: emit, done: map[string]int64{}, names: map[string]string{}}
	for i, q := range r.queries {
		last, err := p.walk(ctx, q, r.starts[i], 0, r.pages[i], r.asked[i])
		if err != nil {
			return err
		}
		q.Last, q.Asked = max(q.Last, last), r.asked[i]
		if r.fresh[i] {
			q.First = r.starts[i]
		}
		if g.growing(q) {
			target := g.now() - int64(g.since/time.Second)
			if _, err := p.walk(ctx, q, target, q.First, nil, 0); err != nil {
				return err
			}
			q.First = target
		}
	}
	js, err := json.Marshal(r.queries)
	if err != nil {
		return err
	}
	return emit(foreign.Change{Pos: p.Next(), Record: func(w *foreign.Writer) error {
		return w.SetCursor(cQueries, string(js))
	}})
}

// puller is one pull's translation.
type puller struct {
	*foreign.Snapshots
	g     *Gateway
	st    *foreign.State
	emit  func(foreign.Change) error
	done  map[string]int64  // revisions synced in this pull, at their dateModified
	names map[string]string // PHID -> the name records show
	// related, when not nil, collects the users and projects found (a
	// push's, for Applied.Related).
	related *[]foreign.Related
}

// person makes the record of a user or project found.
func (p *puller) person(typ, phid string, props map[string]string, modified int64) error {
	p.names[phid] = nameOf(props)
	if p.related != nil {
		ref, err := p.Ref(phid, typ, uuid.Nil)
		if err != nil {
			return err
		}
		*p.related = append(*p.related, foreign.Related{Ref: ref, Remote: phid, Props: props})
	}
	return p.Object(typ, phid, props, uuid.Nil, time.Unix(modified, 0), nil, p.emit)
}

// walk syncs the revisions of q modified in [start, end], page by page
// (first, when given, is the first page already read), and returns the
// newest dateModified met.
func (p *puller) walk(ctx context.Context, q *query, start, end int64, first *Page[revision], firstRead int64) (int64, error) {
	var newest int64
	pg, read := first, firstRead
	for {
		if pg == nil {
			var err error
			if pg, err = p.g.searchPage(ctx, q, start, end, ""); err != nil {
				return 0, err
			}
			read = p.g.now()
		}
		for _, rev := range pg.Data {
			newest = max(newest, rev.Fields.DateModified)
		}
		if err := p.sync(ctx, pg.Data, read); err != nil {
			return 0, err
		}
		if pg.Cursor.After == nil || *pg.Cursor.After == "" || len(pg.Data) == 0 {
			return newest, nil
		}
		next, err := p.g.searchPage(ctx, q, start, end, *pg.Cursor.After)
		if err != nil {
			return 0, err
		}
		pg, read = next, p.g.now()
	}
}

// pending is a revision to sync, with what the pull fetched for it.
type pending struct {
	rev   revision
	state revState
	xacts []xact // oldest first
	diff  *diff  // fetched: the diff changed
	patch string
	read  int64 // the server's clock when the revision was read
}

// sync syncs a page of revisions: those new or modified since their
// snapshot, with their new transactions, their new diff, and the people
// and projects they name.
func (p *puller) sync(ctx context.Context, revs []revision, read int64) error {
	var todo []*pending
	for _, rev := range revs {
		if d, ok := p.done[rev.PHID]; ok && d >= rev.Fields.DateModified {
			continue // met through another query, or a page before
		}
		snap, err := p.Snapshot(rev.PHID)
		if err != nil {
			return err
		}
		rs, err := loadRevState(p.st, rev.PHID)
		if err != nil {
			return err
		}
		if synced(rev, snap, rs) {
			continue // as last synced: a backdated window's overlap
		}
		p.done[rev.PHID] = rev.Fields.DateModified
		todo = append(todo, &pending{rev: rev, state: rs, read: read})
	}
	if len(todo) == 0 {
		return nil
	}
	// The oldest change first: the records' stamps follow the remote's.
	slices.SortStableFunc(todo, func(a, b *pending) int {
		if c := a.rev.Fields.DateModified - b.rev.Fields.DateModified; c != 0 {
			return int(c)
		}
		return a.rev.ID - b.rev.ID
	})
	// The per-revision reads go out a few at a time: a real server's
	// latency, not its work, is what a sync waits on.
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(fetchers)
	for _, t := range todo {
		eg.Go(func() error { return p.transactions(ectx, t) })
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	if err := p.diffs(ctx, todo); err != nil {
		return err
	}
	if err := p.people(ctx, todo); err != nil {
		return err
	}
	for _, t := range todo {
		if err := p.revision(t); err != nil {
			return err
		}
	}
	return nil
}

// transactions reads a revision's transactions, newest first, down to the
// page that holds the newest one seen before.
func (p *puller) transactions(ctx context.Context, t *pending) error {
	params := map[string]any{"objectIdentifier": t.rev.PHID, "limit": 100}
	for {
		var pg Page[xact]
		if err := p.g.c.Call(ctx, "transaction.search", params, &pg); err != nil {
			return err
		}
		t.xacts = append(t.xacts, pg.Data...)
		if pg.Cursor.After == nil || *pg.Cursor.After == "" || len(pg.Data) == 0 ||
			slices.ContainsFunc(pg.Data, func(x xact) bool { return x.ID <= t.state.Xact }) {
			break
		}
		params["after"] = *pg.Cursor.After
	}
	slices.Reverse(t.xacts)
	return nil
}

// diffs fetches the diffs that changed, with their commit messages, in one
// search per hundred, and each one's raw patch.
func (p *puller) diffs(ctx context.Context, todo []*pending) error {
	want := map[string]*pending{}
	var phids []string
	for _, t := range todo {
		if d := t.rev.Fields.DiffPHID; d != "" && d != t.state.Diff {
			want[d] = t
			phids = append(phids, d)
		}
	}
	for chunk := range slices.Chunk(phids, 100) {
		err := Search(ctx, p.g.c, "differential.diff.search", map[string]any{
			"constraints": map[string]any{"phids": chunk}, "attachments": map[string]any{"commits": true},
		}, func(d diff) error {
			if t := want[d.PHID]; t != nil {
				t.diff = &d
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(fetchers)
	for _, t := range todo {
		if t.diff != nil {
			eg.Go(func() error {
				return p.g.c.Call(ectx, "differential.getrawdiff", map[string]any{"diffID": t.diff.ID}, &t.patch)
			})
		}
	}
	return eg.Wait()
}

// fetchers is how many per-revision reads a pull has out at once.
const fetchers = 4

// people makes records of the users and projects the revisions and their
// transactions name that have none yet, and learns everyone's name.
func (p *puller) people(ctx context.Context, todo []*pending) error {
	var users, projects, repos []string
	need := func(phid string) {
		if phid == "" || p.names[phid] != "" {
			return
		}
		if snap, err := p.Snapshot(phid); err == nil && snap != nil {
			p.names[phid] = nameOf(snap)
			return
		}
		p.names[phid] = phid // until found
		switch {
		case strings.HasPrefix(phid, "PHID-USER-"):
			users = append(users, phid)
		case strings.HasPrefix(phid, "PHID-PROJ-"):
			projects = append(projects, phid)
		case strings.HasPrefix(phid, "PHID-REPO-"):
			repos = append(repos, phid)
		}
	}
	for _, t := range todo {
		f, a := t.rev.Fields, t.rev.Attachments
		need(f.AuthorPHID)
		if f.RepositoryPHID != nil {
			need(*f.RepositoryPHID)
		}
		for _, r := range a.Reviewers.Reviewers {
			need(r.ReviewerPHID)
		}
		for _, s := range a.Subscribers.SubscriberPHIDs {
			need(s)
		}
		for _, pr := range a.Projects.ProjectPHIDs {
			need(pr)
		}
		for _, x := range t.xacts {
			need(x.AuthorPHID)
		}
	}
	for chunk := range slices.Chunk(users, 100) {
		err := Search(ctx, p.g.c, "user.search", map[string]any{"constraints": map[string]any{"phids": chunk}}, func(u user) error {
			return p.person(UserType, u.PHID, map[string]string{"username": u.Fields.Username, "realname": u.Fields.RealName}, u.Fields.DateModified)
		})
		if err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(projects, 100) {
		err := Search(ctx, p.g.c, "project.search", map[string]any{"constraints": map[string]any{"phids": chunk}}, func(pr project) error {
			return p.person(ProjectType, pr.PHID, map[string]string{"name": pr.Fields.Name, "slug": pr.Fields.Slug}, pr.Fields.DateModified)
		})
		if err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(repos, 100) {
		err := Search(ctx, p.g.c, "diffusion.repository.search", map[string]any{"constraints": map[string]any{"phids": chunk}}, func(r repository) error {
			return p.person(RepositoryType, r.PHID, map[string]string{"name": r.Fields.Name, "callsign": r.Fields.Callsign}, r.Fields.DateModified)
		})
		if definite(err) {
			err = nil // a repository the token may not see, or an old server: it stays a PHID
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// nameOf is how records name a user (username) or project (#slug).
func nameOf(props map[string]string) string {
	if u := props["username"]; u != "" {
		return u
	}
	if s := props["slug"]; s != "" {
		return "#" + s
	}
	return props["name"]
}

func (p *puller) name(phid string) string {
	if n := p.names[phid]; n != "" {
		return n
	}
	return phid
}

// revision emits a revision's new transactions and comments, then the
// revision itself (last: its snapshot, which says it is synced, is
// written only once everything before it is integrated).
func (p *puller) revision(t *pending) error {
	_, marker := markers.Split(t.rev.Fields.Summary)
	ref, err := p.Ref(t.rev.PHID, RevisionType, marker)
	if err != nil {
		return err
	}
	rev := ref.Record
	state := t.state
	state.Read = t.read
	for _, x := range t.xacts {
		state.Xact = max(state.Xact, x.ID)
		if err := p.xact(x, t.state.Xact, rev.String()); err != nil {
			return err
		}
	}
	snap, err := p.Snapshot(t.rev.PHID)
	if err != nil {
		return err
	}
	props := p.revisionProps(t.rev, snap)
	if t.diff != nil {
		t.setDiff(props)
		state.Diff = t.rev.Fields.DiffPHID
	}
	js, err := json.Marshal(state)
	if err != nil {
		return err
	}
	writeState := func(w *foreign.Writer) error { return w.SetCursor(revCursor(t.rev.PHID), string(js)) }
	if snap != nil && maps.Equal(snap, props) {
		return p.emit(foreign.Change{Pos: p.Next(), Record: writeState})
	}
	return p.Object(RevisionType, t.rev.PHID, props, marker, time.Unix(t.rev.Fields.DateModified, 0), writeState, p.emit)
}

// MaxPatch is the largest raw diff a revision record keeps: a bigger one
// would make changesets too big to carry (changeset.MaxEncodedSize), and
// is left on Phabricator (patch-omitted says how big it is).
const MaxPatch = 1 << 20

// setDiff sets the properties of the diff fetched.
func (t *pending) setDiff(props map[string]string) {
	props["diff"] = strconv.Itoa(t.diff.ID)
	props["commit"] = ""
	if c := t.diff.Attachments.Commits.Commits; len(c) > 0 {
		props["commit"] = c[0].Message
	}
	props["patch"], props["patch-omitted"] = t.patch, ""
	if len(t.patch) > MaxPatch {
		props["patch"], props["patch-omitted"] = "", fmt.Sprintf("%d bytes, more than the %d kept: see the uri", len(t.patch), MaxPatch)
	}
}

// revisionProps is a revision's record properties; the diff's come from
// the snapshot (the caller sets them when the diff changed).
func (p *puller) revisionProps(rev revision, snap map[string]string) map[string]string {
	f, a := rev.Fields, rev.Attachments
	summary, _ := markers.Split(f.Summary)
	var reviewers, subscribers, projects []string
	for _, r := range a.Reviewers.Reviewers {
		n := p.name(r.ReviewerPHID)
		if r.IsBlocking {
			n += "!"
		}
		if r.Status != "" && r.Status != "added" {
			n += ":" + r.Status
		}
		reviewers = append(reviewers, n)
	}
	for _, s := range a.Subscribers.SubscriberPHIDs {
		subscribers = append(subscribers, p.name(s))
	}
	for _, pr := range a.Projects.ProjectPHIDs {
		projects = append(projects, p.name(pr))
	}
	repo := ""
	if f.RepositoryPHID != nil && *f.RepositoryPHID != "" {
		repo = p.name(*f.RepositoryPHID)
	}
	return map[string]string{
		"id":            "D" + strconv.Itoa(rev.ID),
		"title":         f.Title,
		"summary":       summary,
		"testplan":      f.TestPlan,
		"status":        f.Status.Value,
		"author":        p.name(f.AuthorPHID),
		"reviewers":     joinSet(reviewers),
		"subscribers":   joinSet(subscribers),
		"projects":      joinSet(projects),
		"repository":    repo,
		"diff":          snap["diff"],
		"commit":        snap["commit"],
		"patch":         snap["patch"],
		"patch-omitted": snap["patch-omitted"],
		"uri":           p.g.base + "D" + strconv.Itoa(rev.ID),
		"created":       stamp(f.DateCreated),
		"updated":       stamp(f.DateModified),
	}
}

// xact emits one transaction: a comment record when it carries a comment
// (an edited one updates its record), else a transaction record. Those at
// or before seen were synced already: only comments, which can be edited,
// are looked at again. Our own pushes' transactions are passed over.
func (p *puller) xact(x xact, seen int, rev string) error {
	kind := ""
	if x.Type != nil {
		kind = *x.Type
	}
	if len(x.Comments) > 0 {
		props, marker := p.commentProps(x, rev)
		return p.Object(CommentType, x.PHID, props, marker, time.Unix(max(x.Comments[0].DateModified, x.DateModified), 0), nil, p.emit)
	}
	if x.ID <= seen {
		return nil
	}
	op, echo, err := p.st.Echo(x.PHID)
	if err != nil {
		return err
	}
	if echo {
		return p.emit(foreign.Change{Pos: p.Next(), Echo: op, Version: x.DateCreated})
	}
	var detail bytes.Buffer
	if len(x.Fields) > 0 {
		if err := json.Compact(&detail, x.Fields); err != nil {
			return fmt.Errorf("phabricator: transaction %s: its fields are not JSON: %w", x.PHID, err)
		}
	}
	return p.Object(TransactionType, x.PHID, map[string]string{
		"revision": rev,
		"kind":     kind,
		"author":   p.name(x.AuthorPHID),
		"created":  stamp(x.DateCreated),
		"detail":   detail.String(),
	}, uuid.Nil, time.Unix(x.DateCreated, 0), nil, p.emit)
}

// commentProps is a comment transaction's record properties, and the
// record its marker names.
func (p *puller) commentProps(x xact, rev string) (map[string]string, uuid.UUID) {
	c := x.Comments[0]
	body, marker := markers.Split(c.Content.Raw)
	if c.Removed {
		body = ""
	}
	props := map[string]string{
		"revision": rev,
		"body":     body,
		"author":   p.name(x.AuthorPHID),
		"created":  stamp(x.DateCreated),
		"updated":  stamp(max(c.DateModified, x.DateModified)),
	}
	if x.Type != nil && *x.Type != "comment" {
		props["action"] = *x.Type
	}
	return props, marker
}

func joinSet(v []string) string {
	v = slices.Clone(v)
	slices.Sort(v)
	return strings.Join(slices.Compact(v), ", ")
}
