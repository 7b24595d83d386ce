// Package phabricator is the gateway to the Differential revisions of a
// Phabricator (or Phorge) install, through Conduit.
//
// Address: phab:https://HOST[/PATH][?responsible=NAME[,NAME][&responsible=...]].
// The API token comes from PROPHET_PHABRICATOR_TOKEN (Settings > Conduit
// API Tokens); it is never printed or stored.
//
// Records (their UUIDs are name-based from the install and the PHID, so
// every gateway replica agrees on them):
//   - "revision": id (D123), title, summary, testplan, status, author,
//     reviewers, subscribers, projects, repository, diff (the current
//     diff's ID), commit (its commit message), patch (its raw diff), uri,
//     created, updated;
//   - "comment": revision (its record's UUID), body, action (the
//     transaction's type when a comment came with an action: "accept"),
//     author, created, updated; an edited comment updates its record
//     (one among its revision's newest hundred transactions, read when the
//     revision next changes: Conduit tells no edit times otherwise, and
//     Phorge does not move a revision's dateModified for one);
//   - "transaction": the revision's other history: revision, kind, author,
//     created, detail (the transaction's fields, as JSON);
//   - "user" (username, realname), "project" (name, slug) and
//     "repository" (name, callsign), for the people, the projects and
//     review groups, and the repositories revisions name.
//
// Sync follows a set of query constraints kept in the state handle, each
// with the window of dateModified it covers (first, last) and when it was
// last asked (the server's clock). The default is responsiblePHIDs: the
// token's user; each responsible= in an address adds one (usernames, or
// #slug for a project; a comma between names matches any of them), which
// every later pull goes on refreshing. A refresh asks, per query, for the revisions
// modified since min(last, asked - Window): backdated, so that a revision
// that showed up late, with an older dateModified, is still met. A
// revision is synced only when it is new or its dateModified moved, so a
// backdated window costs no duplicate; for one, the new diff is fetched
// when its diffPHID changed, and its transactions newest first, down to
// the page holding the last one seen. A revision matched by two queries is
// one record. Since grows a window into the past (prophet pull --since).
//
// Like GitHub's, a revision's fields have no history in Conduit: a pull
// compares what it lists with the gateway's snapshot (foreign.Snapshots).
//
// Push creates revisions (from a record's patch, through
// differential.createrawdiff), edits their title, summary, test plan and
// patch (a new diff), takes review actions (a status set here: accepted
// is accept, needs-revision reject, ...), and posts comments, all through
// differential.revision.edit. A new revision's summary, and a comment,
// end with a marker line naming the record, by which a retry after a lost
// answer, or another gateway replica, finds it; an edit first marks its op
// with the revision's newest transaction, so that a retry finds its
// earlier try's transactions past it. The transactions an edit made are
// kept as echoes, which a pull passes over.
package phabricator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/foreign"
)

// Record types.
const (
	RevisionType    = "revision"
	CommentType     = "comment"
	TransactionType = "transaction"
	UserType        = "user"
	ProjectType     = "project"
	RepositoryType  = "repository"
)

var (
	revisionWritable = []string{"summary", "testplan", "title"}
	revisionOutbound = append(slices.Clone(revisionWritable), "patch", "status") // a new patch is a new diff; a status, a review action
	commentOutbound  = []string{"body"}
	derived          = []string{"created", "updated", "uri"}
)

// Defaults.
const (
	// DefaultWindow is how far a refresh is backdated.
	DefaultWindow = 5 * time.Minute
	// DefaultSince is how far back a query's first sync reaches.
	DefaultSince = 30 * 24 * time.Hour
)

// Config configures a gateway.
type Config struct {
	Address string // phab:https://HOST[/PATH][?responsible=NAME...]
	Token   string
	// Transport carries the requests, under the retries (default
	// http.DefaultTransport).
	Transport http.RoundTripper
	// Window backdates every refresh (default DefaultWindow): a revision
	// that reaches the search later than this after its dateModified can
	// be missed.
	Window time.Duration
	// Since grows every query's window to reach this far into the past
	// (0: no growing; a new query reaches DefaultSince back, or Since).
	Since time.Duration
	// Clock is this machine's clock (default time.Now), used before the
	// server's is known.
	Clock func() time.Time
}

// TokenFromEnv reads PROPHET_PHABRICATOR_TOKEN.
func TokenFromEnv() string { return os.Getenv("PROPHET_PHABRICATOR_TOKEN") }

// Gateway is one Phabricator install.
type Gateway struct {
	c      *Client
	url    string     // canonical address: phab:https://host/path
	base   string     // the web root, with a trailing slash
	names  [][]string // the address's queries: responsible names
	window time.Duration
	since  time.Duration
	clock  func() time.Time

	mu     sync.Mutex
	first  map[*foreign.State]*refresh // Latest's refresh, for Changes
	vmu    sync.Mutex
	viewer *user // the token's user, once asked
}

// ParseAddress splits phab:URL[?responsible=...] into the canonical
// address, the web root and the responsible names.
func ParseAddress(addr string) (canonical, base string, queries [][]string, err error) {
	shown := foreign.RedactAddr(addr)
	rest, ok := strings.CutPrefix(addr, "phab:")
	if !ok {
		rest, ok = strings.CutPrefix(addr, "phabricator:")
	}
	if !ok {
		return "", "", nil, fmt.Errorf("phabricator: address %q does not start with phab: (write phab:https://HOST)", shown)
	}
	if base, query, ok := strings.Cut(rest, "?"); ok {
		// A project is #slug: typed as is, it would be a URL fragment.
		rest = base + "?" + strings.ReplaceAll(query, "#", "%23")
	}
	u, err := url.Parse(rest)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return "", "", nil, fmt.Errorf("phabricator: address %q: want phab:https://HOST[/PATH]", shown)
	}
	if u.User != nil {
		return "", "", nil, fmt.Errorf("phabricator: address %q carries credentials: put the API token in PROPHET_PHABRICATOR_TOKEN instead", shown)
	}
	q := u.Query()
	for k := range q {
		if k != "responsible" {
			return "", "", nil, fmt.Errorf("phabricator: address %q: unknown parameter %q (only responsible=USER or responsible=#PROJECT)", shown, k)
		}
	}
	for _, v := range q["responsible"] {
		var names []string
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return "", "", nil, fmt.Errorf("phabricator: address %q: responsible= wants a username or #project", shown)
		}
		slices.Sort(names)
		queries = append(queries, slices.Compact(names))
	}
	path := strings.TrimRight(strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/api"), "/")
	root := u.Scheme + "://" + strings.ToLower(u.Host) + path
	return "phab:" + root, root + "/", queries, nil
}

// New makes a gateway.
func New(cfg Config) (*Gateway, error) {
	canonical, base, names, err := ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	if cfg.Token == "" {
		return nil, errors.New("phabricator: no API token: set PROPHET_PHABRICATOR_TOKEN to one (Settings > Conduit API Tokens)")
	}
	g := &Gateway{c: NewClient(base, cfg.Token, cfg.Transport), url: canonical, base: base, names: names,
		window: cfg.Window, since: cfg.Since, clock: cfg.Clock}
	if g.window <= 0 {
		g.window = DefaultWindow
	}
	if g.clock == nil {
		g.clock = time.Now
	}
	return g, nil
}

func (g *Gateway) Kind() string      { return "phabricator" }
func (g *Gateway) URL() string       { return g.url }
func (g *Gateway) Derived() []string { return derived }

// Client is the gateway's Conduit client.
func (g *Gateway) Client() *Client { return g.c }

// FromRemote: changesets made from this install, by any gateway replica,
// carry its address as their creator.
func (g *Gateway) FromRemote(cs *changeset.Changeset) bool { return cs.Creator == g.url }

// Owns: the changesets of this gateway replica's own origin for the
// install come from it; those of others are known by their creator.
func (g *Gateway) Owns(ctx context.Context, st *foreign.State, origin uuid.UUID, _ uint64) (bool, error) {
	own, err := foreign.SnapshotOrigin(st, g.url)
	return own == origin, err
}

// objectUUID is the record UUID of the object a PHID names.
func (g *Gateway) objectUUID(phid string) uuid.UUID { return foreign.NameUUID(g.url + "/" + phid) }

// markers are the lines a push appends to a summary or comment it writes.
var markers = foreign.NewMarker("[prophet-record: ", "]")

// whoami is the token's user, asked once.
func (g *Gateway) whoami(ctx context.Context) (*user, error) {
	g.vmu.Lock()
	defer g.vmu.Unlock()
	if g.viewer != nil {
		return g.viewer, nil
	}
	var me struct {
		PHID     string `json:"phid"`
		UserName string `json:"userName"`
		RealName string `json:"realName"`
	}
	if err := g.c.Call(ctx, "user.whoami", nil, &me); err != nil {
		return nil, err
	}
	g.viewer = &user{PHID: me.PHID}
	g.viewer.Fields.Username, g.viewer.Fields.RealName = me.UserName, me.RealName
	return g.viewer, nil
}

// stamp is an epoch as the records hold times.
func stamp(epoch int64) string {
	if epoch == 0 {
		return ""
	}
	return time.Unix(epoch, 0).UTC().Format(time.RFC3339)
}
