package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prophet-sync/prophet/replica"
)

// AppendReport is the result of `prophet bench append`. Its JSON keys are
// stable: scripts read them.
type AppendReport struct {
	Benchmark      string  `json:"benchmark"` // "append"
	Records        int     `json:"records"`   // records preloaded
	Writers        int     `json:"writers"`   // concurrent writers of the _n phases
	RawBatchSize   int     `json:"raw_batch_size"`
	PhaseSeconds   float64 `json:"phase_seconds"`   // --duration, in 4 turns
	ChangesetBytes int     `json:"changeset_bytes"` // encoded size of a typical create
	GOMAXPROCS     int     `json:"gomaxprocs"`
	CacheBytes     int64   `json:"cache_bytes"` // Pebble block cache of both DBs

	// Preload is the bulk load of Records records that the bulk phases run
	// against.
	Preload Result `json:"preload"`

	RawSync1   Result `json:"raw_pebble_sync_1"`
	Commit1    Result `json:"engine_commit_1"`
	RawSyncN   Result `json:"raw_pebble_sync_n"`
	CommitN    Result `json:"engine_commit_n"`
	RawBatch   Result `json:"raw_pebble_batch"`
	BulkCreate Result `json:"bulk_create"`
	BulkUpdate Result `json:"bulk_update"`
}

// phases lists the measured phases in the order they run and print.
func (r *AppendReport) phases() []*Result {
	return []*Result{&r.RawSync1, &r.Commit1, &r.RawSyncN, &r.CommitN, &r.RawBatch, &r.BulkCreate, &r.BulkUpdate}
}

type appendFlags struct {
	common
	duration time.Duration
	writers  int
	batch    int
}

func runAppend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f appendFlags
	fs := flag.NewFlagSet("bench append", flag.ContinueOnError)
	f.register(fs, 1_000_000)
	fs.DurationVar(&f.duration, "duration", 4*time.Second, "how long each measured phase runs in all (in 4 turns, alternating with the phases it is compared with)")
	fs.IntVar(&f.writers, "writers", 64, "concurrent writers of the _n phases")
	fs.IntVar(&f.batch, "batch", defaultGroup(), "values per batch of the raw_pebble_batch phase (default: as many as the bulk path puts in one batch, replica.Options.MaxGroupChangesets)")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if f.records < 1 || f.writers < 1 || f.batch < 1 || f.duration <= 0 {
		return usageErrorf("--records, --writers, --batch and --duration must be positive")
	}
	rep, err := benchAppend(ctx, &f, stderr)
	if err != nil {
		return err
	}
	return write(stdout, f.json, rep)
}

func benchAppend(ctx context.Context, f *appendFlags, stderr io.Writer) (*AppendReport, error) {
	p := &progress{w: stderr, start: time.Now()}
	dir, err := f.tempDir("append")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rep := &AppendReport{Benchmark: "append", Records: f.records, Writers: f.writers, RawBatchSize: f.batch,
		PhaseSeconds: f.duration.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0), CacheBytes: f.cacheSize()}

	e, err := openEngine(filepath.Join(dir, "replica"), f.cacheSize())
	if err != nil {
		return nil, err
	}
	defer e.Close()
	p.printf("preloading %d records through the bulk path in %s", f.records, dir)
	rep.Preload, err = measure(ctx, "preload", 1, 0, func(ctx context.Context, _ int, _ time.Time) (int, error) {
		return f.records, e.preload(ctx, uint64(f.records), func(done uint64) { p.printf("  %d", done) })
	})
	if err != nil {
		return nil, err
	}
	if rep.ChangesetBytes, err = e.changesetSize(ctx); err != nil {
		return nil, err
	}
	raw, err := openRaw(filepath.Join(dir, "raw"), rep.ChangesetBytes, f.cacheSize())
	if err != nil {
		return nil, err
	}
	defer raw.Close()

	// An engine phase and the raw phase it is compared with take turns, in
	// slices, so that both see the same weather on a shared machine (the
	// compactions the preload left behind, a neighbour's burst) instead of
	// one getting the storm and the other the calm.
	vals := valueSet(rep.ChangesetBytes, f.writers)
	groups := [][]step{
		{{&rep.RawSync1, "raw_pebble_sync_1", 1, raw.syncOp(vals), nil},
			{&rep.Commit1, "engine_commit_1", 1, e.commitOp(1), &rep.RawSync1}},
		{{&rep.RawSyncN, "raw_pebble_sync_n", f.writers, raw.syncOp(vals), nil},
			{&rep.CommitN, "engine_commit_n", f.writers, e.commitOp(f.writers), &rep.RawSyncN}},
		{{&rep.RawBatch, "raw_pebble_batch", 1, raw.batchOp(vals, f.batch), nil},
			{&rep.BulkCreate, "bulk_create", 1, e.bulkCreateOp(), &rep.RawBatch},
			{&rep.BulkUpdate, "bulk_update", 1, e.bulkUpdateOp(), &rep.RawBatch}},
	}
	slice := f.duration / slices
	for _, g := range groups {
		names := make([]string, len(g))
		for i, s := range g {
			names[i] = fmt.Sprintf("%s (%d writers)", s.name, s.writers)
		}
		p.printf("%s: %d turns of %s each", strings.Join(names, ", "), slices, slice)
		for range slices {
			for _, s := range g {
				res, err := measure(ctx, s.name, s.writers, slice, s.op)
				if err != nil {
					return nil, fmt.Errorf("bench: %s: %w", s.name, err)
				}
				s.res.add(res)
			}
		}
		for _, s := range g {
			if s.base != nil {
				s.res.compare(*s.base)
			}
		}
	}
	p.printf("done; removing %s", dir)
	return rep, nil
}

// slices is how many turns each phase of a group takes.
const slices = 4

// step is one measured phase: its result, name, writers and work, and the
// raw phase it is compared with (nil for a raw phase).
type step struct {
	res     *Result
	name    string
	writers int
	op      op
	base    *Result
}

func (r *AppendReport) print(w io.Writer) error {
	fmt.Fprintf(w, "changeset: %d bytes encoded (a create with 3 properties); GOMAXPROCS %d; %s per phase (in %d turns); block cache %s\n",
		r.ChangesetBytes, r.GOMAXPROCS, time.Duration(r.PhaseSeconds*float64(time.Second)), slices, mib(uint64(r.CacheBytes)))
	fmt.Fprintf(w, "preload: %d records through the bulk path in %.1f s (%.0f/s), peak heap %s\n\n",
		r.Records, r.Preload.Seconds, r.Preload.Rate, mib(r.Preload.PeakHeap))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\twriters\tops\tseconds\tchangesets/s\tratio\tvs\tpeak heap\t")
	for _, p := range r.phases() {
		ratio := ""
		if p.Baseline != "" {
			ratio = fmt.Sprintf("%.2fx", p.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t%s\t%s\t%s\t\n",
			p.Name, p.Writers, p.Ops, p.Seconds, p.Rate, ratio, p.Baseline, mib(p.PeakHeap))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nraw_pebble_*: plain Pebble appends of %d-byte values under log keys, Commit(Sync) per value (batch: %d values per Commit).\n"+
		"engine_commit_*: replica.Commit of one create each (of a new record: the replica picks its UUID, as prophet create does); bulk_*: replica.Bulk on a replica of %d records (update: Put of a random record).\n",
		r.ChangesetBytes, r.RawBatchSize, r.Records)
	return err
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// defaultGroup is how many changesets the bulk path puts in one batch and
// fsync, so the raw batched baseline amortizes its fsyncs as much.
func defaultGroup() int {
	var o replica.Options
	o.EnsureDefaults()
	return o.MaxGroupChangesets
}
