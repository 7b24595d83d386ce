package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestMain makes this test binary a stand-in for prophet: `bench pull`
// re-executes os.Executable(), which under go test is this binary, as its
// clone's child process, with childEnv set and the arguments
// "bench pull SRC DST". Run does the child's work, as in prophet.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		var args []string
		if len(os.Args) > 2 {
			args = os.Args[2:] // after "bench"
		}
		if err := Run(context.Background(), args, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunPullJSON runs the whole pull benchmark, small, and checks that the
// JSON holds every figure, in sane relations. No timing is asserted.
func TestRunPullJSON(t *testing.T) {
	var out, errs bytes.Buffer
	args := []string{"pull", "--dir", t.TempDir(), "--changesets", "2000", "--pull-changesets", "500", "--json"}
	if err := Run(context.Background(), args, &out, &errs); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errs.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	// Every figure, by its JSON key.
	num := func(path string) float64 {
		t.Helper()
		var v any = m
		for _, k := range strings.Split(path, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				t.Errorf("no %s in the JSON", path)
				return 0
			}
			if v, ok = obj[k]; !ok {
				t.Errorf("no %s in the JSON", path)
				return 0
			}
		}
		f, ok := v.(float64)
		if !ok {
			t.Errorf("%s = %v, not a number", path, v)
		}
		return f
	}
	positive := []string{
		"changesets", "pull_changesets", "small_changesets", "gomaxprocs",
		"clone.source_changesets", "clone.clone_changesets", "clone.read", "clone.integrated",
		"clone.seconds", "clone.changesets_per_sec", "clone.open_source_seconds", "clone.close_seconds", "clone.process_seconds",
		"pull_clone.source_changesets", "pull_clone.clone_changesets", "pull_clone.read", "pull_clone.integrated",
		"pull_clone.seconds", "pull_clone.changesets_per_sec", "pull_clone.process_seconds",
		"raw_scan.changesets", "raw_scan.bytes", "raw_scan.seconds", "raw_scan.changesets_per_sec",
		"pull_raw_scan.changesets", "pull_raw_scan.bytes", "pull_raw_scan.changesets_per_sec",
		"clone_to_raw_scan", "pull_clone_to_raw_scan", "clone_to_pull_clone",
		"incremental_pull.changesets", "incremental_pull.read", "incremental_pull.seconds", "incremental_pull.changesets_per_sec",
		"noop_pull_ratio", "bench_peak_heap_inuse_bytes",
		"targets.clone_changesets_per_sec_min", "targets.noop_pull_seconds_max", "targets.noop_pull_ratio_max", "targets.clone_peak_rss_bytes_max",
	}
	for _, lat := range []string{"noop_pull_small", "noop_pull_large", "open_pull_close_small", "open_pull_close_large"} {
		for _, k := range []string{"changesets", "runs", "median_seconds", "p99_seconds", "min_seconds", "max_seconds"} {
			positive = append(positive, lat+"."+k)
		}
		if !(num(lat+".min_seconds") <= num(lat+".median_seconds") && num(lat+".median_seconds") <= num(lat+".p99_seconds") &&
			num(lat+".p99_seconds") <= num(lat+".max_seconds")) {
			t.Errorf("%s: min, median, p99 and max out of order: %v", lat, m[lat])
		}
	}
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		positive = append(positive, "clone.peak_rss_bytes", "pull_clone.peak_rss_bytes", "bench_peak_rss_bytes")
	}
	for _, k := range positive {
		if v := num(k); v <= 0 {
			t.Errorf("%s = %v, want > 0", k, v)
		}
	}
	for _, k := range []string{"clone_rate", "noop_pull_median", "noop_pull_p99", "noop_pull_ratio", "clone_peak_rss"} {
		if _, ok := m["targets_met"].(map[string]any)[k].(bool); !ok {
			t.Errorf("targets_met.%s missing or not a bool", k)
		}
	}
	if len(m["builds"].([]any)) != 3 {
		t.Errorf("builds: %v, want 3 sources", m["builds"])
	}

	// Relations, through the typed report.
	var rep PullReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Benchmark != "pull" || rep.Changesets != 2000 || rep.PullChangesets != 500 || rep.SmallChangesets != 200 {
		t.Errorf("sizes: %+v", rep)
	}
	if c := rep.Clone; !c.Copied || c.SourceChangesets != 2000 || c.CloneChangesets != c.SourceChangesets || c.Read != 2000 || c.Integrated != 2000 {
		t.Errorf("clone by copy: %+v, want a copy of all 2000", c)
	}
	if c := rep.PullClone; c.Copied || c.SourceChangesets != 500 || c.CloneChangesets != c.SourceChangesets || c.Read != 500 || c.Integrated != 500 {
		t.Errorf("clone by pull: %+v, want all 500 pulled", c)
	}
	if c := rep.Clone; c.Seconds > c.ProcessSeconds || c.OpenSourceSeconds+c.Seconds+c.CloseSeconds > c.ProcessSeconds {
		t.Errorf("clone: the clone takes longer than its process: %+v", c)
	}
	if runtime.GOOS == "linux" {
		for _, c := range []CloneResult{rep.Clone, rep.PullClone} {
			// (Not VmHWM <= PeakRSS: the kernel's RSS counters are
			// approximate, and the two can differ by a few pages.)
			if c.VmHWM == 0 || c.PeakRSS == 0 || c.SpawnFloor == 0 {
				t.Errorf("clone: VmHWM %d, peak RSS %d, spawn floor %d: want all three", c.VmHWM, c.PeakRSS, c.SpawnFloor)
			}
		}
	}
	if rep.RawScan.Changesets != 2000 || rep.PullRawScan.Changesets != 500 || rep.RawScan.Bytes < 2000*50 {
		t.Errorf("raw scans: %+v, %+v", rep.RawScan, rep.PullRawScan)
	}
	if i := rep.Incremental; i.Changesets != incrementalPull || i.Read != incrementalPull {
		t.Errorf("incremental pull: %+v, want %d read and integrated", i, incrementalPull)
	}
	if rep.NoopSmall.Changesets != 200 || rep.NoopLarge.Changesets != 2000+incrementalPull ||
		rep.NoopSmall.Runs != noopRuns || rep.NoopLarge.Runs != noopRuns ||
		rep.OpenPullCloseSmall.Changesets != 200 || rep.OpenPullCloseLarge.Changesets != 2000+incrementalPull ||
		rep.OpenPullCloseSmall.Runs != openPullCloseRuns || rep.OpenPullCloseLarge.Runs != openPullCloseRuns {
		t.Errorf("no-op pulls: %+v %+v %+v %+v", rep.NoopSmall, rep.NoopLarge, rep.OpenPullCloseSmall, rep.OpenPullCloseLarge)
	}
	if rep.OpenPullCloseLarge.Median < rep.NoopLarge.Median {
		t.Errorf("open+pull+close (%v s) is quicker than the pull alone (%v s)", rep.OpenPullCloseLarge.Median, rep.NoopLarge.Median)
	}

	// The table prints every figure.
	var table bytes.Buffer
	if err := rep.print(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clone by copy, 2000 changesets", "peak RSS", "clone by pull, 500 changesets", "incremental pull of 1000",
		"no-op pull, replicas open, 200 changesets", "no-op pull, replicas open, 3000 changesets: p99", "open source (read-only)", "raw Pebble scan of the log, 2000", "clone by pull / raw scan"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out.String(), errs.String())
	}
}

func TestRunPullUsage(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"pull", "--help"}, &out, &bytes.Buffer{}); err != nil ||
		!strings.Contains(out.String(), "usage: prophet bench pull") || !strings.Contains(out.String(), "-pull-changesets") {
		t.Errorf("pull --help: err %v, stdout %q", err, out.String())
	}
	for _, args := range [][]string{{"pull", "--changesets", "5"}, {"pull", "--pull-changesets", "0"}, {"pull", "extra"}} {
		var ue *UsageError
		if err := Run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	// The child's arguments are checked too.
	t.Setenv(childEnv, childCopy)
	var ue *UsageError
	if err := Run(context.Background(), []string{"pull", "only-one"}, &bytes.Buffer{}, &bytes.Buffer{}); !errors.As(err, &ue) {
		t.Errorf("child with one argument: %v, want a usage error", err)
	}
	t.Setenv(childEnv, "nope")
	if err := Run(context.Background(), []string{"pull", "a", "b"}, &bytes.Buffer{}, &bytes.Buffer{}); !errors.As(err, &ue) {
		t.Errorf("child of an unknown mode: %v, want a usage error", err)
	}
}
