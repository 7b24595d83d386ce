package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// The targets of `prophet bench pull`, from the issue that asked for a
// clone that copies and a pull whose no-op cost does not grow with the log.
const (
	targetCloneRate    = 100_000              // changesets/s, the clone of --changesets
	targetNoopPull     = 2 * time.Millisecond // a no-op pull, both replicas open
	targetNoopRatio    = 1.5                  // no-op pull at --changesets / at the small size
	targetClonePeakRSS = 150 * 1000 * 1000    // bytes (150 MB), the clone's process
)

const (
	noopRuns          = 200    // no-op pulls timed at each size
	openPullCloseRuns = 20     // whole open + pull + close, at each size
	warmups           = 5      // untimed runs before the timed ones
	incrementalPull   = 1000   // new changesets pulled into the clone
	smallChangesets   = 10_000 // the small no-op pull's source, at most

	// replicaDBDir is a replica's Pebble directory (replica's dbDir).
	replicaDBDir = "db"

	// The directories under the benchmark's own: three sources, each
	// cloned into its name + cloneSuffix.
	largeName   = "source"
	pullName    = "pull-source"
	smallName   = "small-source"
	cloneSuffix = "-clone"
)

// PullReport is the result of `prophet bench pull`. Its JSON keys are stable:
// scripts read them.
type PullReport struct {
	Benchmark string `json:"benchmark"` // "pull"
	// Changesets is the large source (--changesets), PullChangesets the one
	// cloned by pulling (--pull-changesets), SmallChangesets the small
	// source of the no-op pull (10,000, or a tenth of Changesets if less).
	Changesets      int     `json:"changesets"`
	PullChangesets  int     `json:"pull_changesets"`
	SmallChangesets int     `json:"small_changesets"`
	GOMAXPROCS      int     `json:"gomaxprocs"`
	Builds          []Build `json:"builds"` // the sources, built with the bulk path

	// Clone copies the large source (open for writing); PullClone clones
	// the pull source (open read-only) by pulling. Both run in a child
	// process of their own.
	Clone     CloneResult `json:"clone"`
	PullClone CloneResult `json:"pull_clone"`
	// RawScan and PullRawScan read the log keyspace of the large and of the
	// pull source with plain Pebble: the limit.
	RawScan     ScanResult `json:"raw_scan"`
	PullRawScan ScanResult `json:"pull_raw_scan"`
	// CloneToRawScan is Clone.Rate / RawScan.Rate, PullCloneToRawScan
	// PullClone.Rate / PullRawScan.Rate, CloneToPullClone Clone.Rate /
	// PullClone.Rate (what the copy buys).
	CloneToRawScan     float64 `json:"clone_to_raw_scan"`
	PullCloneToRawScan float64 `json:"pull_clone_to_raw_scan"`
	CloneToPullClone   float64 `json:"clone_to_pull_clone"`

	// Incremental pulls incrementalPull new changesets of the large source
	// into its clone.
	Incremental PullResult `json:"incremental_pull"`

	// NoopSmall and NoopLarge time merge.Pull with nothing new, both
	// replicas open, at the small and the large size; NoopRatio is the
	// ratio of their medians (large / small).
	NoopSmall Latency `json:"noop_pull_small"`
	NoopLarge Latency `json:"noop_pull_large"`
	NoopRatio float64 `json:"noop_pull_ratio"`
	// OpenPullClose* time what a command line user waits for: open the
	// source (read-only) and the destination, pull nothing, close both.
	OpenPullCloseSmall Latency `json:"open_pull_close_small"`
	OpenPullCloseLarge Latency `json:"open_pull_close_large"`

	// BenchPeakRSS is the peak RSS of the benchmark's own process (which
	// builds the sources and runs everything but the clones): its VmHWM
	// where there is one. It counts the block caches and memtables of the
	// replicas it opens (replica.Options.CacheSize each, taken as they
	// fill); BenchPeakHeap, the highest HeapInuse sampled during the whole
	// run, is what the benchmark itself holds, flat in --changesets.
	BenchPeakRSS  uint64 `json:"bench_peak_rss_bytes"`
	BenchPeakHeap uint64 `json:"bench_peak_heap_inuse_bytes"`

	Targets PullTargets `json:"targets"`
	Met     PullMet     `json:"targets_met"`
}

// Build is the bulk load of one source.
type Build struct {
	Changesets int     `json:"changesets"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"changesets_per_sec"`
}

// CloneResult is one merge.Clone, run in a child process.
type CloneResult struct {
	Copied           bool   `json:"copied"` // the copy path (source open for writing)
	SourceChangesets uint64 `json:"source_changesets"`
	CloneChangesets  uint64 `json:"clone_changesets"`
	Read             uint64 `json:"read"`       // merge.Report.Read
	Integrated       int    `json:"integrated"` // merge.Report.Integrated
	// Seconds is merge.Clone alone, as timed by the child; Rate is
	// CloneChangesets / Seconds.
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"changesets_per_sec"`
	// OpenSourceSeconds opens the source before the clone, CloseSeconds
	// closes the clone and the source after it, ProcessSeconds runs from
	// the parent's go to the child's exit, as the parent saw it (the child
	// was started, and its runtime set up, long before).
	OpenSourceSeconds float64 `json:"open_source_seconds"`
	CloseSeconds      float64 `json:"close_seconds"`
	ProcessSeconds    float64 `json:"process_seconds"`
	// PeakRSS is the child process's peak resident set size (rusage
	// maxrss): the clone's alone, as long as it is above SpawnFloor, the
	// peak RSS of the parent's memory when it started the child, which
	// Linux counts in the child's maxrss (child.go). VmHWM is the child's own memory's
	// peak, from /proc/self/status (0 where there is none).
	PeakRSS    uint64 `json:"peak_rss_bytes"`
	VmHWM      uint64 `json:"vmhwm_bytes"`
	SpawnFloor uint64 `json:"spawn_floor_bytes"`
}

// ScanResult is a raw Pebble scan of a log.
type ScanResult struct {
	Changesets int     `json:"changesets"`
	Bytes      int64   `json:"bytes"` // values read
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"changesets_per_sec"`
}

// PullResult is one merge.Pull that integrates something.
type PullResult struct {
	Changesets int     `json:"changesets"` // integrated
	Read       uint64  `json:"read"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"changesets_per_sec"`
}

// Latency is a repeated operation's time.
type Latency struct {
	Changesets int     `json:"changesets"` // in the source's log
	Runs       int     `json:"runs"`
	Median     float64 `json:"median_seconds"`
	P99        float64 `json:"p99_seconds"` // nearest rank
	Min        float64 `json:"min_seconds"`
	Max        float64 `json:"max_seconds"`
}

// PullTargets are the targets the figures are held to.
type PullTargets struct {
	CloneRate    float64 `json:"clone_changesets_per_sec_min"`
	NoopPull     float64 `json:"noop_pull_seconds_max"` // median and p99, at the large size
	NoopRatio    float64 `json:"noop_pull_ratio_max"`
	ClonePeakRSS uint64  `json:"clone_peak_rss_bytes_max"`
}

// PullMet says which targets this run met.
type PullMet struct {
	CloneRate    bool `json:"clone_rate"`
	NoopMedian   bool `json:"noop_pull_median"`
	NoopP99      bool `json:"noop_pull_p99"`
	NoopRatio    bool `json:"noop_pull_ratio"`
	ClonePeakRSS bool `json:"clone_peak_rss"`
}

type pullFlags struct {
	dir        string
	json       bool
	changesets int
	pullSize   int
}

func runPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f pullFlags
	fs := flag.NewFlagSet("bench pull", flag.ContinueOnError)
	fs.IntVar(&f.changesets, "changesets", 1_000_000, "changesets in the source that is cloned by copy and pulled from")
	fs.IntVar(&f.pullSize, "pull-changesets", 100_000, "changesets in the smaller source cloned by pulling (the slow path, for reference)")
	fs.StringVar(&f.dir, "dir", os.TempDir(), "directory under which to make the temporary benchmark directory (choose the disk to measure)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of a table")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if f.changesets < 10 || f.pullSize < 1 {
		return usageErrorf("--changesets must be at least 10 and --pull-changesets positive")
	}
	rep, err := benchPull(ctx, &f, stderr)
	if err != nil {
		return err
	}
	return write(stdout, f.json, rep)
}

func benchPull(ctx context.Context, f *pullFlags, stderr io.Writer) (*PullReport, error) {
	p := &progress{w: stderr, start: time.Now()}
	c := common{dir: f.dir}
	dir, err := c.tempDir("pull")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	peakHeap := sync.OnceValue(startHeap().finish)
	defer peakHeap()
	rep := &PullReport{Benchmark: "pull", Changesets: f.changesets, PullChangesets: f.pullSize,
		SmallChangesets: min(smallChangesets, f.changesets/10), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Targets: PullTargets{CloneRate: targetCloneRate, NoopPull: targetNoopPull.Seconds(),
			NoopRatio: targetNoopRatio, ClonePeakRSS: targetClonePeakRSS}}
	path := func(name string) string { return filepath.Join(dir, name) }
	large, pull, small := path(largeName), path(pullName), path(smallName)

	// The clones' child processes, started now, while this process is
	// small (child.go); they wait for their sources.
	copier, err := startChild(ctx, childCopy, large, large+cloneSuffix, stderr)
	if err != nil {
		return nil, err
	}
	defer copier.abort()
	puller, err := startChild(ctx, childPull, pull, pull+cloneSuffix, stderr)
	if err != nil {
		return nil, err
	}
	defer puller.abort()

	// The sources, closed once built: every phase opens what it reads.
	for _, s := range []struct {
		dir string
		n   int
	}{{large, f.changesets}, {pull, f.pullSize}, {small, rep.SmallChangesets}} {
		p.printf("building a source of %d changesets (creates with 3 properties, bulk path) in %s", s.n, s.dir)
		b, err := buildSource(ctx, s.dir, s.n, p)
		if err != nil {
			return nil, err
		}
		rep.Builds = append(rep.Builds, b)
	}

	// The limit: plain Pebble reading the same logs, from a fresh open
	// (the block cache empty; the OS page cache as the build left it, as
	// for the clones below).
	for _, s := range []struct {
		dir string
		dst *ScanResult
	}{{large, &rep.RawScan}, {pull, &rep.PullRawScan}} {
		p.printf("raw Pebble scan of the log of %s", s.dir)
		if *s.dst, err = rawScan(s.dir); err != nil {
			return nil, err
		}
	}

	p.printf("clone by copy of %d changesets (source open for writing), in a child process", f.changesets)
	if rep.Clone, err = copier.run(); err != nil {
		return nil, err
	}
	p.printf("clone by pull of %d changesets (source open read-only), in a child process", f.pullSize)
	if rep.PullClone, err = puller.run(); err != nil {
		return nil, err
	}
	for _, cl := range []*CloneResult{&rep.Clone, &rep.PullClone} {
		if cl.CloneChangesets != cl.SourceChangesets {
			return nil, fmt.Errorf("bench: the clone holds %d changesets, its source %d", cl.CloneChangesets, cl.SourceChangesets)
		}
	}
	if !rep.Clone.Copied || rep.PullClone.Copied {
		return nil, fmt.Errorf("bench: the clone took the wrong path (copy: %v, pull: %v)", rep.Clone.Copied, rep.PullClone.Copied)
	}
	rep.CloneToRawScan = ratio(rep.Clone.Rate, rep.RawScan.Rate)
	rep.PullCloneToRawScan = ratio(rep.PullClone.Rate, rep.PullRawScan.Rate)
	rep.CloneToPullClone = ratio(rep.Clone.Rate, rep.PullClone.Rate)
	os.RemoveAll(pull + cloneSuffix) // done with: give the disk back

	if err := pulls(ctx, rep, large, small, p); err != nil {
		return nil, err
	}

	rep.BenchPeakRSS, rep.BenchPeakHeap = ownPeakRSS(), peakHeap()
	rep.Met = PullMet{
		CloneRate:    rep.Clone.Rate >= rep.Targets.CloneRate,
		NoopMedian:   rep.NoopLarge.Median <= rep.Targets.NoopPull,
		NoopP99:      rep.NoopLarge.P99 <= rep.Targets.NoopPull,
		NoopRatio:    rep.NoopRatio <= rep.Targets.NoopRatio,
		ClonePeakRSS: rep.Clone.PeakRSS > 0 && rep.Clone.PeakRSS <= rep.Targets.ClonePeakRSS,
	}
	p.printf("done; removing %s", dir)
	return rep, nil
}

// pulls runs the pull phases: the incremental pull into the large clone,
// then no-op pulls at both sizes, with the replicas open and then with
// opening and closing them.
func pulls(ctx context.Context, rep *PullReport, large, small string, p *progress) (err error) {
	var open []*merge.Local
	closeAll := func() error {
		var errs []error
		for _, l := range open {
			errs = append(errs, l.Close())
		}
		open = nil
		return errors.Join(errs...)
	}
	defer func() {
		if cerr := closeAll(); err == nil && cerr != nil {
			err = fmt.Errorf("bench: close the replicas: %w", cerr)
		}
	}()
	openLocal := func(dir string, opts *replica.Options) (*merge.Local, error) {
		l, err := merge.Open(ctx, dir, opts)
		if err != nil {
			return nil, err
		}
		open = append(open, l)
		return l, nil
	}

	// The small pair: a copy, made here (it is not measured).
	p.printf("cloning the small source of %d changesets (not measured)", rep.SmallChangesets)
	ss, err := openLocal(small, nil)
	if err != nil {
		return err
	}
	sc, _, err := merge.Clone(ctx, ss, small+cloneSuffix, nil, nil)
	if err != nil {
		return fmt.Errorf("bench: clone %s: %w", small, err)
	}
	open = append(open, sc)

	// The incremental pull: new changesets on the source, pulled into the
	// clone.
	ls, err := openLocal(large, nil)
	if err != nil {
		return err
	}
	p.printf("creating %d changesets on the source of %d", incrementalPull, rep.Changesets)
	if err := extend(ctx, ls.R, incrementalPull); err != nil {
		return err
	}
	lc, err := openLocal(large+cloneSuffix, nil)
	if err != nil {
		return err
	}
	p.printf("pulling them into its clone")
	start := time.Now()
	pr, err := merge.Pull(ctx, ls, lc, nil)
	rep.Incremental = PullResult{Changesets: pr.Integrated, Read: pr.Read, Seconds: time.Since(start).Seconds()}
	if err != nil {
		return fmt.Errorf("bench: incremental pull: %w", err)
	}
	if pr.Integrated != incrementalPull || lc.R.LatestSeq() != ls.R.LatestSeq() {
		return fmt.Errorf("bench: the incremental pull integrated %d changesets (want %d); the clone holds %d, the source %d",
			pr.Integrated, incrementalPull, lc.R.LatestSeq(), ls.R.LatestSeq())
	}
	rep.Incremental.Rate = ratio(float64(pr.Integrated), rep.Incremental.Seconds)

	// No-op pulls, both replicas open, the two sizes taking turns.
	p.printf("%d no-op pulls at %d and at %d changesets, replicas open", noopRuns, rep.SmallChangesets, rep.Changesets+incrementalPull)
	noop := func(src, dst *merge.Local) func() error {
		return func() error { return noopPull(ctx, src, dst) }
	}
	rep.NoopSmall, rep.NoopLarge, err = alternate(noopRuns, noop(ss, sc), noop(ls, lc))
	if err != nil {
		return err
	}
	rep.NoopSmall.Changesets, rep.NoopLarge.Changesets = int(ss.R.LatestSeq()), int(ls.R.LatestSeq())
	rep.NoopRatio = ratio(rep.NoopLarge.Median, rep.NoopSmall.Median)

	// The same with opening and closing: what a command line user waits for.
	if err := closeAll(); err != nil {
		return fmt.Errorf("bench: close the replicas: %w", err)
	}
	p.printf("%d times open source (read-only) + open destination + no-op pull + close, at each size", openPullCloseRuns)
	whole := func(src, dst string) func() error {
		return func() error {
			s, err := merge.Open(ctx, src, &replica.Options{ReadOnly: true})
			if err != nil {
				return err
			}
			d, err := merge.Open(ctx, dst, nil)
			if err != nil {
				s.Close()
				return err
			}
			err = noopPull(ctx, s, d)
			return errors.Join(err, d.Close(), s.Close())
		}
	}
	rep.OpenPullCloseSmall, rep.OpenPullCloseLarge, err = alternate(openPullCloseRuns,
		whole(small, small+cloneSuffix), whole(large, large+cloneSuffix))
	rep.OpenPullCloseSmall.Changesets, rep.OpenPullCloseLarge.Changesets = rep.NoopSmall.Changesets, rep.NoopLarge.Changesets
	return err
}

// noopPull pulls from src into dst and checks that there was nothing to do.
func noopPull(ctx context.Context, src merge.Source, dst *merge.Local) error {
	r, err := merge.Pull(ctx, src, dst, nil)
	if err != nil {
		return fmt.Errorf("bench: no-op pull: %w", err)
	}
	if r.Read != 0 || r.Integrated != 0 || r.Resolutions != 0 {
		return fmt.Errorf("bench: a no-op pull read %d changesets, integrated %d and %d decisions", r.Read, r.Integrated, r.Resolutions)
	}
	return nil
}

// alternate runs a and b in turns, warmups untimed turns and then n timed.
func alternate(n int, a, b func() error) (Latency, Latency, error) {
	ta, tb := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	for i := range warmups + n {
		for _, s := range []struct {
			f func() error
			t *[]time.Duration
		}{{a, &ta}, {b, &tb}} {
			start := time.Now()
			if err := s.f(); err != nil {
				return Latency{}, Latency{}, err
			}
			if i >= warmups {
				*s.t = append(*s.t, time.Since(start))
			}
		}
	}
	return latency(ta), latency(tb), nil
}

func latency(ts []time.Duration) Latency {
	if len(ts) == 0 {
		return Latency{}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	p99 := (len(ts)*99 + 99) / 100 // nearest rank: ceil(0.99 n)
	return Latency{Runs: len(ts), Median: ts[len(ts)/2].Seconds(), P99: ts[p99-1].Seconds(),
		Min: ts[0].Seconds(), Max: ts[len(ts)-1].Seconds()}
}

// buildSource makes a replica of n creates in dir with the bulk path, and
// closes it.
func buildSource(ctx context.Context, dir string, n int, p *progress) (Build, error) {
	e, err := openEngine(dir, 0)
	if err != nil {
		return Build{}, err
	}
	start := time.Now()
	err = e.preload(ctx, uint64(n), func(done uint64) {
		if n >= 100_000 {
			p.printf("  %d", done)
		}
	})
	b := Build{Changesets: n, Seconds: time.Since(start).Seconds()}
	b.Rate = ratio(float64(n), b.Seconds)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// extend creates n new records on r, a source built by buildSource, with the
// bulk path.
func extend(ctx context.Context, r *replica.Replica, n int) error {
	e := &engine{r: r}
	e.next.Store(r.LatestSeq()) // records 0..LatestSeq-1 exist
	made := 0
	got, err := e.bulk(ctx, time.Time{}, func() *replica.Unit {
		if made == n {
			return nil
		}
		made++
		return &replica.Unit{Edits: []replica.Edit{createEdit(e.next.Add(1) - 1)}}
	})
	if err == nil && got != n {
		err = fmt.Errorf("bench: created %d changesets, want %d", got, n)
	}
	return err
}

// rawScan opens the Pebble database of the replica in dir (read-only, with
// the replica's options) and reads every value of its log keyspace.
func rawScan(dir string) (ScanResult, error) {
	db, err := pebble.Open(filepath.Join(dir, replicaDBDir), replica.PebbleOptions(&replica.Options{ReadOnly: true}))
	if err != nil {
		return ScanResult{}, fmt.Errorf("bench: open %s with Pebble: %w", dir, err)
	}
	defer db.Close()
	var res ScanResult
	start := time.Now()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'L'}, UpperBound: []byte{'L' + 1}})
	if err != nil {
		return res, err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return res, err
		}
		res.Changesets++
		res.Bytes += int64(len(v))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	res.Rate = ratio(float64(res.Changesets), res.Seconds)
	if res.Changesets == 0 {
		return res, fmt.Errorf("bench: the log of %s is empty to Pebble", dir)
	}
	return res, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (r *PullReport) print(w io.Writer) error {
	tw := newFigureTable(w, r.Builds, r.GOMAXPROCS)
	row := tw.row

	row(fmt.Sprintf("1. clone by copy, %d changesets (source open for writing)", r.Clone.CloneChangesets),
		rate(r.Clone.Rate), fmt.Sprintf(">= %d changesets/s", int(r.Targets.CloneRate)), &r.Met.CloneRate)
	row("   its time (merge.Clone, in the child)", secs(r.Clone.Seconds), "", nil)
	row("   peak RSS of the clone's process", mb(r.Clone.PeakRSS), "<= "+mb(r.Targets.ClonePeakRSS), &r.Met.ClonePeakRSS)
	row(fmt.Sprintf("   clone by pull, %d changesets (source read-only)", r.PullClone.CloneChangesets), rate(r.PullClone.Rate), "", nil)
	row("   its time, and peak RSS", secs(r.PullClone.Seconds)+", "+mb(r.PullClone.PeakRSS), "", nil)
	row("   what the copy buys: copy / pull", times(r.CloneToPullClone), "", nil)
	row(fmt.Sprintf("2. incremental pull of %d into the clone", r.Incremental.Changesets),
		ms(r.Incremental.Seconds)+", "+rate(r.Incremental.Rate), "", nil)
	row(fmt.Sprintf("3. no-op pull, replicas open, %d changesets: median / p99", r.NoopSmall.Changesets),
		ms(r.NoopSmall.Median)+" / "+ms(r.NoopSmall.P99), "", nil)
	row(fmt.Sprintf("   no-op pull, replicas open, %d changesets: median", r.NoopLarge.Changesets),
		ms(r.NoopLarge.Median), "<= "+ms(r.Targets.NoopPull), &r.Met.NoopMedian)
	row(fmt.Sprintf("   no-op pull, replicas open, %d changesets: p99", r.NoopLarge.Changesets),
		ms(r.NoopLarge.P99), "<= "+ms(r.Targets.NoopPull), &r.Met.NoopP99)
	row(fmt.Sprintf("   no-op pull %d / %d (medians)", r.NoopLarge.Changesets, r.NoopSmall.Changesets),
		times(r.NoopRatio), fmt.Sprintf("<= %.2gx", r.Targets.NoopRatio), &r.Met.NoopRatio)
	row(fmt.Sprintf("   open source (read-only) + open destination + no-op pull + close, %d: median / p99", r.OpenPullCloseSmall.Changesets),
		ms(r.OpenPullCloseSmall.Median)+" / "+ms(r.OpenPullCloseSmall.P99), "", nil)
	row(fmt.Sprintf("   open source (read-only) + open destination + no-op pull + close, %d: median / p99", r.OpenPullCloseLarge.Changesets),
		ms(r.OpenPullCloseLarge.Median)+" / "+ms(r.OpenPullCloseLarge.P99), "", nil)
	row(fmt.Sprintf("4. raw Pebble scan of the log, %d changesets", r.RawScan.Changesets), rate(r.RawScan.Rate), "", nil)
	row(fmt.Sprintf("   raw Pebble scan of the log, %d changesets", r.PullRawScan.Changesets), rate(r.PullRawScan.Rate), "", nil)
	row("   clone by copy / raw scan", times(r.CloneToRawScan), "", nil)
	row("   clone by pull / raw scan", times(r.PullCloneToRawScan), "", nil)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nclone: merge.Clone in a child process of its own (opening the source took %s, closing %s, from go to exit %s); peak RSS: its rusage maxrss\n"+
		"  (VmHWM %s; the floor Linux gives a child's maxrss, this process's peak when it started it: %s).\n"+
		"  by copy: merge.Open(source) for writing, so merge.Clone copies the database; by pull: the source open read-only, integrated changeset by changeset.\n"+
		"no-op pull: merge.Pull with nothing new, %d runs at each size taking turns, after %d warm-up runs; open+pull+close: %d runs at each size.\n"+
		"raw scan: plain Pebble, opened afresh with the replica's options, reading every value under the log prefix (%.1f MiB at %d changesets).\n"+
		"this benchmark's own process (builds the sources, runs the pulls) peaked at %s RSS (its Pebble caches included) and %s of Go heap in use.\n",
		secs(r.Clone.OpenSourceSeconds), secs(r.Clone.CloseSeconds), secs(r.Clone.ProcessSeconds), mb(r.Clone.VmHWM), mb(r.Clone.SpawnFloor),
		r.NoopLarge.Runs, warmups, r.OpenPullCloseLarge.Runs,
		float64(r.RawScan.Bytes)/(1<<20), r.RawScan.Changesets, mb(r.BenchPeakRSS), mib(r.BenchPeakHeap))
	return err
}

// figureTable is the table bench pull and bench http print: a line on the
// sources, then one row per measurement with its figure, its target and
// whether it was met.
type figureTable struct{ *tabwriter.Writer }

func newFigureTable(w io.Writer, builds []Build, procs int) figureTable {
	fmt.Fprintf(w, "sources (creates with 3 properties, bulk path):")
	for i, b := range builds {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(w, "%s %d changesets in %.1f s", sep, b.Changesets, b.Seconds)
	}
	fmt.Fprintf(w, "; GOMAXPROCS %d\n\n", procs)
	t := figureTable{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t, "measurement\tfigure\ttarget\tmet\t")
	return t
}

// row adds a measurement; met nil: it has no target.
func (t figureTable) row(label, figure, target string, met *bool) {
	m := ""
	if met != nil {
		m = "no"
		if *met {
			m = "yes"
		}
	}
	fmt.Fprintf(t, "%s\t%s\t%s\t%s\t\n", label, figure, target, m)
}

func rate(v float64) string  { return fmt.Sprintf("%.0f changesets/s", v) }
func times(v float64) string { return fmt.Sprintf("%.2fx", v) }

func secs(s float64) string { return fmt.Sprintf("%.2f s", s) }
func ms(s float64) string   { return fmt.Sprintf("%.3f ms", s*1000) }
func mb(b uint64) string    { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
