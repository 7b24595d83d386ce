package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/foreigntest"
	"github.com/prophet-sync/prophet/foreign/phabricator"
	"github.com/prophet-sync/prophet/foreign/phabricator/conduitfake"
	"github.com/prophet-sync/prophet/replica"
)

// PhabricatorReport is bench foreign phabricator's result.
type PhabricatorReport struct {
	Benchmark    string  `json:"benchmark"`
	Revisions    int     `json:"revisions"`
	Transactions int     `json:"transactions"` // in all, comments included
	Comments     int     `json:"comments"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	LatencyMS    float64 `json:"latency_ms"` // added to each request

	PullSeconds   float64        `json:"pull_seconds"`
	PullItemsPerS float64        `json:"pull_items_per_s"` // revisions and transactions
	PullRequests  int64          `json:"pull_requests"`
	PullReqPerRev float64        `json:"pull_requests_per_revision"`
	PullByMethod  map[string]int `json:"pull_requests_by_method"`
	Changesets    int            `json:"changesets_integrated"`
	RecordsByType map[string]int `json:"records_by_type"`
	NoopSeconds   float64        `json:"noop_refresh_seconds"`
	NoopRequests  int64          `json:"noop_refresh_requests"`
	// A refresh a minute after the last, with the backdating window (5
	// minutes) still over the revisions the sync changed: each is read
	// again (and passed over), a page per hundred.
	NoopSoonSeconds  float64 `json:"noop_refresh_within_window_seconds"`
	NoopSoonRequests int64   `json:"noop_refresh_within_window_requests"`
	Changed          int     `json:"changed_revisions"`
	RefreshSeconds   float64 `json:"refresh_seconds"`
	RefreshReqs      int64   `json:"refresh_requests"`
	RefreshReqPer    float64 `json:"refresh_requests_per_changed_revision"`
}

func (r *PhabricatorReport) print(w io.Writer) error {
	_, err := fmt.Fprintf(w, `fake Phabricator (conduitfake, in this process, on loopback, %.0f ms added to each request): %d revisions with %d transactions (%d comments); GOMAXPROCS %d

  initial sync               %8.2f s   %8.0f items/s   %6d requests   %6.2f requests/revision   %d changesets
                             requests by method: %v
                             records: %v
  no-op refresh, steady       %8.3f s   %d requests
  no-op refresh, 1 min on     %8.3f s   %d requests (the 5-minute backdating window still covers what the sync saw change)
  refresh, %3d changed       %8.3f s   %d requests   %.2f requests/changed revision
`, r.LatencyMS, r.Revisions, r.Transactions, r.Comments, r.GOMAXPROCS,
		r.PullSeconds, r.PullItemsPerS, r.PullRequests, r.PullReqPerRev, r.Changesets, r.PullByMethod, r.RecordsByType,
		r.NoopSeconds, r.NoopRequests, r.NoopSoonSeconds, r.NoopSoonRequests,
		r.Changed, r.RefreshSeconds, r.RefreshReqs, r.RefreshReqPer)
	return err
}

func runForeignPhabricator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		revisions, xacts, changed int
		dir                       string
		asJSON                    bool
		latency                   time.Duration
	)
	fs := flag.NewFlagSet("bench foreign phabricator", flag.ContinueOnError)
	fs.IntVar(&revisions, "revisions", 1000, "revisions in the fake, all the token's user's to review")
	fs.IntVar(&xacts, "transactions", 20, "transactions per revision (half of them comments)")
	fs.IntVar(&changed, "changed", 50, "revisions commented on before the last refresh")
	fs.DurationVar(&latency, "latency", 0, "delay each request this much, as a real server's round trip would (`10ms`)")
	fs.StringVar(&dir, "dir", os.TempDir(), "directory under which to make the temporary benchmark directory")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object instead of a table")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if revisions < 1 || xacts < 3 || changed < 1 || changed > revisions {
		return usageErrorf("--revisions must be at least 1, --transactions at least 3, --changed between 1 and --revisions")
	}
	rep, err := benchPhabricator(ctx, revisions, xacts, changed, latency, dir, stderr)
	if err != nil {
		return err
	}
	return write(stdout, asJSON, rep)
}

func benchPhabricator(ctx context.Context, revisions, perRev, changed int, latency time.Duration, base string, stderr io.Writer) (*PhabricatorReport, error) {
	p := &progress{w: stderr, start: time.Now()}
	clock := conduitfake.NewManualClock(time.Now().Add(-7 * 24 * time.Hour).Truncate(time.Second))
	fake := conduitfake.New(conduitfake.Options{Clock: clock.Now})
	url := fake.Start()
	defer fake.Close()
	bot := fake.AddUser("bench-bot")
	var authors []conduitfake.User
	for i := range 20 {
		authors = append(authors, fake.AddUser(fmt.Sprintf("dev%02d", i)))
	}
	group := fake.AddProject("Reviewers")
	repo := fake.AddRepository("product", "PRD")
	rep := &PhabricatorReport{Benchmark: "foreign phabricator", Revisions: revisions, GOMAXPROCS: runtime.GOMAXPROCS(0), LatencyMS: float64(latency) / float64(time.Millisecond)}
	p.printf("making %d revisions with %d transactions each in the fake (not measured)", revisions, perRev)
	var phids []string
	for i := range revisions {
		clock.Advance(time.Second)
		author := authors[i%len(authors)]
		rev, err := fake.CreateRevision(conduitfake.RevisionSpec{AuthorPHID: author.PHID, Title: fmt.Sprintf("revision %d", i),
			Summary: "what it does and why", RepositoryPHID: repo.PHID, Reviewers: []string{bot.PHID, group.PHID}, Projects: []string{group.PHID},
			CommitMessage: fmt.Sprintf("revision %d\n\nSummary: what it does and why", i)})
		if err != nil {
			return nil, err
		}
		phids = append(phids, rev.PHID)
		n := len(fake.Transactions(rev.PHID))
		for j := 0; n < perRev; j++ {
			var err error
			switch {
			case j%2 == 0:
				_, err = fake.AddComment(rev.PHID, authors[(i+j)%len(authors)].PHID, fmt.Sprintf("comment %d on revision %d", j, i))
				rep.Comments++
			case j%6 == 1:
				_, err = fake.UpdateDiff(rev.PHID, author.PHID, fmt.Sprintf("revision %d, take %d", i, j))
			default:
				_, err = fake.SetTitle(rev.PHID, author.PHID, fmt.Sprintf("revision %d (v%d)", i, j))
			}
			if err != nil {
				return nil, err
			}
			n++
		}
		rep.Transactions += n
	}
	local, done, err := gatewayReplica(ctx, base, "phabricator")
	if err != nil {
		return nil, err
	}
	defer done()
	counter := &foreigntest.Counter{Next: delay{latency}}
	gw, err := phabricator.New(phabricator.Config{Address: "phab:" + url, Token: bot.Token, Transport: counter})
	if err != nil {
		return nil, err
	}
	fr, err := foreign.Open(local, gw, nil)
	if err != nil {
		return nil, err
	}
	defer fr.Close()

	p.printf("initial sync")
	clock.Advance(time.Minute)
	calls := gw.Client().Calls()
	t0, n0 := time.Now(), counter.N()
	prep, err := fr.Pull(ctx, nil)
	if err != nil {
		return nil, err
	}
	rep.PullSeconds = time.Since(t0).Seconds()
	rep.PullRequests = counter.N() - n0
	rep.PullItemsPerS = float64(revisions+rep.Transactions) / rep.PullSeconds
	rep.PullReqPerRev = float64(rep.PullRequests) / float64(revisions)
	rep.Changesets = prep.Integrated
	rep.PullByMethod = map[string]int{}
	for m, n := range gw.Client().Calls() {
		if d := n - calls[m]; d > 0 {
			rep.PullByMethod[m] = d
		}
	}
	rep.RecordsByType = map[string]int{}
	for _, typ := range []string{phabricator.RevisionType, phabricator.CommentType, phabricator.TransactionType, phabricator.UserType, phabricator.ProjectType, phabricator.RepositoryType} {
		n := 0
		if err := local.R.List(typ, nil, func(*replica.Record) error { n++; return nil }); err != nil {
			return nil, err
		}
		rep.RecordsByType[typ] = n
	}
	if rep.RecordsByType[phabricator.RevisionType] != revisions {
		return nil, fmt.Errorf("bench: the sync made %d revision records of %d", rep.RecordsByType[phabricator.RevisionType], revisions)
	}

	p.printf("no-op refreshes")
	// A minute on, then ten minutes on twice: the second of those is the
	// steady state (the first still reads again what the one before may
	// have missed).
	for _, d := range []time.Duration{time.Minute, 10 * time.Minute, 10 * time.Minute} {
		clock.Advance(d)
		t0, n0 = time.Now(), counter.N()
		if nrep, err := fr.Pull(ctx, nil); err != nil || nrep.Integrated != 0 {
			return nil, fmt.Errorf("bench: no-op refresh integrated %d (%v)", nrep.Integrated, err)
		}
		if d == time.Minute {
			rep.NoopSoonSeconds, rep.NoopSoonRequests = time.Since(t0).Seconds(), counter.N()-n0
		} else {
			rep.NoopSeconds, rep.NoopRequests = time.Since(t0).Seconds(), counter.N()-n0
		}
	}

	p.printf("refresh after %d revisions got a comment", changed)
	for i := range changed {
		clock.Advance(time.Second)
		if _, err := fake.AddComment(phids[(i*7)%revisions], authors[i%len(authors)].PHID, "one more thing"); err != nil {
			return nil, err
		}
	}
	clock.Advance(time.Minute)
	rep.Changed = changed
	t0, n0 = time.Now(), counter.N()
	rrep, err := fr.Pull(ctx, nil)
	if err != nil {
		return nil, err
	}
	if rrep.Integrated == 0 {
		return nil, fmt.Errorf("bench: the refresh after %d comments integrated nothing", changed)
	}
	rep.RefreshSeconds = time.Since(t0).Seconds()
	rep.RefreshReqs = counter.N() - n0
	rep.RefreshReqPer = float64(rep.RefreshReqs) / float64(changed)
	p.printf("done")
	return rep, nil
}

// delay holds each request back d, as a server's round trip would.
type delay struct{ d time.Duration }

func (d delay) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.d > 0 {
		t := time.NewTimer(d.d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}
