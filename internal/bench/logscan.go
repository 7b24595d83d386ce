package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/prophet-sync/prophet/replica"
)

// LogReport is the result of `prophet bench log`: the same scan at two log
// sizes, smaller first. Its JSON keys are stable.
type LogReport struct {
	Benchmark string      `json:"benchmark"` // "log"
	Sizes     []LogResult `json:"sizes"`
}

// LogResult is one log size.
type LogResult struct {
	Changesets   int     `json:"changesets"`
	BuildSeconds float64 `json:"build_seconds"` // bulk load of the log
	// Rate is the scan with every changeset decoded (LogIter.Changeset);
	// RawRate the scan that only touches the stored bytes (LogIter.Raw).
	ScanSeconds float64 `json:"scan_seconds"`
	Rate        float64 `json:"entries_per_sec"`
	RawRate     float64 `json:"raw_entries_per_sec"`
	// HeapBefore is HeapInuse after a GC before the decoding scan; the Peak
	// fields are the highest HeapInuse sampled from the start of that scan
	// to 10%, 50% and 100% of the log. Flat figures across sizes mean the
	// scan streams.
	HeapBefore uint64 `json:"heap_inuse_before_bytes"`
	Peak10     uint64 `json:"peak_heap_inuse_10pct_bytes"`
	Peak50     uint64 `json:"peak_heap_inuse_50pct_bytes"`
	Peak100    uint64 `json:"peak_heap_inuse_100pct_bytes"`
}

func runLog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f common
	fs := flag.NewFlagSet("bench log", flag.ContinueOnError)
	f.register(fs, 1_000_000)
	if err := parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if f.records < 10 {
		return usageErrorf("--records must be at least 10")
	}
	p := &progress{w: stderr, start: time.Now()}
	rep := &LogReport{Benchmark: "log"}
	for _, n := range []int{f.records / 10, f.records} {
		res, err := benchLog(ctx, &f, n, p)
		if err != nil {
			return err
		}
		rep.Sizes = append(rep.Sizes, res)
	}
	return write(stdout, f.json, rep)
}

// benchLog builds a log of n changesets, reopens the replica (as a later
// command would), warms the cache with one scan, then measures a decoding
// scan and a raw one.
func benchLog(ctx context.Context, f *common, n int, p *progress) (LogResult, error) {
	res := LogResult{Changesets: n}
	dir, err := f.tempDir("log")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	dir = filepath.Join(dir, "replica")
	e, err := openEngine(dir, f.cacheSize())
	if err != nil {
		return res, err
	}
	p.printf("building a log of %d changesets in %s", n, dir)
	start := time.Now()
	err = e.preload(ctx, uint64(n), func(uint64) {})
	res.BuildSeconds = time.Since(start).Seconds()
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	r, err := replica.Open(dir, &replica.Options{ReadOnly: true})
	if err != nil {
		return res, err
	}
	defer r.Close()

	// A first pass warms the block cache, so the two measured scans below
	// differ by decoding only, not by where the blocks come from.
	p.printf("warming the cache: one unmeasured scan of %d changesets", n)
	if _, err := scan(r, func(*replica.LogIter, int) error { return nil }); err != nil {
		return res, err
	}

	p.printf("scanning %d changesets, decoding each", n)
	h := newHeap()
	res.HeapBefore = h.peak.Load()
	checkpoints := []struct {
		at  int
		dst *uint64
	}{{n / 10, &res.Peak10}, {n / 2, &res.Peak50}, {n, &res.Peak100}}
	every := max(n/1000, 1)
	start = time.Now()
	got, err := scan(r, func(it *replica.LogIter, i int) error {
		if _, err := it.Changeset(); err != nil {
			return err
		}
		due := len(checkpoints) > 0 && i >= checkpoints[0].at
		if i%every == 0 || due {
			h.sample()
		}
		for ; due; due = len(checkpoints) > 0 && i >= checkpoints[0].at {
			*checkpoints[0].dst = h.peak.Load()
			checkpoints = checkpoints[1:]
		}
		return nil
	})
	res.ScanSeconds = time.Since(start).Seconds()
	res.Rate = float64(got) / res.ScanSeconds
	if err != nil {
		return res, err
	}

	p.printf("scanning %d changesets, raw bytes only", n)
	start = time.Now()
	sum := 0
	got, err = scan(r, func(it *replica.LogIter, _ int) error {
		sum += len(it.Raw())
		return nil
	})
	res.RawRate = float64(got) / time.Since(start).Seconds()
	if err == nil && sum == 0 {
		err = fmt.Errorf("bench: the log of %d changesets holds no bytes", n)
	}
	return res, err
}

// scan calls fn for each entry of r's log, numbered from 1, and checks that
// it saw all of them.
func scan(r *replica.Replica, fn func(it *replica.LogIter, i int) error) (int, error) {
	it := r.Log(1)
	i := 0
	for it.Next() {
		i++
		if err := fn(it, i); err != nil {
			it.Close()
			return i, err
		}
	}
	if err := it.Close(); err != nil {
		return i, err
	}
	if uint64(i) != r.LatestSeq() {
		return i, fmt.Errorf("bench: the scan saw %d changesets, the log holds %d", i, r.LatestSeq())
	}
	return i, nil
}

func (r *LogReport) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, v func(LogResult) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, s := range r.Sizes {
			fmt.Fprintf(tw, "%s\t", v(s))
		}
		fmt.Fprintln(tw)
	}
	row("log size (changesets)", func(s LogResult) string { return fmt.Sprint(s.Changesets) })
	row("build (bulk path), s", func(s LogResult) string { return fmt.Sprintf("%.1f", s.BuildSeconds) })
	row("scan, decoded: entries/s", func(s LogResult) string { return fmt.Sprintf("%.0f", s.Rate) })
	row("scan, raw bytes: entries/s", func(s LogResult) string { return fmt.Sprintf("%.0f", s.RawRate) })
	row("heap in use before the scan", func(s LogResult) string { return mib(s.HeapBefore) })
	row("peak heap in use, 10% of the log", func(s LogResult) string { return mib(s.Peak10) })
	row("peak heap in use, 50% of the log", func(s LogResult) string { return mib(s.Peak50) })
	row("peak heap in use, 100% of the log", func(s LogResult) string { return mib(s.Peak100) })
	return tw.Flush()
}
