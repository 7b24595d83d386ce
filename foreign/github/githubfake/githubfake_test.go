package githubfake_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v84/github"

	"github.com/prophet-sync/prophet/foreign/github/githubfake"
	"github.com/prophet-sync/prophet/foreign/github/githubfake/openapicheck"
)

const (
	tok   = "ghp_test"
	owner = "octo"
	name  = "repo"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// setup starts a validating fake with one repository owned by the token's
// user and returns a go-github client for it.
func checker(t testing.TB) githubfake.Checker {
	t.Helper()
	c, err := openapicheck.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func setup(t *testing.T, opts githubfake.Options) (*githubfake.Server, *github.Client, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 500, time.UTC)}
	if opts.Clock == nil {
		opts.Clock = clk.Now
	}
	if opts.TB == nil {
		opts.TB = t
	}
	if opts.Checker == nil {
		opts.Checker = checker(t)
	}
	s := githubfake.New(opts)
	t.Cleanup(s.Close)
	s.AddToken(tok, owner)
	s.AddRepo(owner, name)
	return s, newClient(t, s, tok), clk
}

func newClient(t *testing.T, s *githubfake.Server, token string) *github.Client {
	t.Helper()
	c := github.NewClient(s.Client()).WithAuthToken(token)
	u, err := url.Parse(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

func TestIssuesAndComments(t *testing.T) {
	s, gh, clk := setup(t, githubfake.Options{})
	ctx := context.Background()

	me, _, err := gh.Users.Get(ctx, "")
	if err != nil || me.GetLogin() != owner {
		t.Fatalf("Users.Get = %v, %v", me, err)
	}
	repo, _, err := gh.Repositories.Get(ctx, owner, name)
	if err != nil || repo.GetFullName() != owner+"/"+name {
		t.Fatalf("Repositories.Get = %v, %v", repo, err)
	}

	is, resp, err := gh.Issues.Create(ctx, owner, name, &github.IssueRequest{
		Title:  github.Ptr("first"),
		Body:   github.Ptr("hello"),
		Labels: &[]string{"bug"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || is.GetNumber() != 1 || is.GetState() != "open" ||
		is.GetUser().GetLogin() != owner || len(is.Labels) != 1 || is.Labels[0].GetName() != "bug" {
		t.Fatalf("created %+v (status %d)", is, resp.StatusCode)
	}
	if got, want := is.GetCreatedAt().Time, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("created_at = %v, want %v", got, want)
	}

	clk.Advance(time.Minute)
	is, _, err = gh.Issues.Edit(ctx, owner, name, 1, &github.IssueRequest{State: github.Ptr("closed")})
	if err != nil {
		t.Fatal(err)
	}
	if is.GetState() != "closed" || is.ClosedAt == nil || is.GetStateReason() != "completed" ||
		!is.GetUpdatedAt().After(is.GetCreatedAt().Time) {
		t.Fatalf("edited %+v", is)
	}

	clk.Advance(time.Minute)
	cm, _, err := gh.Issues.CreateComment(ctx, owner, name, 1, &github.IssueComment{Body: github.Ptr("me too")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(cm.GetIssueURL(), "/repos/octo/repo/issues/1") || cm.GetUser().GetLogin() != owner {
		t.Fatalf("comment %+v", cm)
	}
	clk.Advance(time.Minute)
	cm, _, err = gh.Issues.EditComment(ctx, owner, name, cm.GetID(), &github.IssueComment{Body: github.Ptr("me three")})
	if err != nil || cm.GetBody() != "me three" || !cm.GetUpdatedAt().After(cm.GetCreatedAt().Time) {
		t.Fatalf("EditComment = %+v, %v", cm, err)
	}
	got, _, err := gh.Issues.GetComment(ctx, owner, name, cm.GetID())
	if err != nil || got.GetBody() != "me three" {
		t.Fatalf("GetComment = %+v, %v", got, err)
	}
	list, _, err := gh.Issues.ListComments(ctx, owner, name, 1, nil)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListComments = %v, %v", list, err)
	}
	list, _, err = gh.Issues.ListComments(ctx, owner, name, 0, &github.IssueListCommentsOptions{
		Sort: github.Ptr("updated"), Direction: github.Ptr("desc"),
	})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListComments (repo) = %v, %v", list, err)
	}

	// A pull request shows up in the issue list with a pull_request key.
	if _, err := s.CreateIssue(owner, name, "someone", githubfake.Issue{Title: "a PR", PullRequest: true}); err != nil {
		t.Fatal(err)
	}
	all, _, err := gh.Issues.ListByRepo(ctx, owner, name, &github.IssueListByRepoOptions{State: "all"})
	if err != nil || len(all) != 2 {
		t.Fatalf("ListByRepo = %v, %v", all, err)
	}
	if !all[0].IsPullRequest() || all[1].IsPullRequest() || all[1].GetComments() != 1 {
		t.Errorf("list order or pull_request wrong: %+v", all)
	}
	open, _, err := gh.Issues.ListByRepo(ctx, owner, name, nil)
	if err != nil || len(open) != 1 || open[0].GetNumber() != 2 {
		t.Fatalf("ListByRepo(open) = %v, %v", open, err)
	}

	// An edit made on GitHub bumps updated_at and shows up with since.
	clk.Advance(time.Hour)
	mark := clk.Now().Truncate(time.Second)
	if err := s.EditIssue(owner, name, 1, func(is *githubfake.Issue) { is.Title = "renamed" }); err != nil {
		t.Fatal(err)
	}
	since, _, err := gh.Issues.ListByRepo(ctx, owner, name, &github.IssueListByRepoOptions{State: "all", Since: mark})
	if err != nil || len(since) != 1 || since[0].GetTitle() != "renamed" {
		t.Fatalf("ListByRepo(since) = %v, %v", since, err)
	}
	rl, _, err := gh.RateLimit.Get(ctx)
	if err != nil || rl.GetCore().Limit != 5000 {
		t.Fatalf("RateLimit.Get = %v, %v", rl, err)
	}
	if errs := s.ValidationErrors(); len(errs) > 0 {
		t.Errorf("validation errors: %v", errs)
	}
}

func TestPagination(t *testing.T) {
	s, gh, clk := setup(t, githubfake.Options{})
	ctx := context.Background()
	const n = 250
	for i := range n {
		if _, err := s.CreateIssue(owner, name, owner, githubfake.Issue{Title: fmt.Sprint("issue ", i)}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	opt := &github.IssueListByRepoOptions{Direction: "asc", ListOptions: github.ListOptions{PerPage: 100}}
	var got []*github.Issue
	pages := 0
	for {
		list, resp, err := gh.Issues.ListByRepo(ctx, owner, name, opt)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, list...)
		if pages == 2 {
			link := resp.Header.Get("Link")
			base := s.URL() + "/repos/octo/repo/issues?direction=asc&page="
			want := fmt.Sprintf(`<%[1]s1&per_page=100>; rel="prev", <%[1]s3&per_page=100>; rel="next", `+
				`<%[1]s3&per_page=100>; rel="last", <%[1]s1&per_page=100>; rel="first"`, base)
			if link != want {
				t.Errorf("Link =\n %s\nwant\n %s", link, want)
			}
			if resp.PrevPage != 1 || resp.NextPage != 3 || resp.LastPage != 3 || resp.FirstPage != 1 {
				t.Errorf("parsed pages %+v", resp)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.ListOptions.Page = resp.NextPage
	}
	if pages != 3 || len(got) != n {
		t.Fatalf("got %d issues in %d pages", len(got), pages)
	}
	for i, is := range got {
		if is.GetNumber() != i+1 {
			t.Fatalf("item %d is #%d", i, is.GetNumber())
		}
	}
	// per_page is capped at 100.
	list, _, err := gh.Issues.ListByRepo(ctx, owner, name, &github.IssueListByRepoOptions{ListOptions: github.ListOptions{PerPage: 500}})
	if err != nil || len(list) != 100 {
		t.Fatalf("per_page=500 gave %d, %v", len(list), err)
	}
}

func TestETagNotModified(t *testing.T) {
	s, gh, _ := setup(t, githubfake.Options{})
	ctx := context.Background()
	if _, err := s.CreateIssue(owner, name, owner, githubfake.Issue{Title: "x"}); err != nil {
		t.Fatal(err)
	}
	_, resp, err := gh.Issues.Get(ctx, owner, name, 1)
	if err != nil {
		t.Fatal(err)
	}
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q", etag)
	}
	before := resp.Rate.Remaining

	req, err := gh.NewRequest(http.MethodGet, "repos/octo/repo/issues/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("If-None-Match", etag)
	resp, err = gh.Do(ctx, req, nil)
	if resp == nil || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: %v, %v", resp, err)
	}
	if resp.Rate.Remaining != before {
		t.Errorf("304 counted: remaining %d, was %d", resp.Rate.Remaining, before)
	}
	if _, rem, _, _ := s.RateLimit(tok); rem != before {
		t.Errorf("server remaining %d, want %d", rem, before)
	}

	// A change gives a new ETag and a full answer, which counts.
	if err := s.EditIssue(owner, name, 1, func(is *githubfake.Issue) { is.Body = "new" }); err != nil {
		t.Fatal(err)
	}
	req, _ = gh.NewRequest(http.MethodGet, "repos/octo/repo/issues/1", nil)
	req.Header.Set("If-None-Match", etag)
	var is github.Issue
	resp, err = gh.Do(ctx, req, &is)
	if err != nil || resp.StatusCode != http.StatusOK || is.GetBody() != "new" || resp.Header.Get("ETag") == etag {
		t.Fatalf("after edit: %v, %v", resp, err)
	}
	if resp.Rate.Remaining != before-1 {
		t.Errorf("remaining %d, want %d", resp.Rate.Remaining, before-1)
	}
}

func TestAuthAndNotFound(t *testing.T) {
	s, _, _ := setup(t, githubfake.Options{})
	ctx := context.Background()
	for _, token := range []string{"", "nope"} {
		c := newClient(t, s, token)
		if token == "" {
			c = github.NewClient(s.Client())
			c.BaseURL, _ = url.Parse(s.URL() + "/")
		}
		_, resp, err := c.Users.Get(ctx, "")
		var er *github.ErrorResponse
		if !errors.As(err, &er) || resp.StatusCode != http.StatusUnauthorized || er.Message != "Bad credentials" ||
			er.DocumentationURL != "https://docs.github.com/rest" {
			t.Errorf("token %q: %v", token, err)
		}
	}
	// "token X" works as well as "Bearer X".
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/user", nil)
	req.Header.Set("Authorization", "token "+tok)
	resp, err := s.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token auth: %v, %v", resp, err)
	}
	resp.Body.Close()

	gh := newClient(t, s, tok)
	_, resp2, err := gh.Repositories.Get(ctx, owner, "missing")
	var er *github.ErrorResponse
	if !errors.As(err, &er) || resp2.StatusCode != http.StatusNotFound || er.Message != "Not Found" {
		t.Errorf("missing repo: %v", err)
	}
	_, resp2, err = gh.Issues.Get(ctx, owner, name, 99)
	if resp2 == nil || resp2.StatusCode != http.StatusNotFound {
		t.Errorf("missing issue: %v", err)
	}
}

func TestPrimaryRateLimit(t *testing.T) {
	s, gh, clk := setup(t, githubfake.Options{RateLimit: 10})
	ctx := context.Background()
	_, resp, err := gh.Repositories.Get(ctx, owner, name)
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header
	if h.Get("X-RateLimit-Limit") != "10" || h.Get("X-RateLimit-Remaining") != "9" ||
		h.Get("X-RateLimit-Used") != "1" || h.Get("X-RateLimit-Resource") != "core" {
		t.Errorf("headers %v", h)
	}
	reset := clk.Now().Add(10 * time.Minute)
	if err := s.SetRateLimit(tok, 1, reset); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Repositories.Get(ctx, owner, name); err != nil {
		t.Fatal(err)
	}
	_, resp, err = gh.Repositories.Get(ctx, owner, name)
	var rle *github.RateLimitError
	if !errors.As(err, &rle) {
		t.Fatalf("want RateLimitError, got %v", err)
	}
	if resp.StatusCode != http.StatusForbidden || rle.Rate.Remaining != 0 ||
		!rle.Rate.Reset.Time.Equal(reset.Truncate(time.Second)) ||
		rle.Message != "API rate limit exceeded for user ID 1." {
		t.Errorf("rate limit error %+v", rle)
	}
	clk.Advance(11 * time.Minute)
	_, resp, err = gh.Repositories.Get(ctx, owner, name)
	if err != nil || resp.Rate.Remaining != 9 {
		t.Fatalf("after reset: %v, %v", resp, err)
	}
}

func TestSecondaryRateLimit(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusTooManyRequests} {
		s, _, _ := setup(t, githubfake.Options{})
		s.SecondaryLimitStatus(2, 90*time.Second, status)
		for range 2 {
			// A fresh client each time: go-github refuses to send while
			// it remembers a secondary limit.
			gh := newClient(t, s, tok)
			_, resp, err := gh.Repositories.Get(context.Background(), owner, name)
			var ae *github.AbuseRateLimitError
			if !errors.As(err, &ae) || resp.StatusCode != status {
				t.Fatalf("status %d: want AbuseRateLimitError, got %v", status, err)
			}
			if resp.Header.Get("Retry-After") != "90" || ae.RetryAfter == nil ||
				*ae.RetryAfter <= 85*time.Second || *ae.RetryAfter > 90*time.Second {
				t.Errorf("retry-after %q, parsed %v", resp.Header.Get("Retry-After"), ae.RetryAfter)
			}
		}
		if _, _, err := newClient(t, s, tok).Repositories.Get(context.Background(), owner, name); err != nil {
			t.Fatalf("after secondary limit: %v", err)
		}
		if s.Requests() != 3 {
			t.Errorf("requests %d, want 3", s.Requests())
		}
	}
}

func TestDroppedResponse(t *testing.T) {
	s, gh, _ := setup(t, githubfake.Options{})
	ctx := context.Background()
	s.DropNextResponse(func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/issues")
	})
	_, _, err := gh.Issues.Create(ctx, owner, name, &github.IssueRequest{Title: github.Ptr("lost")})
	if err == nil {
		t.Fatal("dropped response: no error")
	}
	is, err := s.Issue(owner, name, 1)
	if err != nil || is.Title != "lost" {
		t.Fatalf("state not applied: %+v, %v", is, err)
	}
	if s.Requests() != 1 || s.RequestsTo("POST /repos/octo/repo/issues") != 1 {
		t.Errorf("requests %d", s.Requests())
	}
	// The next request is answered normally.
	got, _, err := gh.Issues.Get(ctx, owner, name, 1)
	if err != nil || got.GetTitle() != "lost" {
		t.Fatalf("Get after drop: %v, %v", got, err)
	}
}

// hookReceiver records webhook requests.
type hookReceiver struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(b))
	h.reqs = append(h.reqs, r)
	h.body = append(h.body, b)
}

func TestWebhooks(t *testing.T) {
	const secret = "s3cret"
	recv := &hookReceiver{}
	hs := httptest.NewServer(recv)
	defer hs.Close()
	s, gh, _ := setup(t, githubfake.Options{WebhookURL: hs.URL, WebhookSecret: secret})
	ctx := context.Background()

	if _, _, err := gh.Issues.Create(ctx, owner, name, &github.IssueRequest{Title: github.Ptr("hook")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Issues.CreateComment(ctx, owner, name, 1, &github.IssueComment{Body: github.Ptr("c")}); err != nil {
		t.Fatal(err)
	}
	if err := s.EditIssue(owner, name, 1, func(is *githubfake.Issue) { is.State = "closed" }); err != nil {
		t.Fatal(err)
	}
	pending := s.Pending()
	if len(pending) != 3 || len(recv.reqs) != 0 {
		t.Fatalf("pending %d, received %d", len(pending), len(recv.reqs))
	}
	// Deliver out of order.
	if err := s.DeliverInOrder([]string{pending[2].ID, pending[0].ID, pending[1].ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.Redeliver(pending[0].ID); err != nil {
		t.Fatal(err)
	}
	if len(recv.reqs) != 4 || len(s.Pending()) != 0 {
		t.Fatalf("received %d", len(recv.reqs))
	}
	wantEvents := []struct{ event, action string }{
		{"issues", "closed"}, {"issues", "opened"}, {"issue_comment", "created"}, {"issues", "opened"},
	}
	for i, r := range recv.reqs {
		payload, err := github.ValidatePayload(r, []byte(secret))
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		ev, err := github.ParseWebHook(github.WebHookType(r), payload)
		if err != nil {
			t.Fatal(err)
		}
		var action string
		switch e := ev.(type) {
		case *github.IssuesEvent:
			action = e.GetAction()
			if e.GetIssue().GetNumber() != 1 || e.GetRepo().GetFullName() != "octo/repo" || e.GetSender().GetLogin() != owner {
				t.Errorf("issues event %+v", e)
			}
		case *github.IssueCommentEvent:
			action = e.GetAction()
			if e.GetComment().GetBody() != "c" || e.GetIssue().GetNumber() != 1 {
				t.Errorf("issue_comment event %+v", e)
			}
		}
		if github.WebHookType(r) != wantEvents[i].event || action != wantEvents[i].action {
			t.Errorf("delivery %d is %s/%s, want %v", i, github.WebHookType(r), action, wantEvents[i])
		}
	}
	if id := github.DeliveryID(recv.reqs[3]); id != pending[0].ID || id != github.DeliveryID(recv.reqs[1]) {
		t.Errorf("redelivery ID %s, want %s", id, pending[0].ID)
	}
	if !bytes.Equal(recv.body[3], recv.body[1]) {
		t.Error("redelivery body differs")
	}
	if _, err := github.ValidatePayload(recv.reqs[0], []byte("wrong")); err == nil {
		t.Error("wrong secret accepted")
	}
}

// recorder is a TB that keeps what it is told.
type recorder struct {
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestValidationCatchesBrokenResponse(t *testing.T) {
	rec := &recorder{}
	s, gh, _ := setup(t, githubfake.Options{TB: rec})
	if _, err := s.CreateIssue(owner, name, owner, githubfake.Issue{Title: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Issues.Get(context.Background(), owner, name, 1); err != nil {
		t.Fatal(err)
	}
	if len(rec.errs) != 0 || len(s.ValidationErrors()) != 0 {
		t.Fatalf("unexpected validation errors: %v", rec.errs)
	}
	// Break the number field: GitHub's schema says it is an integer.
	s.SetMutate(func(_ *http.Request, body []byte) []byte {
		return bytes.Replace(body, []byte(`"number":1`), []byte(`"number":"one"`), 1)
	})
	gh.Issues.Get(context.Background(), owner, name, 1)
	if len(rec.errs) != 1 || len(s.ValidationErrors()) != 1 || !strings.Contains(rec.errs[0], "number") {
		t.Fatalf("validation errors %v", rec.errs)
	}
	// A bad timestamp form (sub-second) is caught too.
	s.SetMutate(func(_ *http.Request, body []byte) []byte {
		return bytes.Replace(body, []byte(`:00Z"`), []byte(`:00.5Z"`), 1)
	})
	gh.Issues.Get(context.Background(), owner, name, 1)
	if len(rec.errs) != 2 {
		t.Fatalf("validation errors %v", rec.errs)
	}
	// A request the description forbids is caught.
	s.SetMutate(nil)
	req, _ := gh.NewRequest(http.MethodGet, "repos/octo/repo/issues?state=bogus", nil)
	gh.Do(context.Background(), req, nil)
	if len(rec.errs) != 3 || !strings.Contains(rec.errs[2], "state") {
		t.Fatalf("validation errors %v", rec.errs)
	}
}
