// Package github is the gateway to a GitHub repository's issues and issue
// comments, through GitHub's REST API (google/go-github).
//
// Address: github:OWNER/REPO, or github:OWNER/REPO?api=URL for GitHub
// Enterprise Server (URL: its API root) and tests. The token comes from
// PROPHET_GITHUB_TOKEN (or GITHUB_TOKEN); it is never printed or stored.
//
// Records: "issue" (title, body, state, labels, assignees, author, number,
// created, updated) and "comment" (issue: the issue record's UUID; body,
// author, created, updated). Pull requests are skipped.
//
// GitHub keeps no history of an issue's fields, only its current state, so
// a pull compares each issue it lists with the gateway's snapshot of it
// (the state handle's) and makes a changeset of the difference, with the
// snapshot's values as old values. Such changesets are this gateway
// replica's view: their origin is the gateway replica's own for this
// remote (a UUIDv5 of both), numbered by the gateway, and their creator is
// the remote's address, by which every gateway knows them as the remote's
// (their push skips them).
//
// Push creates and edits issues and comments. Each body it writes ends
// with a hidden marker, <!-- prophet-record: UUID -->, naming the record:
// a retry after a lost answer, or another gateway replica, finds the issue
// or comment by it instead of making a second one. What GitHub answers is
// kept as the snapshot, so the next pull sees nothing new in it.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	gh "github.com/google/go-github/v84/github"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/foreign"
)

// Record types.
const (
	IssueType   = "issue"
	CommentType = "comment"
)

var (
	issueWritable   = []string{"assignees", "body", "labels", "state", "title"}
	commentWritable = []string{"body"}
	derived         = []string{"created", "updated"}
)

// Config configures a gateway.
type Config struct {
	Address string // github:OWNER/REPO[?api=URL]
	Token   string
	// Transport carries the requests, under the rate-limit handling and
	// retries (default http.DefaultTransport).
	Transport http.RoundTripper
	// MaxWait bounds a wait for a rate limit to reset (default 15m);
	// beyond it the sync stops with the time the limit resets.
	MaxWait time.Duration
}

// TokenFromEnv reads PROPHET_GITHUB_TOKEN, else GITHUB_TOKEN.
func TokenFromEnv() string {
	if t := os.Getenv("PROPHET_GITHUB_TOKEN"); t != "" {
		return t
	}
	return os.Getenv("GITHUB_TOKEN")
}

// Gateway is one GitHub repository.
type Gateway struct {
	c           *gh.Client
	url         string // canonical address
	owner, repo string
	api         string
	limits      *limiter
	requests    atomic.Int64
	first       map[string]*firstPage // Latest's first pages, for Changes
}

const defaultAPI = "https://api.github.com/"

// ParseAddress splits github:OWNER/REPO[?api=URL].
func ParseAddress(addr string) (owner, repo, api, canonical string, err error) {
	shown := foreign.RedactAddr(addr)
	rest, ok := strings.CutPrefix(addr, "github:")
	if !ok {
		return "", "", "", "", fmt.Errorf("github: address %q does not start with github: (write github:OWNER/REPO)", shown)
	}
	path, query, _ := strings.Cut(rest, "?")
	owner, repo, ok = strings.Cut(path, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return "", "", "", "", fmt.Errorf("github: address %q: want github:OWNER/REPO", shown)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", "", "", "", fmt.Errorf("github: address %q: %v", shown, err)
	}
	for k := range q {
		if k != "api" {
			return "", "", "", "", fmt.Errorf("github: address %q: unknown parameter %q (only api)", shown, k)
		}
	}
	api = defaultAPI
	canonical = "github:" + strings.ToLower(owner) + "/" + strings.ToLower(repo)
	if a := q.Get("api"); a != "" {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return "", "", "", "", fmt.Errorf("github: address %q: api= wants the API's http(s) URL, without credentials", shown)
		}
		api = strings.TrimRight(a, "/") + "/"
		if api != defaultAPI {
			canonical += "?api=" + url.QueryEscape(strings.TrimRight(a, "/"))
		}
	}
	return owner, repo, api, canonical, nil
}

// New makes a gateway.
func New(cfg Config) (*Gateway, error) {
	owner, repo, api, canonical, err := ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	if cfg.Token == "" {
		return nil, errors.New("github: no token: set PROPHET_GITHUB_TOKEN (or GITHUB_TOKEN) to a token that can read and write the repository's issues")
	}
	g := &Gateway{url: canonical, owner: owner, repo: repo, api: api}
	next := cfg.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	maxWait := cfg.MaxWait
	if maxWait <= 0 {
		maxWait = 15 * time.Minute
	}
	g.limits = &limiter{next: &foreign.Retry{Next: next, Attempts: 4, PerTry: time.Minute, MaxWait: maxWait}, maxWait: maxWait, count: func() { g.requests.Add(1) }}
	c := gh.NewClient(&http.Client{Transport: g.limits}).WithAuthToken(cfg.Token)
	base, err := url.Parse(api)
	if err != nil {
		return nil, err
	}
	c.BaseURL = base
	// The limiter, below go-github, waits out rate limits; go-github's own
	// check would refuse without asking.
	c.DisableRateLimitCheck = true
	g.c = c
	return g, nil
}

func (g *Gateway) Kind() string      { return "github" }
func (g *Gateway) URL() string       { return g.url }
func (g *Gateway) Derived() []string { return derived }

// Requests is how many HTTP requests the gateway made.
func (g *Gateway) Requests() int64 { return g.requests.Load() }

// FromRemote: changesets made from this repository, by any gateway
// replica, carry its address as their creator.
func (g *Gateway) FromRemote(cs *changeset.Changeset) bool { return cs.Creator == g.url }

// Owns: the changesets of this gateway's own origin come from GitHub; those
// of other gateway replicas are known by their creator (FromRemote).
func (g *Gateway) Owns(ctx context.Context, st *foreign.State, origin uuid.UUID, _ uint64) (bool, error) {
	own, err := g.origin(st)
	return own == origin, err
}

// origin is this gateway replica's origin for changesets made from the
// repository.
func (g *Gateway) origin(st *foreign.State) (uuid.UUID, error) {
	return foreign.SnapshotOrigin(st, g.url)
}

func (g *Gateway) issueKey(n int) string      { return "issue/" + strconv.Itoa(n) }
func (g *Gateway) commentKey(id int64) string { return "comment/" + strconv.FormatInt(id, 10) }

// objectUUID is a remote object's name-based UUID, from its API URL.
func (g *Gateway) objectUUID(key string) uuid.UUID {
	return foreign.NameUUID(g.api + "repos/" + strings.ToLower(g.owner) + "/" + strings.ToLower(g.repo) + "/" + key)
}

// markers are the hidden lines a push appends to a body it writes.
var markers = foreign.NewMarker("<!-- prophet-record: ", " -->")

func marker(id uuid.UUID) string { return markers.Line(id) }

func splitMarker(s string) (string, uuid.UUID) { return markers.Split(s) }

func stamp(t gh.Timestamp) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func joinSet(v []string) string {
	v = slices.Clone(v)
	slices.Sort(v)
	return strings.Join(slices.Compact(v), ", ")
}

func splitSet(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ", ")
}

// issueProps is an issue's record properties, and the record its marker
// names (uuid.Nil: none).
func issueProps(is *gh.Issue) (map[string]string, uuid.UUID) {
	body, rec := splitMarker(is.GetBody())
	var labels, assignees []string
	for _, l := range is.Labels {
		labels = append(labels, l.GetName())
	}
	for _, a := range is.Assignees {
		assignees = append(assignees, a.GetLogin())
	}
	return map[string]string{
		"title":     is.GetTitle(),
		"body":      body,
		"state":     is.GetState(),
		"labels":    joinSet(labels),
		"assignees": joinSet(assignees),
		"author":    is.GetUser().GetLogin(),
		"number":    strconv.Itoa(is.GetNumber()),
		"created":   stamp(is.GetCreatedAt()),
		"updated":   stamp(is.GetUpdatedAt()),
	}, rec
}

// commentProps is a comment's record properties (without "issue").
func commentProps(c *gh.IssueComment) (map[string]string, uuid.UUID) {
	body, rec := splitMarker(c.GetBody())
	return map[string]string{
		"body":    body,
		"author":  c.GetUser().GetLogin(),
		"created": stamp(c.GetCreatedAt()),
		"updated": stamp(c.GetUpdatedAt()),
	}, rec
}

// issueNumber is the number at the end of a comment's issue_url.
func issueNumber(issueURL string) (int, error) {
	i := strings.LastIndex(issueURL, "/")
	n, err := strconv.Atoi(issueURL[i+1:])
	if err != nil {
		return 0, fmt.Errorf("github: a comment's issue_url %q does not end in an issue number", issueURL)
	}
	return n, nil
}

// explain turns go-github's errors into what to do.
func (g *Gateway) explain(err error) error {
	if err == nil {
		return nil
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		switch er.Response.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("github: GitHub refused the token (401 %s): set PROPHET_GITHUB_TOKEN to a valid token", er.Message)
		case http.StatusNotFound:
			if strings.Contains(er.Response.Request.URL.Path, "/repos/") && strings.Count(strings.Trim(er.Response.Request.URL.Path, "/"), "/") <= 3 {
				return fmt.Errorf("github: no repository %s/%s, or the token cannot see it (404)", g.owner, g.repo)
			}
		}
	}
	return err
}
