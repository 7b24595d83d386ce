package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/merge/httpsync"
	"github.com/prophet-sync/prophet/replica"
)

// The targets of `prophet bench http`, from the issue that asked for sync
// over the network (issue 4).
const (
	targetHTTPCloneRate = 100_000 // changesets/s, the clone over loopback HTTP
	targetHTTPToLocal   = 0.5     // the HTTP clone's rate / the local clone's
	// The no-op pull over HTTP has the targets of the local one:
	// targetNoopPull (median) and targetNoopRatio.
)

// targetLiveMedian is the target of the commit -> live subscriber latency.
const targetLiveMedian = 5 * time.Millisecond

// liveRuns is how many commits the live subscriber latency is timed over.
const liveRuns = 200

// HTTPReport is the result of `prophet bench http`. Its JSON keys are stable:
// scripts read them.
type HTTPReport struct {
	Benchmark string `json:"benchmark"` // "http"
	// Changesets is the large source (--changesets), SmallChangesets the
	// small source of the no-op pull (10,000, or a tenth of Changesets if
	// less).
	Changesets      int     `json:"changesets"`
	SmallChangesets int     `json:"small_changesets"`
	GOMAXPROCS      int     `json:"gomaxprocs"`
	Builds          []Build `json:"builds"` // the sources, built with the bulk path

	// LocalClone clones the large source from its path (open for writing,
	// so merge.Clone copies it); HTTPClone clones it from a URL on
	// loopback, served by this process (httpsync.NewHandler), so
	// merge.Clone fetches its snapshot. Each runs in a child process of
	// its own. HTTPToLocal is HTTPClone.Rate / LocalClone.Rate.
	LocalClone  CloneResult `json:"local_clone"`
	HTTPClone   CloneResult `json:"http_clone"`
	HTTPToLocal float64     `json:"http_to_local"`

	// NoopSmall and NoopLarge time merge.Pull from an httpsync.Remote into
	// an up-to-date clone with nothing new, the server's replica and the
	// clone open, at the small and the large size; NoopRatio is the ratio
	// of their medians (large / small).
	NoopSmall Latency `json:"noop_pull_small"`
	NoopLarge Latency `json:"noop_pull_large"`
	NoopRatio float64 `json:"noop_pull_ratio"`

	// LiveSubscriber times, from before Commit on the served large
	// source to the moment a live subscriber on loopback (Remote.Watch,
	// GET /v1/live) has the changeset, one commit at a time.
	LiveSubscriber Latency `json:"commit_to_live_subscriber"`

	// BenchPeakRSS and BenchPeakHeap are this process's (it builds the
	// sources, serves them and runs the no-op pulls), as in PullReport.
	BenchPeakRSS  uint64 `json:"bench_peak_rss_bytes"`
	BenchPeakHeap uint64 `json:"bench_peak_heap_inuse_bytes"`

	Targets HTTPTargets `json:"targets"`
	Met     HTTPMet     `json:"targets_met"`
}

// HTTPTargets are the targets the figures are held to.
type HTTPTargets struct {
	CloneRate   float64 `json:"http_clone_changesets_per_sec_min"`
	HTTPToLocal float64 `json:"http_to_local_min"`
	NoopPull    float64 `json:"noop_pull_median_seconds_max"` // at the large size
	NoopRatio   float64 `json:"noop_pull_ratio_max"`
	LiveMedian  float64 `json:"commit_to_live_subscriber_median_seconds_max"`
}

// HTTPMet says which targets this run met.
type HTTPMet struct {
	CloneRate   bool `json:"http_clone_rate"`
	HTTPToLocal bool `json:"http_to_local"`
	NoopMedian  bool `json:"noop_pull_median"`
	NoopRatio   bool `json:"noop_pull_ratio"`
	LiveMedian  bool `json:"commit_to_live_subscriber_median"`
}

type httpFlags struct {
	dir        string
	json       bool
	changesets int
}

func runHTTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f httpFlags
	fs := flag.NewFlagSet("bench http", flag.ContinueOnError)
	fs.IntVar(&f.changesets, "changesets", 1_000_000, "changesets in the source that is cloned (over HTTP and from its path) and pulled from")
	fs.StringVar(&f.dir, "dir", os.TempDir(), "directory under which to make the temporary benchmark directory (choose the disk to measure)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of a table")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if f.changesets < 10 {
		return usageErrorf("--changesets must be at least 10")
	}
	rep, err := benchHTTP(ctx, &f, stderr)
	if err != nil {
		return err
	}
	return write(stdout, f.json, rep)
}

// server serves one replica on a loopback listener taken before the
// children start (their URL is an argument), until stop.
type server struct {
	ln  net.Listener
	srv *http.Server
	l   *merge.Local
	err chan error
}

func listen() (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: listen on loopback: %w", err)
	}
	return &server{ln: ln}, nil
}

func (s *server) url() string { return "http://" + s.ln.Addr().String() }

// serve opens the replica in dir for writing and serves it.
func (s *server) serve(ctx context.Context, dir, spool string) error {
	l, err := merge.Open(ctx, dir, nil)
	if err != nil {
		return err
	}
	s.l = l
	s.srv = &http.Server{Handler: httpsync.NewHandler(l, &httpsync.HandlerOptions{SpoolDir: spool})}
	s.err = make(chan error, 1)
	go func() { s.err <- s.srv.Serve(s.ln) }()
	return nil
}

// stop shuts the server down and closes its replica (or just the listener
// if it never served).
func (s *server) stop() error {
	if s == nil {
		return nil
	}
	if s.srv == nil {
		return s.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.err; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.srv = nil
	return errors.Join(err, s.l.Close())
}

func benchHTTP(ctx context.Context, f *httpFlags, stderr io.Writer) (_ *HTTPReport, err error) {
	p := &progress{w: stderr, start: time.Now()}
	c := common{dir: f.dir}
	dir, err := c.tempDir("http")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	peakHeap := sync.OnceValue(startHeap().finish)
	defer peakHeap()
	rep := &HTTPReport{Benchmark: "http", Changesets: f.changesets,
		SmallChangesets: min(smallChangesets, f.changesets/10), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Targets: HTTPTargets{CloneRate: targetHTTPCloneRate, HTTPToLocal: targetHTTPToLocal,
			NoopPull: targetNoopPull.Seconds(), NoopRatio: targetNoopRatio, LiveMedian: targetLiveMedian.Seconds()}}
	path := func(name string) string { return filepath.Join(dir, name) }
	large, small, spool := path(largeName), path(smallName), path("spool")
	localClone, httpClone := large+"-local"+cloneSuffix, large+"-http"+cloneSuffix
	if err := os.Mkdir(spool, 0o755); err != nil {
		return nil, err
	}

	// The servers' listeners, then the clones' child processes, started
	// now, while this process is small (child.go).
	var servers []*server
	defer func() {
		for _, s := range servers {
			if serr := s.stop(); err == nil && serr != nil {
				err = fmt.Errorf("bench: stop the server: %w", serr)
			}
		}
	}()
	for range 2 {
		s, err := listen()
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
	}
	largeSrv, smallSrv := servers[0], servers[1]
	localChild, err := startChild(ctx, childCopy, large, localClone, stderr)
	if err != nil {
		return nil, err
	}
	defer localChild.abort()
	httpChild, err := startChild(ctx, childHTTP, largeSrv.url(), httpClone, stderr)
	if err != nil {
		return nil, err
	}
	defer httpChild.abort()

	for _, s := range []struct {
		dir string
		n   int
	}{{large, f.changesets}, {small, rep.SmallChangesets}} {
		p.printf("building a source of %d changesets (creates with 3 properties, bulk path) in %s", s.n, s.dir)
		b, err := buildSource(ctx, s.dir, s.n, p)
		if err != nil {
			return nil, err
		}
		rep.Builds = append(rep.Builds, b)
	}

	// The local clone first: its child opens the source for writing, so
	// nothing here holds it yet.
	p.printf("clone of %d changesets from its path (source open for writing), in a child process", f.changesets)
	if rep.LocalClone, err = localChild.run(); err != nil {
		return nil, err
	}
	os.RemoveAll(localClone) // done with: give the disk back

	p.printf("serving the source on %s; clone of %d changesets over HTTP, in a child process", largeSrv.url(), f.changesets)
	if err := largeSrv.serve(ctx, large, spool); err != nil {
		return nil, err
	}
	if rep.HTTPClone, err = httpChild.run(); err != nil {
		return nil, err
	}
	for _, cl := range []*CloneResult{&rep.LocalClone, &rep.HTTPClone} {
		if cl.CloneChangesets != cl.SourceChangesets || cl.SourceChangesets != uint64(f.changesets) {
			return nil, fmt.Errorf("bench: the clone holds %d changesets, its source %d (want %d)", cl.CloneChangesets, cl.SourceChangesets, f.changesets)
		}
		if !cl.Copied {
			return nil, fmt.Errorf("bench: a clone pulled rather than copied")
		}
	}
	rep.HTTPToLocal = ratio(rep.HTTPClone.Rate, rep.LocalClone.Rate)

	if err := noopHTTP(ctx, rep, smallSrv, small, spool, largeSrv.url(), httpClone, p); err != nil {
		return nil, err
	}

	p.printf("%d commits on the served source, each timed until a live subscriber over loopback has it", liveRuns)
	if rep.LiveSubscriber, err = liveLatency(ctx, largeSrv, liveRuns); err != nil {
		return nil, err
	}

	rep.BenchPeakRSS, rep.BenchPeakHeap = ownPeakRSS(), peakHeap()
	rep.Met = HTTPMet{
		CloneRate:   rep.HTTPClone.Rate >= rep.Targets.CloneRate,
		HTTPToLocal: rep.HTTPToLocal >= rep.Targets.HTTPToLocal,
		NoopMedian:  rep.NoopLarge.Median <= rep.Targets.NoopPull,
		NoopRatio:   rep.NoopRatio <= rep.Targets.NoopRatio,
		LiveMedian:  rep.LiveSubscriber.Median <= rep.Targets.LiveMedian,
	}
	p.printf("done; removing %s", dir)
	return rep, nil
}

// noopHTTP times no-op pulls over HTTP at both sizes: the small source is
// served now and cloned (not measured); the large one is served already,
// and httpClone is its clone.
func noopHTTP(ctx context.Context, rep *HTTPReport, smallSrv *server, small, spool, largeURL, httpClone string, p *progress) (err error) {
	if err := smallSrv.serve(ctx, small, spool); err != nil {
		return err
	}
	var open []*merge.Local
	defer func() {
		for _, l := range open {
			if cerr := l.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("bench: close the clones: %w", cerr)
			}
		}
	}()
	smallRemote, err := httpsync.Dial(ctx, smallSrv.url(), nil)
	if err != nil {
		return err
	}
	largeRemote, err := httpsync.Dial(ctx, largeURL, nil)
	if err != nil {
		return err
	}
	p.printf("cloning the small source of %d changesets over HTTP (not measured)", rep.SmallChangesets)
	sc, _, err := merge.Clone(ctx, smallRemote, small+cloneSuffix, nil, nil)
	if sc != nil {
		open = append(open, sc)
	}
	if err != nil {
		return fmt.Errorf("bench: clone %s: %w", smallSrv.url(), err)
	}
	lc, err := merge.Open(ctx, httpClone, nil)
	if err != nil {
		return err
	}
	open = append(open, lc)

	p.printf("%d no-op pulls over HTTP at %d and at %d changesets, replicas open", noopRuns, rep.SmallChangesets, rep.Changesets)
	noop := func(src merge.Source, dst *merge.Local) func() error {
		return func() error { return noopPull(ctx, src, dst) }
	}
	rep.NoopSmall, rep.NoopLarge, err = alternate(noopRuns, noop(smallRemote, sc), noop(largeRemote, lc))
	if err != nil {
		return err
	}
	rep.NoopSmall.Changesets, rep.NoopLarge.Changesets = int(sc.R.LatestSeq()), int(lc.R.LatestSeq())
	rep.NoopRatio = ratio(rep.NoopLarge.Median, rep.NoopSmall.Median)
	return nil
}

func (r *HTTPReport) print(w io.Writer) error {
	tw := newFigureTable(w, r.Builds, r.GOMAXPROCS)
	row := tw.row

	row(fmt.Sprintf("1. clone over loopback HTTP, %d changesets (snapshot)", r.HTTPClone.CloneChangesets),
		rate(r.HTTPClone.Rate), fmt.Sprintf(">= %d changesets/s", int(r.Targets.CloneRate)), &r.Met.CloneRate)
	row("   its time (merge.Clone, in the child), and peak RSS", secs(r.HTTPClone.Seconds)+", "+mb(r.HTTPClone.PeakRSS), "", nil)
	row(fmt.Sprintf("   clone from the local path, %d changesets (copy)", r.LocalClone.CloneChangesets), rate(r.LocalClone.Rate), "", nil)
	row("   its time, and peak RSS", secs(r.LocalClone.Seconds)+", "+mb(r.LocalClone.PeakRSS), "", nil)
	row("   HTTP / local", times(r.HTTPToLocal), fmt.Sprintf(">= %.2gx", r.Targets.HTTPToLocal), &r.Met.HTTPToLocal)
	row(fmt.Sprintf("2. no-op pull over HTTP, %d changesets: median / p99", r.NoopSmall.Changesets),
		ms(r.NoopSmall.Median)+" / "+ms(r.NoopSmall.P99), "", nil)
	row(fmt.Sprintf("   no-op pull over HTTP, %d changesets: median / p99", r.NoopLarge.Changesets),
		ms(r.NoopLarge.Median)+" / "+ms(r.NoopLarge.P99), "median <= "+ms(r.Targets.NoopPull), &r.Met.NoopMedian)
	row(fmt.Sprintf("   no-op pull %d / %d (medians)", r.NoopLarge.Changesets, r.NoopSmall.Changesets),
		times(r.NoopRatio), fmt.Sprintf("<= %.2gx", r.Targets.NoopRatio), &r.Met.NoopRatio)
	row("3. commit -> live subscriber over HTTP: median / p99", ms(r.LiveSubscriber.Median)+" / "+ms(r.LiveSubscriber.P99),
		"median <= "+ms(r.Targets.LiveMedian), &r.Met.LiveMedian)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nclones: merge.Clone in a child process each; over HTTP from httpsync.Dial of a server in this process (httpsync.NewHandler on 127.0.0.1,\n"+
		"  GET /v1/snapshot), locally from the path with the source open for writing (replica.Clone's copy); peak RSS: the child's rusage maxrss\n"+
		"  (HTTP: VmHWM %s, from go to exit %s; local: VmHWM %s, from go to exit %s; the floor Linux gives a child's maxrss: %s).\n"+
		"no-op pull: merge.Pull from an httpsync.Remote into an up-to-date clone, the served replica and the clone open, %d runs at each size taking turns, after %d warm-up runs.\n"+
		"live subscriber: Remote.Watch on GET /v1/live of the served large source; from before replica.Commit (one create) there to the changeset in the subscriber's hands, %d commits one at a time, after %d warm-up commits.\n"+
		"this benchmark's own process (builds and serves the sources, runs the pulls) peaked at %s RSS (its Pebble caches included) and %s of Go heap in use.\n",
		mb(r.HTTPClone.VmHWM), secs(r.HTTPClone.ProcessSeconds), mb(r.LocalClone.VmHWM), secs(r.LocalClone.ProcessSeconds), mb(r.HTTPClone.SpawnFloor),
		r.NoopLarge.Runs, warmups, r.LiveSubscriber.Runs, warmups, mb(r.BenchPeakRSS), mib(r.BenchPeakHeap))
	return err
}

// liveLatency subscribes to srv's replica over HTTP and times runs commits
// there, each from before Commit until the subscriber has it.
func liveLatency(ctx context.Context, srv *server, runs int) (Latency, error) {
	rem, err := httpsync.Dial(ctx, srv.url(), nil)
	if err != nil {
		return Latency{}, err
	}
	r := srv.l.R
	got := make(chan uint64, 1)
	synced := make(chan struct{}, 1)
	wctx, stop := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() {
		watched <- rem.Watch(wctx, &httpsync.WatchOptions{After: r.LatestSeq(), OnSync: func() {
			select {
			case synced <- struct{}{}:
			default:
			}
		}}, func(cs *changeset.Changeset) error {
			got <- cs.Seq
			return nil
		})
	}()
	defer func() { stop(); <-watched }()
	select {
	case <-synced:
	case err := <-watched:
		return Latency{}, fmt.Errorf("bench: live subscription: %w", err)
	}
	ts := make([]time.Duration, 0, runs)
	for i := range warmups + runs {
		start := time.Now()
		cs, err := r.Commit(ctx, replica.Edit{Type: recordType, Op: replica.Create, Set: props(uint64(i), "live")})
		if err != nil {
			return Latency{}, err
		}
		for seq := uint64(0); seq != cs.Seq; {
			select {
			case seq = <-got:
			case err := <-watched:
				return Latency{}, fmt.Errorf("bench: live subscription ended: %w", err)
			case <-time.After(time.Minute):
				return Latency{}, fmt.Errorf("bench: changeset %d never reached the live subscriber", cs.Seq)
			}
		}
		if i >= warmups {
			ts = append(ts, time.Since(start))
		}
	}
	lat := latency(ts)
	lat.Changesets = int(r.LatestSeq())
	return lat, nil
}
