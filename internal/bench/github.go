package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/foreigntest"
	"github.com/prophet-sync/prophet/foreign/github"
	"github.com/prophet-sync/prophet/foreign/github/githubfake"
)

// GitHubReport is bench foreign github's result.
type GitHubReport struct {
	Benchmark  string `json:"benchmark"`
	Issues     int    `json:"issues"`
	Comments   int    `json:"comments"`
	GOMAXPROCS int    `json:"gomaxprocs"`

	PullSeconds     float64 `json:"pull_seconds"`
	PullItemsPerSec float64 `json:"pull_items_per_s"`
	PullRequests    int64   `json:"pull_requests"`
	PullReqPerItem  float64 `json:"pull_requests_per_item"`
	Changesets      int     `json:"changesets_integrated"`

	NoopSeconds   float64 `json:"noop_pull_seconds"`
	NoopRequests  int64   `json:"noop_pull_requests"`
	NoopRateLimit int     `json:"noop_pull_rate_limit_used"` // must be 0: 304s are free

	Events          int     `json:"webhook_events"`
	EventsSeconds   float64 `json:"webhook_seconds"`
	EventsPerSec    float64 `json:"webhook_events_per_s"`
	EventsCompleted int     `json:"webhook_ops_completed"`
}

func (r *GitHubReport) print(w io.Writer) error {
	_, err := fmt.Fprintf(w, `fake GitHub (in this process, on loopback), %d issues with %d comments; GOMAXPROCS %d

  pull of %d issues and %d comments  %8.2f s   %8.0f items/s   %6d requests   %6.3f requests/item   %d changesets
  no-op incremental pull              %8.3f s   %d requests (conditional), rate limit used: %d
  webhook ingestion                   %8.2f s   %8.1f events/s  (%d issue edits, each signed, delivered, and run as a sync operation; %d completed)
`, r.Issues, r.Comments, r.GOMAXPROCS,
		r.Issues, r.Comments, r.PullSeconds, r.PullItemsPerSec, r.PullRequests, r.PullReqPerItem, r.Changesets,
		r.NoopSeconds, r.NoopRequests, r.NoopRateLimit,
		r.EventsSeconds, r.EventsPerSec, r.Events, r.EventsCompleted)
	return err
}

func runForeignGitHub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		issues, comments, events int
		dir                      string
		asJSON                   bool
	)
	fs := flag.NewFlagSet("bench foreign github", flag.ContinueOnError)
	fs.IntVar(&issues, "issues", 1000, "issues in the fake repository")
	fs.IntVar(&comments, "comments", 5000, "comments, spread over the issues")
	fs.IntVar(&events, "events", 1000, "issue edits delivered as webhooks")
	fs.StringVar(&dir, "dir", os.TempDir(), "directory under which to make the temporary benchmark directory")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object instead of a table")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if issues < 1 || comments < 0 || events < 1 {
		return usageErrorf("--issues and --events must be at least 1")
	}
	rep, err := benchGitHub(ctx, issues, comments, events, dir, stderr)
	if err != nil {
		return err
	}
	return write(stdout, asJSON, rep)
}

func benchGitHub(ctx context.Context, issues, comments, events int, base string, stderr io.Writer) (*GitHubReport, error) {
	p := &progress{w: stderr, start: time.Now()}
	const token, owner, repo, secret = "bench-token", "acme", "bench", "bench-secret"
	hooks := &github.Webhooks{Secret: []byte(secret)}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()
	// Each reading of the fake's clock is a second later, so that every
	// change has an updated_at of its own (GitHub's are to the second, and
	// two versions in one second are one to the seed's rules).
	var clockMu sync.Mutex
	clock := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	tick := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}
	fake := githubfake.New(githubfake.Options{Clock: tick, WebhookURL: hookSrv.URL + github.WebhookPath, WebhookSecret: secret})
	defer fake.Close()
	fake.AddToken(token, "bench-bot")
	fake.AddRepo(owner, repo)
	p.printf("making %d issues and %d comments in the fake (not measured)", issues, comments)
	for i := range issues {
		is, err := fake.CreateIssue(owner, repo, "someone", githubfake.Issue{Title: fmt.Sprintf("issue %d", i), Body: "the problem", Labels: []string{"bug"}})
		if err != nil {
			return nil, err
		}
		for j := range comments / issues {
			if _, err := fake.AddComment(owner, repo, is.Number, "someone", fmt.Sprintf("comment %d", j)); err != nil {
				return nil, err
			}
		}
	}
	for i := range comments % issues {
		if _, err := fake.AddComment(owner, repo, i+1, "someone", "one more"); err != nil {
			return nil, err
		}
	}
	rep := &GitHubReport{Benchmark: "foreign github", Issues: issues, Comments: comments, GOMAXPROCS: runtime.GOMAXPROCS(0)}

	local, done, err := gatewayReplica(ctx, base, "github")
	if err != nil {
		return nil, err
	}
	defer done()
	addr := "github:" + owner + "/" + repo + "?api=" + fake.URL()
	counter := &foreigntest.Counter{}
	gw, err := github.New(github.Config{Address: addr, Token: token, Transport: counter})
	if err != nil {
		return nil, err
	}
	fr, err := foreign.Open(local, gw, nil)
	if err != nil {
		return nil, err
	}

	p.printf("pull")
	t0, n0 := time.Now(), counter.N()
	prep, err := fr.Pull(ctx, nil)
	if err != nil {
		return nil, err
	}
	rep.PullSeconds = time.Since(t0).Seconds()
	rep.PullRequests = counter.N() - n0
	rep.PullItemsPerSec = float64(issues+comments) / rep.PullSeconds
	rep.PullReqPerItem = float64(rep.PullRequests) / float64(issues+comments)
	rep.Changesets = prep.Integrated

	p.printf("no-op pull")
	_, before, _, _ := fake.RateLimit(token)
	t0, n0 = time.Now(), counter.N()
	if nrep, err := fr.Pull(ctx, nil); err != nil || nrep.Integrated != 0 {
		return nil, fmt.Errorf("bench: no-op pull integrated %d (%v)", nrep.Integrated, err)
	}
	rep.NoopSeconds = time.Since(t0).Seconds()
	rep.NoopRequests = counter.N() - n0
	_, after, _, _ := fake.RateLimit(token)
	rep.NoopRateLimit = before - after
	fr.Close()

	p.printf("webhook ingestion of %d edits", events)
	hooks.Local = local
	hooks.Open = func(a string) (*foreign.Foreign, error) {
		g, err := github.New(github.Config{Address: a, Token: token})
		if err != nil {
			return nil, err
		}
		return foreign.Open(local, g, nil)
	}
	opsBefore, err := func() (uint64, error) {
		f, err := foreign.Open(local, gw, nil)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		ops, err := f.State().Ops(nil)
		if err != nil || len(ops) == 0 {
			return 0, err
		}
		return ops[len(ops)-1].ID, nil
	}()
	if err != nil {
		return nil, err
	}
	old := map[string]bool{}
	for _, d := range fake.Pending() {
		old[d.ID] = true
	}
	for i := range events {
		n := i%issues + 1
		if err := fake.EditIssue(owner, repo, n, func(is *githubfake.Issue) { is.Title = fmt.Sprintf("edited %d", i) }); err != nil {
			return nil, err
		}
	}
	var fresh []string
	for _, d := range fake.Pending() {
		if !old[d.ID] {
			fresh = append(fresh, d.ID)
		}
	}
	rep.Events = len(fresh)
	t0 = time.Now()
	if err := fake.DeliverInOrder(fresh); err != nil {
		return nil, err
	}
	rep.EventsSeconds = time.Since(t0).Seconds()
	rep.EventsPerSec = float64(rep.Events) / rep.EventsSeconds
	hooks.Close()
	fr, err = foreign.Open(local, gw, nil)
	if err != nil {
		return nil, err
	}
	defer fr.Close()
	ops, err := fr.State().Ops(nil)
	if err != nil {
		return nil, err
	}
	states := map[string]int{}
	for _, op := range ops {
		if op.ID > opsBefore && op.Dir == foreign.Inbound {
			states[op.State.String()]++
			if op.State == foreign.Completed {
				rep.EventsCompleted++
			}
		}
	}
	if rep.EventsCompleted != rep.Events {
		return nil, fmt.Errorf("bench: %d of %d webhook events completed: %v", rep.EventsCompleted, rep.Events, states)
	}
	p.printf("done")
	return rep, nil
}
