package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// writers is the concurrency of the *64 benchmarks.
const writers = 64

// parallelism sets b.RunParallel to run goroutines() goroutines.
func parallelism(b *testing.B) { b.SetParallelism(goroutines() / runtime.GOMAXPROCS(0)) }

// goroutines is how many goroutines run's parallel mode starts, at least
// writers (more when GOMAXPROCS does not divide it): ops get a writer
// number below it, each number used by one goroutine only.
func goroutines() int {
	p := (writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	return p * runtime.GOMAXPROCS(0)
}

func newEngine(tb testing.TB) *engine {
	tb.Helper()
	e, err := openEngine(filepath.Join(tb.TempDir(), "replica"), 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

// newRaw opens raw Pebble with values of a real changeset's size.
func newRaw(b *testing.B) *rawDB {
	size, err := newEngine(b).changesetSize(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	raw, err := openRaw(filepath.Join(b.TempDir(), "raw"), size, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })
	return raw
}

// run calls f once per iteration from one goroutine, or, with parallel, from
// writers goroutines, each with its own writer number.
func run(b *testing.B, parallel bool, f op) {
	ctx := context.Background()
	b.ResetTimer()
	if !parallel {
		for b.Loop() {
			if _, err := f(ctx, 0, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		parallelism(b)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			w := int(next.Add(1) - 1) // < goroutines(): one per goroutine
			for pb.Next() {
				if _, err := f(ctx, w, time.Time{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changesets/s")
}

func BenchmarkCommit1(b *testing.B)  { run(b, false, newEngine(b).commitOp(1)) }
func BenchmarkCommit64(b *testing.B) { run(b, true, newEngine(b).commitOp(goroutines())) }

func BenchmarkRawPebbleSync1(b *testing.B) {
	raw := newRaw(b)
	run(b, false, raw.syncOp(valueSet(raw.size, 1)))
}

func BenchmarkRawPebbleSync64(b *testing.B) {
	raw := newRaw(b)
	run(b, true, raw.syncOp(valueSet(raw.size, goroutines())))
}

// BenchmarkBulk loads b.N new records in one bulk load.
func BenchmarkBulk(b *testing.B) {
	e := newEngine(b)
	b.ResetTimer()
	if err := e.preload(context.Background(), uint64(b.N), func(uint64) {}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changesets/s")
}

// TestRunAppendJSON runs the whole append benchmark, small, and checks that
// the JSON holds every phase with a positive rate.
func TestRunAppendJSON(t *testing.T) {
	var out, errs bytes.Buffer
	args := []string{"append", "--dir", t.TempDir(), "--records", "2000", "--duration", "200ms", "--json"}
	if err := Run(context.Background(), args, &out, &errs); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errs.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"benchmark", "records", "writers", "raw_batch_size", "phase_seconds", "changeset_bytes", "gomaxprocs"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no key %q", k)
		}
	}
	if n, _ := m["changeset_bytes"].(float64); n < 50 || n > 1000 {
		t.Errorf("changeset_bytes = %v, want the size of a small create", m["changeset_bytes"])
	}
	phases := []string{"preload", "raw_pebble_sync_1", "engine_commit_1", "raw_pebble_sync_n", "engine_commit_n", "raw_pebble_batch", "bulk_create", "bulk_update"}
	for _, name := range phases {
		p, ok := m[name].(map[string]any)
		if !ok {
			t.Errorf("no phase %q", name)
			continue
		}
		for _, k := range []string{"ops", "seconds", "changesets_per_sec", "peak_heap_inuse_bytes"} {
			if v, _ := p[k].(float64); v <= 0 {
				t.Errorf("%s.%s = %v, want > 0", name, k, p[k])
			}
		}
		if strings.HasPrefix(name, "engine_") || strings.HasPrefix(name, "bulk_") {
			if v, _ := p["ratio_to_baseline"].(float64); v <= 0 || p["baseline"] == nil || p["baseline"] == "" {
				t.Errorf("%s: baseline %v ratio %v", name, p["baseline"], p["ratio_to_baseline"])
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}

func TestRunLogJSON(t *testing.T) {
	var out, errs bytes.Buffer
	args := []string{"log", "--dir", t.TempDir(), "--records", "3000", "--json"}
	if err := Run(context.Background(), args, &out, &errs); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errs.String())
	}
	var rep LogReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Sizes) != 2 || rep.Sizes[0].Changesets != 300 || rep.Sizes[1].Changesets != 3000 {
		t.Fatalf("sizes: %+v", rep.Sizes)
	}
	for _, s := range rep.Sizes {
		if s.Rate <= 0 || s.RawRate <= 0 || s.Peak10 == 0 || s.Peak50 == 0 || s.Peak100 == 0 {
			t.Errorf("size %d: %+v", s.Changesets, s)
		}
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"append", "--help"}, {"log", "-h"}} {
		var out, errs bytes.Buffer
		if err := Run(context.Background(), args, &out, &errs); err != nil || !strings.Contains(out.String(), "usage: prophet bench") {
			t.Errorf("%q: err %v, stdout %q", args, err, out.String())
		}
	}
	for _, args := range [][]string{nil, {"nope"}, {"append", "--records", "0"}, {"append", "extra"}} {
		var ue *UsageError
		if err := Run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
