package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/merge/httpsync"
	"github.com/prophet-sync/prophet/replica"
)

// `bench pull` and `bench http` measure a clone's peak RSS, which must be the clone's alone:
// not the parent's, which builds the sources and holds their caches. So it
// re-executes this program (os.Executable) with childEnv set and the
// arguments "bench pull SRC DST"; Run sees childEnv before anything else,
// waits for the parent's "go" on stdin, clones SRC into DST, closes both,
// prints a childResult as JSON on stdout and returns. The parent reads the
// child's peak RSS from its rusage. (Under go test, os.Executable is the
// test binary: its TestMain does the same.)
//
// The parent starts its children first thing, before it builds anything,
// and has them wait: on Linux a child's ru_maxrss starts at the peak RSS of
// its parent's memory when it was started (Go starts processes with
// CLONE_VM|CLONE_VFORK, and exec records the peak of the memory it leaves
// behind, the parent's, into the child's maxrss). Started early, a child
// inherits the peak of a parent that has done nothing yet
// (CloneResult.SpawnFloor), below what the clone itself reaches; VmHWM,
// which the child reads from /proc/self/status where there is one, is its
// own memory's peak alone, to cross-check. (For the same reason a process's
// own ru_maxrss counts the peak of whatever started it, `go run` for
// instance: ownPeakRSS prefers VmHWM.)
const childEnv = "PROPHET_BENCH_CHILD"

// What the child does, the value of childEnv.
const (
	// childCopy clones from a source open for writing: merge.Clone copies
	// its database (replica.Clone).
	childCopy = "clone"
	// childPull clones from a source open read-only: merge.Clone pulls,
	// integrating the log changeset by changeset.
	childPull = "pull-clone"
	// childHTTP clones from the URL of a replica served by the parent
	// (`bench http`): merge.Clone fetches its snapshot (GET /v1/snapshot).
	childHTTP = "http-clone"
)

// childResult is what the child prints on stdout.
type childResult struct {
	SourceChangesets uint64 `json:"source_changesets"` // the source's LatestSeq
	CloneChangesets  uint64 `json:"clone_changesets"`  // the clone's LatestSeq
	Read             uint64 `json:"read"`              // merge.Report
	Integrated       int    `json:"integrated"`
	Copied           bool   `json:"copied"` // the source was open for writing: the copy path
	// OpenSeconds opens the source, CloneSeconds is merge.Clone (the copy
	// or the pull, and opening the clone), CloseSeconds closes both.
	OpenSeconds  float64 `json:"open_seconds"`
	CloneSeconds float64 `json:"clone_seconds"`
	CloseSeconds float64 `json:"close_seconds"`
	// VmHWM is the peak RSS of the child's own memory, from
	// /proc/self/status after the close (0 where there is none).
	VmHWM uint64 `json:"vmhwm_bytes"`
}

// runChild is the child: mode is childEnv's value, args "pull SRC DST".
func runChild(ctx context.Context, mode string, args []string, stdout io.Writer) error {
	if len(args) != 3 || args[0] != "pull" {
		return usageErrorf("%s=%s is set (it is meant for the child process of prophet bench pull): want the arguments pull SRC DST, got %q", childEnv, mode, args)
	}
	src, dst := args[1], args[2]
	var opts *replica.Options // open for writing: the copy
	switch mode {
	case childCopy, childHTTP:
	case childPull:
		opts = &replica.Options{ReadOnly: true}
	default:
		return usageErrorf("%s=%q is set (it is meant for the child process of prophet bench pull): want %s, %s or %s", childEnv, mode, childCopy, childPull, childHTTP)
	}
	// Wait for the parent to build the source.
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if line == "" && errors.Is(err, io.EOF) {
		return nil // the parent gave up before the clone (abort): nothing to do
	}
	if line != "go\n" {
		return fmt.Errorf("bench: the clone's child process got %q on stdin, not go: %v", line, err)
	}
	var res childResult
	start := time.Now()
	s, err := openChildSource(ctx, mode, src, opts)
	if err != nil {
		return err
	}
	res.OpenSeconds = time.Since(start).Seconds()
	res.Copied = s.copied

	start = time.Now()
	c, rep, err := merge.Clone(ctx, s.src, dst, nil, nil)
	res.CloneSeconds = time.Since(start).Seconds()
	if err != nil {
		if c != nil {
			c.Close()
		}
		s.close()
		return fmt.Errorf("bench: clone %s into %s: %w", src, dst, err)
	}
	if res.SourceChangesets, err = s.latest(ctx); err != nil {
		c.Close()
		s.close()
		return err
	}
	res.CloneChangesets = c.R.LatestSeq()
	res.Read, res.Integrated = rep.Read, rep.Integrated

	start = time.Now()
	err = errors.Join(c.Close(), s.close())
	res.CloseSeconds = time.Since(start).Seconds()
	if err != nil {
		return fmt.Errorf("bench: close the clone and its source: %w", err)
	}
	res.VmHWM = vmHWM()
	return json.NewEncoder(stdout).Encode(&res)
}

// childSource is what a child clones from: a replica on this machine, or
// one served over HTTP.
type childSource struct {
	src    merge.Source
	copied bool // merge.Clone copies its database rather than pulling
	latest func(context.Context) (uint64, error)
	close  func() error
}

func openChildSource(ctx context.Context, mode, src string, opts *replica.Options) (*childSource, error) {
	if mode == childHTTP {
		r, err := httpsync.Dial(ctx, src, nil)
		if err != nil {
			return nil, fmt.Errorf("bench: dial the source %s: %w", src, err)
		}
		return &childSource{src: r, copied: true, // a Remote is always a Snapshotter
			latest: func(ctx context.Context) (uint64, error) {
				i, err := r.Info(ctx)
				return i.Latest, err
			},
			close: func() error { return nil }}, nil
	}
	l, err := merge.Open(ctx, src, opts)
	if err != nil {
		return nil, fmt.Errorf("bench: open the source %s: %w", src, err)
	}
	return &childSource{src: l, copied: !l.R.ReadOnly(),
		latest: func(context.Context) (uint64, error) { return l.R.LatestSeq(), nil },
		close:  l.Close}, nil
}

// vmHWM reads this process's VmHWM from /proc/self/status, in bytes (0 if
// there is no such file or line).
func vmHWM() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// ownPeakRSS is the peak RSS of this process's memory: VmHWM, or, where
// there is none, its ru_maxrss.
func ownPeakRSS() uint64 {
	if v := vmHWM(); v > 0 {
		return v
	}
	return selfPeakRSS()
}

// child is a clone's child process, started and waiting for go.
type child struct {
	mode  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   bytes.Buffer
	// A child's stderr goes straight to ours when that is a file;
	// otherwise (tests) to errs, copied to stderr once it has exited, so
	// that nothing writes to stderr from two goroutines.
	errs   bytes.Buffer
	stderr io.Writer
	floor  uint64 // the peak RSS of the parent's memory when it started the child
}

// startChild starts a child process that will clone src into dst (mode
// childCopy or childPull) once told to go.
func startChild(ctx context.Context, mode, src, dst string, stderr io.Writer) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: find this program to run the clone in a child process: %w", err)
	}
	c := &child{mode: mode, cmd: exec.CommandContext(ctx, exe, "bench", "pull", src, dst)}
	c.cmd.Env = append(os.Environ(), childEnv+"="+mode)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, stderr
	if _, ok := stderr.(*os.File); !ok {
		c.cmd.Stderr, c.stderr = &c.errs, stderr
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	c.floor = ownPeakRSS()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start the clone's child process: %w", err)
	}
	return c, nil
}

// abort ends a child that was not told to go (it sees its stdin close and
// exits), and waits for it. It does nothing after run.
func (c *child) abort() {
	if c == nil || c.cmd.ProcessState != nil {
		return
	}
	c.stdin.Close()
	c.cmd.Wait()
	c.flushErrs()
}

// run tells the child to go, waits for it, and returns what it reported,
// with its peak RSS.
func (c *child) run() (CloneResult, error) {
	start := time.Now()
	_, err := io.WriteString(c.stdin, "go\n")
	err = errors.Join(err, c.stdin.Close(), c.cmd.Wait())
	c.flushErrs()
	wall := time.Since(start)
	if err != nil {
		return CloneResult{}, fmt.Errorf("bench: the clone's child process (%s=%s %s): %w", childEnv, c.mode, c.cmd, err)
	}
	var cr childResult
	if err := json.Unmarshal(c.out.Bytes(), &cr); err != nil {
		return CloneResult{}, fmt.Errorf("bench: the clone's child process printed %q: %w", c.out.String(), err)
	}
	res := CloneResult{
		Copied:            cr.Copied,
		SourceChangesets:  cr.SourceChangesets,
		CloneChangesets:   cr.CloneChangesets,
		Read:              cr.Read,
		Integrated:        cr.Integrated,
		Seconds:           cr.CloneSeconds,
		OpenSourceSeconds: cr.OpenSeconds,
		CloseSeconds:      cr.CloseSeconds,
		ProcessSeconds:    wall.Seconds(),
		PeakRSS:           peakRSS(c.cmd.ProcessState),
		VmHWM:             cr.VmHWM,
		SpawnFloor:        c.floor,
	}
	if res.Seconds > 0 {
		res.Rate = float64(res.CloneChangesets) / res.Seconds
	}
	return res, nil
}

// flushErrs copies what the child wrote to its stderr buffer, once it has
// exited.
func (c *child) flushErrs() {
	if c.stderr != nil && c.errs.Len() > 0 {
		c.stderr.Write(c.errs.Bytes())
		c.errs.Reset()
	}
}
