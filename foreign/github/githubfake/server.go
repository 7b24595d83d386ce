package githubfake

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// timeLayout is how GitHub writes timestamps: RFC 3339, UTC, whole seconds.
const timeLayout = "2006-01-02T15:04:05Z"

// Checker checks the fake's traffic: openapicheck.New gives GitHub's
// OpenAPI description's.
type Checker interface {
	// Request checks a request (its body read into body) and returns what
	// Response needs to check the answer.
	Request(r *http.Request, body []byte) (route any, err error)
	Response(route any, status int, header http.Header, body []byte) error
}

// TB is the part of testing.TB the fake reports validation failures to.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// Options configures a Server. The zero value is usable.
type Options struct {
	// Clock gives the current time; it defaults to time.Now. Times are kept
	// in UTC and truncated to whole seconds, as GitHub reports them.
	Clock func() time.Time

	// RateLimit is the primary rate limit per token and window; default 5000.
	RateLimit int
	// RateLimitWindow is how long a rate-limit window lasts; default an hour.
	RateLimitWindow time.Duration

	// HTMLBase is the prefix of html_url fields; default https://github.com.
	HTMLBase string

	// WebhookURL receives webhook deliveries when Deliver is called.
	WebhookURL string
	// WebhookSecret signs deliveries (X-Hub-Signature-256); none if empty.
	WebhookSecret string
	// WebhookClient posts deliveries; default http.DefaultClient.
	WebhookClient *http.Client

	// Checker, when set, checks every request and answer (package
	// openapicheck checks them against GitHub's OpenAPI description);
	// failures are kept for ValidationErrors.
	Checker Checker
	// TB, if set, gets an Errorf for every failure the Checker finds.
	TB TB
}

// User is an account known to the fake.
type User struct {
	Login string
	ID    int64
}

// Repo is a repository known to the fake.
type Repo struct {
	Owner       string
	Name        string
	ID          int64
	Description string
	Private     bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Issue is an issue or pull request as the fake stores it.
type Issue struct {
	ID          int64
	Number      int
	Title       string
	Body        string
	State       string // "open" or "closed"
	StateReason string // "", "completed", "not_planned", "reopened", ...
	Labels      []string
	Assignees   []string
	User        string // login of the author
	Locked      bool
	PullRequest bool // whether this is a pull request
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ClosedAt    time.Time // zero while open
	ClosedBy    string    // login; empty while open
}

// Comment is an issue comment as the fake stores it.
type Comment struct {
	ID          int64
	IssueNumber int
	Body        string
	User        string // login of the author
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// repo is the state of one repository.
type repo struct {
	Repo
	nextNumber int
	issues     map[int]*Issue
	comments   map[int64]*Comment
}

// token is a registered credential and its primary rate limit.
type token struct {
	login     string
	limit     int
	remaining int
	reset     time.Time
}

// secondary is a pending secondary-rate-limit injection.
type secondary struct {
	n          int
	retryAfter time.Duration
	status     int
}

// Server is a stateful fake of GitHub's REST API. It is safe for concurrent
// use.
type Server struct {
	opts  Options
	srv   *httptest.Server
	valid Checker

	mu          sync.Mutex
	users       map[string]*User
	nextUserID  int64
	repos       map[string]*repo // by lower-case "owner/name"
	nextRepoID  int64
	nextIssueID int64
	nextComment int64
	tokens      map[string]*token
	secondary   secondary
	drops       []func(*http.Request) bool
	requests    int
	perPath     map[string]int
	validation  []error
	deliveries  []*Delivery
	pending     []*Delivery

	// mutate, set by tests of this package, rewrites response bodies just
	// before they are validated and sent.
	mutate func(r *http.Request, body []byte) []byte
}

// New starts a fake GitHub on a loopback port. It panics if validation is
// requested and GitHub's description cannot be loaded.
func New(opts Options) *Server {
	s := NewUnstarted(opts)
	s.srv = httptest.NewServer(s)
	return s
}

// NewUnstarted returns a fake without a listener, for use as an
// http.Handler (*Server implements it). URL returns "", API URLs in answers
// are built from the request's Host, and those in webhook payloads are
// host-less.
func NewUnstarted(opts Options) *Server {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 5000
	}
	if opts.RateLimitWindow <= 0 {
		opts.RateLimitWindow = time.Hour
	}
	if opts.HTMLBase == "" {
		opts.HTMLBase = "https://github.com"
	}
	opts.HTMLBase = strings.TrimSuffix(opts.HTMLBase, "/")
	if opts.WebhookClient == nil {
		opts.WebhookClient = http.DefaultClient
	}
	s := &Server{
		opts:        opts,
		users:       map[string]*User{},
		repos:       map[string]*repo{},
		tokens:      map[string]*token{},
		perPath:     map[string]int{},
		nextUserID:  1,
		nextRepoID:  100,
		nextIssueID: 1000,
		nextComment: 50000,
	}
	s.valid = opts.Checker
	return s
}

// URL is the base URL of the fake's API, without a trailing slash.
func (s *Server) URL() string {
	if s.srv == nil {
		return ""
	}
	return s.srv.URL
}

// Client returns an HTTP client for the fake's listener (http.DefaultClient
// for an unstarted fake).
func (s *Server) Client() *http.Client {
	if s.srv == nil {
		return http.DefaultClient
	}
	return s.srv.Client()
}

// Close shuts the listener down.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// now is the fake's clock, in UTC and whole seconds.
func (s *Server) now() time.Time {
	return s.opts.Clock().UTC().Truncate(time.Second)
}

// userLocked returns the user with login, creating it if unknown.
func (s *Server) userLocked(login string) *User {
	key := strings.ToLower(login)
	if u, ok := s.users[key]; ok {
		return u
	}
	u := &User{Login: login, ID: s.nextUserID}
	s.nextUserID++
	s.users[key] = u
	return u
}

// AddToken registers tok as a credential of the user login, who is created
// if unknown. Its primary rate limit starts full.
func (s *Server) AddToken(tok, login string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(login)
	s.tokens[tok] = &token{
		login:     u.Login,
		limit:     s.opts.RateLimit,
		remaining: s.opts.RateLimit,
		reset:     s.now().Add(s.opts.RateLimitWindow),
	}
	return *u
}

// SetRateLimit sets the remaining primary rate limit of tok and the time at
// which it is refilled.
func (s *Server) SetRateLimit(tok string, remaining int, reset time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	if !ok {
		return fmt.Errorf("githubfake: unknown token")
	}
	t.remaining = remaining
	t.reset = reset.UTC().Truncate(time.Second)
	return nil
}

// RateLimit reports the limit, remaining count and reset time of tok.
func (s *Server) RateLimit(tok string) (limit, remaining int, reset time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	if !ok {
		return 0, 0, time.Time{}, false
	}
	s.refillLocked(t)
	return t.limit, t.remaining, t.reset, true
}

// refillLocked starts a new window when the old one has passed.
func (s *Server) refillLocked(t *token) {
	if now := s.now(); !now.Before(t.reset) {
		t.remaining = t.limit
		t.reset = now.Add(s.opts.RateLimitWindow)
	}
}

// AddRepo creates the repository owner/name (and its owner as a user).
func (s *Server) AddRepo(owner, name string) Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLocked(owner)
	key := strings.ToLower(owner + "/" + name)
	if r, ok := s.repos[key]; ok {
		return r.Repo
	}
	now := s.now()
	r := &repo{
		Repo: Repo{
			Owner: owner, Name: name, ID: s.nextRepoID,
			CreatedAt: now, UpdatedAt: now,
		},
		nextNumber: 1,
		issues:     map[int]*Issue{},
		comments:   map[int64]*Comment{},
	}
	s.nextRepoID++
	s.repos[key] = r
	return r.Repo
}

func (s *Server) repoLocked(owner, name string) (*repo, error) {
	r, ok := s.repos[strings.ToLower(owner+"/"+name)]
	if !ok {
		return nil, fmt.Errorf("githubfake: no repository %s/%s", owner, name)
	}
	return r, nil
}

// ErrNotFound is returned by the state hooks for an unknown issue or comment.
var ErrNotFound = errors.New("githubfake: not found")

// CreateIssue creates an issue (or, with in.PullRequest, a pull request) in
// owner/repo as the user author would on GitHub. Only Title, Body, Labels,
// Assignees and PullRequest of in are used. An "issues" webhook with action
// "opened" is queued for issues (GitHub sends "pull_request" events, which
// the fake does not, for pull requests).
func (s *Server) CreateIssue(owner, name, author string, in Issue) (Issue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repoLocked(owner, name)
	if err != nil {
		return Issue{}, err
	}
	return s.createIssueLocked(r, author, in), nil
}

func (s *Server) createIssueLocked(r *repo, author string, in Issue) Issue {
	now := s.now()
	is := &Issue{
		ID:          s.nextIssueID,
		Number:      r.nextNumber,
		Title:       in.Title,
		Body:        in.Body,
		State:       "open",
		Labels:      uniq(in.Labels),
		Assignees:   uniq(in.Assignees),
		User:        s.userLocked(author).Login,
		PullRequest: in.PullRequest,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	for _, a := range is.Assignees {
		s.userLocked(a)
	}
	s.nextIssueID++
	r.nextNumber++
	r.issues[is.Number] = is
	if !is.PullRequest {
		s.queueLocked("issues", "opened", r, is, nil, nil, author)
	}
	return cloneIssue(is)
}

// Issue returns a copy of issue number of owner/repo.
func (s *Server) Issue(owner, name string, number int) (Issue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repoLocked(owner, name)
	if err != nil {
		return Issue{}, err
	}
	is, ok := r.issues[number]
	if !ok {
		return Issue{}, ErrNotFound
	}
	return cloneIssue(is), nil
}

// Issues returns copies of every issue and pull request of owner/repo, by
// number.
func (s *Server) Issues(owner, name string) ([]Issue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repoLocked(owner, name)
	if err != nil {
		return nil, err
	}
	out := make([]Issue, 0, len(r.issues))
	for _, is := range r.issues {
		out = append(out, cloneIssue(is))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// EditIssue changes an issue as a person on GitHub would, as the issue's
// repository owner: edit is applied to the stored issue, updated_at is
// bumped, closed_at follows State, and the matching "issues" webhooks are
// queued (closed, reopened, edited with changes, labeled, unlabeled,
// assigned, unassigned).
func (s *Server) EditIssue(owner, name string, number int, edit func(*Issue)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repoLocked(owner, name)
	if err != nil {
		return err
	}
	is, ok := r.issues[number]
	if !ok {
		return ErrNotFound
	}
	next := cloneIssue(is)
	edit(&next)
	s.applyIssueLocked(r, is, next, r.Owner)
	return nil
}

// applyIssueLocked replaces the editable fields of is by those of next,
// bumping timestamps and queueing webhooks as GitHub does.
func (s *Server) applyIssueLocked(r *repo, is *Issue, next Issue, actor string) {
	before := cloneIssue(is)
	now := s.now()
	is.Title, is.Body, is.Locked = next.Title, next.Body, next.Locked
	is.Labels, is.Assignees = uniq(next.Labels), uniq(next.Assignees)
	for _, a := range is.Assignees {
		s.userLocked(a)
	}
	if next.State != "closed" {
		next.State = "open"
	}
	switch {
	case before.State == "open" && next.State == "closed":
		is.State, is.ClosedAt, is.ClosedBy = "closed", now, s.userLocked(actor).Login
		is.StateReason = next.StateReason
		if is.StateReason == "" || is.StateReason == "reopened" {
			is.StateReason = "completed"
		}
	case before.State == "closed" && next.State == "open":
		is.State, is.ClosedAt, is.ClosedBy, is.StateReason = "open", time.Time{}, "", "reopened"
	default:
		if next.StateReason != before.StateReason && next.StateReason != "" {
			is.StateReason = next.StateReason
		}
	}
	changed := !issueEqual(before, *is)
	if !changed {
		return
	}
	is.UpdatedAt = now
	if is.PullRequest {
		return
	}
	changes := map[string]any{}
	if before.Title != is.Title {
		changes["title"] = map[string]any{"from": before.Title}
	}
	if before.Body != is.Body {
		changes["body"] = map[string]any{"from": before.Body}
	}
	if len(changes) > 0 {
		s.queueLocked("issues", "edited", r, is, nil, changes, actor)
	}
	for _, l := range minus(is.Labels, before.Labels) {
		s.queueLocked("issues", "labeled", r, is, nil, map[string]any{"label": l}, actor)
	}
	for _, l := range minus(before.Labels, is.Labels) {
		s.queueLocked("issues", "unlabeled", r, is, nil, map[string]any{"label": l}, actor)
	}
	for _, a := range minus(is.Assignees, before.Assignees) {
		s.queueLocked("issues", "assigned", r, is, nil, map[string]any{"assignee": a}, actor)
	}
	for _, a := range minus(before.Assignees, is.Assignees) {
		s.queueLocked("issues", "unassigned", r, is, nil, map[string]any{"assignee": a}, actor)
	}
	if before.State != is.State {
		action := "closed"
		if is.State == "open" {
			action = "reopened"
		}
		s.queueLocked("issues", action, r, is, nil, nil, actor)
	}
}

// AddComment adds a comment to issue number of owner/repo as the user
// author, bumping the issue's updated_at and queueing an "issue_comment"
// webhook with action "created".
func (s *Server) AddComment(owner, name string, number int, author, body string) (Comment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repoLocked(owner, name)
	if err != nil {
		return Comment{}, err
	}
	is, ok := r.issues[number]
	if !ok {
		return Comment{}, ErrNotFound
	}
	return s.addCommentLocked(r, is, author, body), nil
}

func (s *Server) addCommentLocked(r *repo, is *Issue, author, body string) Comment {
	now := s.now()
	c := &Comment{
		ID:          s.nextComment,
		IssueNumber: is.Number,
		Body:        body,
		User:        s.userLocked(author).Login,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	s.nextComment++
	r.comments[c.ID] = c
	is.UpdatedAt = now
	s.queueLocked("issue_comment", "created", r, is, c, nil, author)
	return *c
}

// Comment returns a copy of the comment id of owner/repo.
func (s *Server) Comment(owner, name string, id int64) (Comment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repoLocked(owner, name)
	if err != nil {
		return Comment{}, err
	}
	c, ok := r.comments[id]
	if !ok {
		return Comment{}, ErrNotFound
	}
	return *c, nil
}

// EditComment changes a comment's body as a person on GitHub would: edit
// gets a copy whose Body it may change; updated_at is bumped and an
// "issue_comment" webhook with action "edited" is queued if the body
// changed.
func (s *Server) EditComment(owner, name string, id int64, edit func(*Comment)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repoLocked(owner, name)
	if err != nil {
		return err
	}
	c, ok := r.comments[id]
	if !ok {
		return ErrNotFound
	}
	next := *c
	edit(&next)
	s.editCommentLocked(r, c, next.Body, r.Owner)
	return nil
}

func (s *Server) editCommentLocked(r *repo, c *Comment, body, actor string) {
	if c.Body == body {
		return
	}
	from := c.Body
	c.Body = body
	c.UpdatedAt = s.now()
	is := r.issues[c.IssueNumber]
	s.queueLocked("issue_comment", "edited", r, is, c,
		map[string]any{"body": map[string]any{"from": from}}, actor)
}

// SecondaryLimit makes the next n requests fail with 403 and a secondary
// rate limit message, with a retry-after header of retryAfter (rounded up
// to seconds).
func (s *Server) SecondaryLimit(n int, retryAfter time.Duration) {
	s.SecondaryLimitStatus(n, retryAfter, http.StatusForbidden)
}

// SecondaryLimitStatus is SecondaryLimit with the status code chosen:
// http.StatusForbidden or http.StatusTooManyRequests.
func (s *Server) SecondaryLimitStatus(n int, retryAfter time.Duration, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary = secondary{n: n, retryAfter: retryAfter, status: status}
}

// DropNextResponse makes the next request for which match reports true be
// carried out, state changes and webhooks included, but answered by closing
// the connection: the client sees a transport error, as when a response is
// lost. Each call arms one drop. Note that net/http retries an idempotent
// request (GET, or with an Idempotency-Key) on a reused connection that
// closes, so a dropped GET may be retried transparently.
func (s *Server) DropNextResponse(match func(*http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops = append(s.drops, match)
}

// Requests is the number of requests the fake has received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// RequestsTo is the number of requests received for "METHOD /path", such as
// "GET /repos/o/r/issues" (path without query, without any /api/v3 prefix).
func (s *Server) RequestsTo(methodAndPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perPath[methodAndPath]
}

// ValidationErrors returns the OpenAPI validation failures seen so far.
func (s *Server) ValidationErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.validation...)
}

func (s *Server) recordInvalid(err error) {
	s.mu.Lock()
	s.validation = append(s.validation, err)
	s.mu.Unlock()
	if s.opts.TB != nil {
		s.opts.TB.Helper()
		s.opts.TB.Errorf("githubfake: %v", err)
	}
}

func cloneIssue(is *Issue) Issue {
	c := *is
	c.Labels = append([]string(nil), is.Labels...)
	c.Assignees = append([]string(nil), is.Assignees...)
	return c
}

func issueEqual(a, b Issue) bool {
	return a.Title == b.Title && a.Body == b.Body && a.State == b.State &&
		a.StateReason == b.StateReason && a.Locked == b.Locked &&
		strings.Join(a.Labels, "\x00") == strings.Join(b.Labels, "\x00") &&
		strings.Join(a.Assignees, "\x00") == strings.Join(b.Assignees, "\x00")
}

// uniq drops empty and repeated strings, keeping order.
func uniq(in []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, v := range in {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// minus returns the elements of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, v := range a {
		found := false
		for _, w := range b {
			if v == w {
				found = true
				break
			}
		}
		if !found {
			out = append(out, v)
		}
	}
	return out
}
