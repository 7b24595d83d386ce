package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/foreigntest"
	"github.com/prophet-sync/prophet/foreign/rt"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// foreignFlags are bench foreign rt's.
type foreignFlags struct {
	url      string
	tickets  int
	edits    int
	dir      string
	json     bool
	setupPar int
}

func runForeign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "github" {
		return runForeignGitHub(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "phabricator" {
		return runForeignPhabricator(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "rt" {
		return usageErrorf("name a gateway: prophet bench foreign rt, github or phabricator")
	}
	var f foreignFlags
	fs := flag.NewFlagSet("bench foreign rt", flag.ContinueOnError)
	fs.StringVar(&f.url, "url", envOr("PROPHET_RT_TEST_URL", "http://127.0.0.1:18280"), "RT's web root (.ci/rt up starts one); the user and password come from PROPHET_RT_USER and PROPHET_RT_PASSWORD (default root, password)")
	fs.IntVar(&f.tickets, "tickets", 500, "tickets made in a new queue and pulled")
	fs.IntVar(&f.edits, "edits", 100, "tickets edited here and pushed")
	fs.IntVar(&f.setupPar, "setup-parallel", 4, "requests at once while the tickets are made in RT (not measured)")
	fs.StringVar(&f.dir, "dir", os.TempDir(), "directory under which to make the temporary benchmark directory")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of a table")
	if err := parse(fs, args[1:], stdout, stderr); err != nil {
		return err
	}
	if f.tickets < 1 || f.edits < 1 || f.edits > f.tickets {
		return usageErrorf("--tickets must be at least 1, and --edits between 1 and --tickets")
	}
	rep, err := benchForeignRT(ctx, &f, stderr)
	if err != nil {
		return err
	}
	return write(stdout, f.json, rep)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// ForeignReport is bench foreign rt's result.
type ForeignReport struct {
	Benchmark    string `json:"benchmark"`
	URL          string `json:"url"`
	Tickets      int    `json:"tickets"`
	Transactions int    `json:"transactions"` // in the queue's feed
	GOMAXPROCS   int    `json:"gomaxprocs"`

	PullSeconds       float64 `json:"pull_seconds"`
	PullTicketsPerSec float64 `json:"pull_tickets_per_s"`
	PullRequests      int64   `json:"pull_requests"`
	PullReqPerTicket  float64 `json:"pull_requests_per_ticket"`
	Changesets        int     `json:"changesets_integrated"`

	NoopSeconds  float64 `json:"noop_pull_seconds"`
	NoopRequests int64   `json:"noop_pull_requests"`

	Edits            int     `json:"edits"`
	PushSeconds      float64 `json:"push_seconds"`
	PushEditsPerSec  float64 `json:"push_edits_per_s"`
	PushRequests     int64   `json:"push_requests"`
	PushReqPerEdit   float64 `json:"push_requests_per_edit"`
	EchoesAfterPush  int     `json:"changesets_pulled_after_push"` // must be 0
	RequestLatencyMS float64 `json:"median_request_ms"`            // of one GET, for scale
}

func (r *ForeignReport) print(w io.Writer) error {
	_, err := fmt.Fprintf(w, `RT at %s, %d tickets (%d transactions in the feed); GOMAXPROCS %d; one GET takes %.1f ms (median)

  pull of %d tickets with history   %8.2f s   %7.1f tickets/s   %6d requests   %5.2f requests/ticket   %d changesets
  no-op incremental pull            %8.3f s   %d request(s)
  push of %d edits                  %8.2f s   %7.1f edits/s     %6d requests   %5.2f requests/edit
  pull after the push               %d changesets (echoes; want 0)
`, r.URL, r.Tickets, r.Transactions, r.GOMAXPROCS, r.RequestLatencyMS,
		r.Tickets, r.PullSeconds, r.PullTicketsPerSec, r.PullRequests, r.PullReqPerTicket, r.Changesets,
		r.NoopSeconds, r.NoopRequests,
		r.Edits, r.PushSeconds, r.PushEditsPerSec, r.PushRequests, r.PushReqPerEdit,
		r.EchoesAfterPush)
	return err
}

// rtAdmin makes the benchmark's tickets in RT, as a person there would.
type rtAdmin struct {
	api        string
	user, pass string
	hc         *http.Client
}

func (a *rtAdmin) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.api+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.user, a.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("bench: RT at %s: %w (start one with .ci/rt up, or give --url)", a.api, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("bench: RT: %s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func benchForeignRT(ctx context.Context, f *foreignFlags, stderr io.Writer) (*ForeignReport, error) {
	p := &progress{w: stderr, start: time.Now()}
	user, pass := envOr("PROPHET_RT_USER", "root"), envOr("PROPHET_RT_PASSWORD", "password")
	web := strings.TrimRight(f.url, "/")
	admin := &rtAdmin{api: web + "/REST/2.0", user: user, pass: pass, hc: &http.Client{Timeout: time.Minute}}
	rep := &ForeignReport{Benchmark: "foreign rt", URL: web, Tickets: f.tickets, Edits: f.edits, GOMAXPROCS: runtime.GOMAXPROCS(0)}

	// Latency of one request, for scale.
	var lat []time.Duration
	for range 9 {
		t0 := time.Now()
		if err := admin.do(ctx, "GET", "/queues/all", nil, nil); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	rep.RequestLatencyMS = float64(median(lat).Microseconds()) / 1000

	queue := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if err := admin.do(ctx, "POST", "/queue", map[string]any{"Name": queue}, nil); err != nil {
		return nil, err
	}
	p.printf("making %d tickets with history in RT queue %s (not measured)", f.tickets, queue)
	if err := makeTickets(ctx, admin, queue, f.tickets, f.setupPar); err != nil {
		return nil, err
	}

	local, done, err := gatewayReplica(ctx, f.dir, "foreign")
	if err != nil {
		return nil, err
	}
	defer done()
	counter := &foreigntest.Counter{}
	gw, err := rt.New(rt.Config{Address: "rt:" + web + "/?queue=" + url.QueryEscape(queue),
		Credentials: rt.Credentials{User: user, Password: pass}, Transport: counter})
	if err != nil {
		return nil, err
	}
	fr, err := foreign.Open(local, gw, nil)
	if err != nil {
		return nil, err
	}
	defer fr.Close()

	p.printf("pull")
	t0, n0 := time.Now(), counter.N()
	prep, err := fr.Pull(ctx, nil)
	if err != nil {
		return nil, err
	}
	rep.PullSeconds = time.Since(t0).Seconds()
	rep.PullRequests = counter.N() - n0
	rep.PullTicketsPerSec = float64(f.tickets) / rep.PullSeconds
	rep.PullReqPerTicket = float64(rep.PullRequests) / float64(f.tickets)
	rep.Changesets = prep.Integrated
	rep.Transactions = int(prep.Position) // the last transaction ID; counted below
	if n, err := countTickets(local.R); err != nil || n != f.tickets {
		return nil, fmt.Errorf("bench: the pull brought %d tickets, want %d (%v)", n, f.tickets, err)
	}

	p.printf("no-op pull")
	t0, n0 = time.Now(), counter.N()
	if nrep, err := fr.Pull(ctx, nil); err != nil || nrep.Integrated != 0 {
		return nil, fmt.Errorf("bench: no-op pull integrated %d (%v)", nrep.Integrated, err)
	}
	rep.NoopSeconds = time.Since(t0).Seconds()
	rep.NoopRequests = counter.N() - n0

	p.printf("push of %d edits", f.edits)
	var refs []*replica.Record
	if err := local.R.List(rt.TicketType, nil, func(rec *replica.Record) error {
		if len(refs) < f.edits {
			refs = append(refs, rec)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for i, rec := range refs {
		if _, err := local.R.Commit(ctx, replica.Edit{Type: rt.TicketType, Record: rec.UUID, Op: replica.Update,
			Set: map[string]string{"subject": fmt.Sprintf("edited here %d", i), "priority": "5"}}); err != nil {
			return nil, err
		}
	}
	t0, n0 = time.Now(), counter.N()
	push, err := fr.Push(ctx)
	if err != nil {
		return nil, err
	}
	if push.Completed != f.edits || push.Errored+push.Waiting > 0 {
		return nil, fmt.Errorf("bench: push completed %d of %d edits: %v %v", push.Completed, f.edits, push.Errors, push.Wait)
	}
	rep.PushSeconds = time.Since(t0).Seconds()
	rep.PushRequests = counter.N() - n0
	rep.PushEditsPerSec = float64(f.edits) / rep.PushSeconds
	rep.PushReqPerEdit = float64(rep.PushRequests) / float64(f.edits)

	after, err := fr.Pull(ctx, nil)
	if err != nil {
		return nil, err
	}
	rep.EchoesAfterPush = after.Integrated
	var feed struct {
		Total json.Number `json:"total"`
	}
	q := url.Values{"query": {fmt.Sprintf("ObjectType = 'RT::Ticket' AND TicketQueue = '%s'", queue)}, "per_page": {"1"}}
	if err := admin.do(ctx, "GET", "/transactions?"+q.Encode(), nil, &feed); err == nil {
		if n, err := feed.Total.Int64(); err == nil {
			rep.Transactions = int(n)
		}
	}
	p.printf("done")
	return rep, nil
}

// gatewayReplica makes a new replica in a temporary directory under base;
// done closes and removes it.
func gatewayReplica(ctx context.Context, base, name string) (*merge.Local, func(), error) {
	c := common{dir: base}
	dir, err := c.tempDir(name)
	if err != nil {
		return nil, nil, err
	}
	rdir := filepath.Join(dir, "gateway")
	r, err := replica.Init(rdir, uuid.Nil, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	r.Close()
	local, err := merge.Open(ctx, rdir, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return local, func() { local.Close(); os.RemoveAll(dir) }, nil
}

func countTickets(r *replica.Replica) (int, error) {
	n := 0
	err := r.List(rt.TicketType, nil, func(*replica.Record) error { n++; return nil })
	return n, err
}

// makeTickets makes n tickets with history: created with a message, then
// the subject and status changed, then a comment (about six transactions
// each, counting RT's own).
func makeTickets(ctx context.Context, a *rtAdmin, queue string, n, par int) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	jobs := make(chan int)
	for range max(par, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				err := makeTicket(ctx, a, queue, i)
				if err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return first
}

func makeTicket(ctx context.Context, a *rtAdmin, queue string, i int) error {
	var out struct {
		ID json.Number `json:"id"`
	}
	if err := a.do(ctx, "POST", "/ticket", map[string]any{"Queue": queue, "Subject": fmt.Sprintf("ticket %d", i),
		"Content": fmt.Sprintf("the problem of ticket %d", i), "Requestor": fmt.Sprintf("user%d@example.com", i%50)}, &out); err != nil {
		return err
	}
	id := out.ID.String()
	if err := a.do(ctx, "PUT", "/ticket/"+id, map[string]any{"Subject": fmt.Sprintf("ticket %d, triaged", i), "Status": "open"}, nil); err != nil {
		return err
	}
	return a.do(ctx, "POST", "/ticket/"+id+"/comment", map[string]any{"Content": fmt.Sprintf("looked at %d", i), "ContentType": "text/plain"}, nil)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
