package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestRunHTTPJSON runs the whole HTTP benchmark, small, and checks that the
// JSON holds every figure, in sane relations. No timing is asserted.
func TestRunHTTPJSON(t *testing.T) {
	var out, errs bytes.Buffer
	args := []string{"http", "--dir", t.TempDir(), "--changesets", "2000", "--json"}
	if err := Run(context.Background(), args, &out, &errs); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errs.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	get := func(path string) (any, bool) {
		var v any = m
		for _, k := range strings.Split(path, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = obj[k]; !ok {
				return nil, false
			}
		}
		return v, true
	}
	num := func(path string) float64 {
		t.Helper()
		v, ok := get(path)
		if !ok {
			t.Errorf("no %s in the JSON", path)
			return 0
		}
		f, ok := v.(float64)
		if !ok {
			t.Errorf("%s = %v, not a number", path, v)
		}
		return f
	}
	positive := []string{
		"changesets", "small_changesets", "gomaxprocs", "http_to_local", "noop_pull_ratio", "bench_peak_heap_inuse_bytes",
		"targets.http_clone_changesets_per_sec_min", "targets.http_to_local_min", "targets.noop_pull_median_seconds_max", "targets.noop_pull_ratio_max",
	}
	for _, cl := range []string{"local_clone", "http_clone"} {
		for _, k := range []string{"source_changesets", "clone_changesets", "read", "integrated", "seconds", "changesets_per_sec", "open_source_seconds", "process_seconds"} {
			positive = append(positive, cl+"."+k)
		}
		if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
			positive = append(positive, cl+".peak_rss_bytes")
		}
	}
	for _, lat := range []string{"noop_pull_small", "noop_pull_large", "commit_to_live_subscriber"} {
		for _, k := range []string{"changesets", "runs", "median_seconds", "p99_seconds", "min_seconds", "max_seconds"} {
			positive = append(positive, lat+"."+k)
		}
		if !(num(lat+".min_seconds") <= num(lat+".median_seconds") && num(lat+".median_seconds") <= num(lat+".p99_seconds") &&
			num(lat+".p99_seconds") <= num(lat+".max_seconds")) {
			t.Errorf("%s: min, median, p99 and max out of order: %v", lat, m[lat])
		}
	}
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		positive = append(positive, "bench_peak_rss_bytes")
	}
	for _, k := range positive {
		if v := num(k); v <= 0 {
			t.Errorf("%s = %v, want > 0", k, v)
		}
	}
	for _, k := range []string{"http_clone_rate", "http_to_local", "noop_pull_median", "noop_pull_ratio", "commit_to_live_subscriber_median"} {
		if v, _ := get("targets_met." + k); v == nil {
			t.Errorf("targets_met.%s missing", k)
		} else if _, ok := v.(bool); !ok {
			t.Errorf("targets_met.%s = %v, not a bool", k, v)
		}
	}
	if v := num("commit_to_live_subscriber.runs"); v != liveRuns {
		t.Errorf("commit_to_live_subscriber.runs = %v, want %d", v, liveRuns)
	}

	// Relations, through the typed report.
	var rep HTTPReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Benchmark != "http" || rep.Changesets != 2000 || rep.SmallChangesets != 200 || len(rep.Builds) != 2 {
		t.Errorf("sizes: %+v", rep)
	}
	for name, c := range map[string]CloneResult{"local": rep.LocalClone, "http": rep.HTTPClone} {
		if !c.Copied || c.SourceChangesets != 2000 || c.CloneChangesets != 2000 || c.Read != 2000 || c.Integrated != 2000 {
			t.Errorf("%s clone: %+v, want a copy of all 2000", name, c)
		}
		if c.OpenSourceSeconds+c.Seconds+c.CloseSeconds > c.ProcessSeconds {
			t.Errorf("%s clone: the clone takes longer than its process: %+v", name, c)
		}
		if runtime.GOOS == "linux" && (c.VmHWM == 0 || c.SpawnFloor == 0) {
			t.Errorf("%s clone: VmHWM %d, spawn floor %d: want both", name, c.VmHWM, c.SpawnFloor)
		}
	}
	if r := rep.HTTPClone.Rate / rep.LocalClone.Rate; r < rep.HTTPToLocal*0.999 || r > rep.HTTPToLocal*1.001 {
		t.Errorf("http_to_local %v, but the rates give %v", rep.HTTPToLocal, r)
	}
	if rep.NoopSmall.Changesets != 200 || rep.NoopLarge.Changesets != 2000 || rep.NoopSmall.Runs != noopRuns || rep.NoopLarge.Runs != noopRuns {
		t.Errorf("no-op pulls: %+v %+v", rep.NoopSmall, rep.NoopLarge)
	}

	// The table prints every figure.
	var table bytes.Buffer
	if err := rep.print(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clone over loopback HTTP, 2000 changesets", "peak RSS", "clone from the local path, 2000 changesets",
		"HTTP / local", "no-op pull over HTTP, 200 changesets", "no-op pull over HTTP, 2000 changesets", "no-op pull 2000 / 200",
		"commit -> live subscriber over HTTP: median / p99"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out.String(), errs.String())
	}
}

func TestRunHTTPUsage(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"http", "--help"}, &out, &bytes.Buffer{}); err != nil ||
		!strings.Contains(out.String(), "usage: prophet bench http") || !strings.Contains(out.String(), "-changesets") {
		t.Errorf("http --help: err %v, stdout %q", err, out.String())
	}
	for _, args := range [][]string{{"http", "--changesets", "5"}, {"http", "extra"}} {
		var ue *UsageError
		if err := Run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
