package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/foreigntest"
	"github.com/prophet-sync/prophet/foreign/github/githubfake"
	"github.com/prophet-sync/prophet/foreign/github/githubfake/openapicheck"
)

const (
	testToken = "ghp_test"
	testUser  = "gateway-bot"
	person    = "octocat" // edits made "on GitHub"
)

var repoN atomic.Int64

func checker(t testing.TB) githubfake.Checker {
	t.Helper()
	c, err := openapicheck.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeRemote is a repository of its own on a fake GitHub, whose requests
// and answers are checked against GitHub's OpenAPI description.
type fakeRemote struct {
	srv         *githubfake.Server
	owner, repo string
}

func newFakeRemote(t testing.TB) *fakeRemote {
	srv := githubfake.New(githubfake.Options{TB: t, Checker: checker(t)})
	t.Cleanup(srv.Close)
	srv.AddToken(testToken, testUser)
	r := &fakeRemote{srv: srv, owner: "acme", repo: fmt.Sprintf("repo%d", repoN.Add(1))}
	srv.AddRepo(r.owner, r.repo)
	return r
}

func (r *fakeRemote) address() string {
	return "github:" + r.owner + "/" + r.repo + "?api=" + r.srv.URL()
}

func (r *fakeRemote) Gateway(t testing.TB, rt http.RoundTripper) foreign.Gateway {
	g, err := New(Config{Address: r.address(), Token: testToken, Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (r *fakeRemote) Create(t testing.TB, title string) string {
	is, err := r.srv.CreateIssue(r.owner, r.repo, person, githubfake.Issue{Title: title})
	if err != nil {
		t.Fatal(err)
	}
	return "issue/" + strconv.Itoa(is.Number)
}

func (r *fakeRemote) number(t testing.TB, key string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(key, "issue/"))
	if err != nil {
		t.Fatalf("remote key %q", key)
	}
	return n
}

func (r *fakeRemote) SetTitle(t testing.TB, key, title string) {
	if err := r.srv.EditIssue(r.owner, r.repo, r.number(t, key), func(is *githubfake.Issue) { is.Title = title }); err != nil {
		t.Fatal(err)
	}
}

func (r *fakeRemote) Title(t testing.TB, key string) string {
	is, err := r.srv.Issue(r.owner, r.repo, r.number(t, key))
	if err != nil {
		t.Fatal(err)
	}
	return is.Title
}

func (r *fakeRemote) Count(t testing.TB) int {
	is, err := r.srv.Issues(r.owner, r.repo)
	if err != nil {
		t.Fatal(err)
	}
	return len(is)
}

func TestConformance(t *testing.T) {
	foreigntest.Run(t, foreigntest.Kit{
		NewRemote: func(t testing.TB) foreigntest.Remote { return newFakeRemote(t) },
		Type:      IssueType,
		Title:     "title",
		Writes: func(r *http.Request) bool {
			return r.Method == http.MethodPost || r.Method == http.MethodPatch
		},
		NoopRequests: 2, // the issues and the comments, both If-None-Match
	})
}

// A pull with nothing new costs no rate limit (two 304s); an exhausted
// primary limit stops the pull with the time it resets; a secondary limit
// is waited out.
func TestRateLimits(t *testing.T) {
	r := newFakeRemote(t)
	r.Create(t, "one")
	gw := r.Gateway(t, nil).(*Gateway)
	g := foreigntest.Open(t, t.TempDir()+"/g", gw)
	foreigntest.Pull(t, g.F, nil)
	_, before, _, _ := r.srv.RateLimit(testToken)
	foreigntest.Pull(t, g.F, nil)
	if _, after, _, _ := r.srv.RateLimit(testToken); after != before {
		t.Fatalf("a pull with nothing new used %d of the rate limit", before-after)
	}

	// Secondary: 403 with retry-after 1s, waited out.
	r.srv.SecondaryLimit(1, time.Second)
	r.Create(t, "two")
	if rep := foreigntest.Pull(t, g.F, nil); rep.Integrated == 0 {
		t.Fatal("the pull after a secondary limit brought nothing")
	}

	// Primary, exhausted for an hour: a clear error with the reset.
	reset := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := r.srv.SetRateLimit(testToken, 0, reset); err != nil {
		t.Fatal(err)
	}
	r.Create(t, "three")
	_, err := g.F.Pull(context.Background(), nil)
	var rl *foreign.RateLimitError
	if !errors.As(err, &rl) || !rl.Reset.Equal(reset) || !strings.Contains(err.Error(), "takes requests again at") {
		t.Fatalf("pull with the rate limit exhausted: %v", err)
	}
}

// Bad token, missing repository: errors that say what to do.
func TestErrors(t *testing.T) {
	r := newFakeRemote(t)
	bad, err := New(Config{Address: r.address(), Token: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	g := foreigntest.Open(t, t.TempDir()+"/g", bad)
	if _, err := g.F.Pull(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "refused the token") {
		t.Fatalf("bad token: %v", err)
	}
	missing, err := New(Config{Address: "github:acme/nosuch?api=" + r.srv.URL(), Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	g2 := foreigntest.Open(t, t.TempDir()+"/g2", missing)
	if _, err := g2.F.Pull(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "no repository acme/nosuch") {
		t.Fatalf("missing repository: %v", err)
	}
	if _, err := New(Config{Address: r.address()}); err == nil || !strings.Contains(err.Error(), "PROPHET_GITHUB_TOKEN") {
		t.Fatalf("no token: %v", err)
	}
}

// A gateway replica that never pulled pushes an edit of an issue another
// gateway pulled (it came by native sync): it edits that issue, and opens
// no second one.
func TestPushWithoutPullNoDuplicate(t *testing.T) {
	r := newFakeRemote(t)
	key := r.Create(t, "from github")
	g1 := foreigntest.Open(t, t.TempDir()+"/one", r.Gateway(t, nil))
	g2 := foreigntest.OpenIn(t, t.TempDir()+"/two", g1.Local.R.DatabaseUUID(), r.Gateway(t, nil))
	foreigntest.Pull(t, g1.F, nil)
	foreigntest.Sync(t, g1, g2)
	ref := foreigntest.RecordOf(t, g1.F, key)
	g2.Set(t, ref, map[string]string{"title": "edited on two"})
	if rep := foreigntest.Push(t, g2.F); rep.Completed != 1 {
		t.Fatalf("push: %+v", rep)
	}
	if n := r.Count(t); n != 1 {
		t.Fatalf("GitHub holds %d issues, want 1", n)
	}
	if got := r.Title(t, key); got != "edited on two" {
		t.Fatalf("GitHub's title %q", got)
	}
}

// A remote change made between the last pull and a push (labels set on
// GitHub) is not swallowed by the push's answer: the next pull brings it.
func TestPushKeepsRemoteChanges(t *testing.T) {
	r := newFakeRemote(t)
	key := r.Create(t, "one")
	g := foreigntest.Open(t, t.TempDir()+"/g", r.Gateway(t, nil))
	foreigntest.Pull(t, g.F, nil)
	ref := foreigntest.RecordOf(t, g.F, key)
	if err := r.srv.EditIssue(r.owner, r.repo, r.number(t, key), func(is *githubfake.Issue) { is.Labels = []string{"bug"} }); err != nil {
		t.Fatal(err)
	}
	g.Set(t, ref, map[string]string{"title": "retitled here"})
	foreigntest.Push(t, g.F)
	foreigntest.Pull(t, g.F, nil)
	if rec := g.Get(t, ref); rec.Get("labels") != "bug" || rec.Get("title") != "retitled here" {
		t.Fatalf("record after the pull: labels %q title %q", rec.Get("labels"), rec.Get("title"))
	}
	if rep := foreigntest.Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("a second pull integrated %d", rep.Integrated)
	}
	g.Verify(t)
}
