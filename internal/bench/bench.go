// Package bench implements `prophet bench`: measurements of the engine side
// by side with raw Pebble on the same disk, in one run, so that the figures
// are read as ratios rather than as absolute times (a shared, noisy machine
// moves absolute times by 3-5x from one minute to the next).
//
// Benchmarks:
//
//	append  durable appends: raw Pebble, the engine's Commit with 1 and N
//	        writers, and the bulk path on a replica holding --records records
//	log     a scan of the whole log with replica.Log, at two log sizes, with
//	        the heap sampled during the scan to show it is flat in log size
//	pull    merge.Clone by copy (in a child process, for its peak RSS) and by
//	        pull, an incremental pull, no-op pulls at two log sizes, and raw
//	        Pebble scanning the same log
//	http    merge.Clone over loopback HTTP and from the local path (each
//	        in a child process), and no-op pulls over HTTP at two log sizes
//	foreign rt  a pull of tickets with history from a real RT, a no-op
//	        pull, and a push of edits, with the requests each made
//
// Every benchmark works in a temporary directory under --dir and removes it
// afterwards. Progress goes to stderr, results to stdout (a table, or one
// JSON object with --json).
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prophet-sync/prophet/replica"
)

const usage = `usage: prophet bench BENCHMARK [flags]

Benchmarks:
  append   durable appends: raw Pebble (1 and --writers writers, and batches
           of 1000), the engine's Commit (1 and --writers committers), and
           the bulk path (creates and updates) on a replica that already
           holds --records records
  log      build a log of --records changesets and of a tenth as many, then
           scan each with replica.Log: entries/s and the heap at 10%, 50%
           and 100% of the scan
  pull     clone a source of --changesets by copy (its rate and peak RSS,
           in a child process) and one of --pull-changesets by pulling;
           pull 1000 new changesets into the clone; time no-op pulls at
           10,000 and --changesets; scan the logs with raw Pebble
  http     clone a source of --changesets over loopback HTTP and from its
           path (rates, their ratio, peak RSS, each in a child process);
           time no-op pulls over HTTP at 10,000 and --changesets
  foreign rt
           against a real RT (--url; .ci/rt up starts one): pull --tickets
           tickets with history into a new gateway replica (tickets/s,
           requests per ticket), a no-op pull (requests), a push of --edits
           edits (edits/s, requests per edit), and the pull after it

Run 'prophet bench BENCHMARK --help' for its flags.
`

// Run runs one benchmark. args are the words after "prophet bench": the
// benchmark's name, then its flags. Results go to stdout, progress to
// stderr.
//
// In the child process of `bench pull` (childEnv set), Run clones and
// returns instead (child.go).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if mode := os.Getenv(childEnv); mode != "" {
		return runChild(ctx, mode, args, stdout)
	}
	if len(args) == 0 {
		return usageErrorf("name a benchmark: prophet bench append, log, pull, http or foreign rt (see prophet bench --help)")
	}
	var err error
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "append":
		err = runAppend(ctx, args[1:], stdout, stderr)
	case "log":
		err = runLog(ctx, args[1:], stdout, stderr)
	case "pull":
		err = runPull(ctx, args[1:], stdout, stderr)
	case "http":
		err = runHTTP(ctx, args[1:], stdout, stderr)
	case "foreign":
		err = runForeign(ctx, args[1:], stdout, stderr)
	default:
		return usageErrorf("unknown benchmark %q: want append, log, pull, http or foreign (see prophet bench --help)", args[0])
	}
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// common holds the flags every benchmark takes.
type common struct {
	dir     string
	json    bool
	records int
	cacheMB int64
}

func (c *common) register(fs *flag.FlagSet, records int) {
	fs.StringVar(&c.dir, "dir", os.TempDir(), "directory under which to make the temporary benchmark directory (choose the disk to measure)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object instead of a table")
	fs.IntVar(&c.records, "records", records, "records in the replica (append) or changesets in the log (log)")
	fs.Int64Var(&c.cacheMB, "cache-mb", 0, "Pebble block cache in MiB, for the replica and raw Pebble alike (0: the replica's default, replica.Options.CacheSize)")
}

// cacheSize is the block cache to use, in bytes.
func (c *common) cacheSize() int64 {
	if c.cacheMB > 0 {
		return c.cacheMB << 20
	}
	var o replica.Options
	o.EnsureDefaults()
	return o.CacheSize
}

// parse parses args with fs. It returns errHelp after printing the flags to
// stdout when asked for --help.
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(io.Discard) // a bad flag is reported in one line, below
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "usage: prophet %s [flags]\n\nFlags:\n", fs.Name())
		fs.PrintDefaults()
		return errHelp
	}
	if err != nil {
		return usageErrorf("%v (see prophet %s --help)", err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q (see prophet %s --help)", fs.Arg(0), fs.Name())
	}
	return nil
}

// UsageError is a benchmark invoked wrongly: the CLI exits 2 for it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return "bench: " + e.Msg }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// errHelp stops a benchmark after --help; Run turns it into success.
var errHelp = errors.New("bench: help shown")

// tempDir makes the benchmark's working directory under c.dir; remove it with
// os.RemoveAll.
func (c *common) tempDir(name string) (string, error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return "", fmt.Errorf("bench: --dir %s: %w", c.dir, err)
	}
	d, err := os.MkdirTemp(c.dir, "prophet-bench-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("bench: make a directory under --dir %s: %w", c.dir, err)
	}
	return d, nil
}

// report is a benchmark's result.
type report interface {
	print(w io.Writer) error // as a table, for people
}

// write prints rep as one indented JSON object, or as a table.
func write(w io.Writer, asJSON bool, rep report) error {
	if !asJSON {
		return rep.print(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// progress writes one line of progress to stderr, with the time since start.
type progress struct {
	w     io.Writer
	start time.Time
}

func (p *progress) printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), strings.TrimSuffix(msg, "\n"))
}
