// Package cli is the prophet command line: one file per command, this file
// for dispatch, global flags and the exit-code contract.
//
// Exit codes: 0 success (and --help), 1 an error, 2 a usage error. Every
// error is exactly one line on stderr: "prophet: <what is wrong>; <what to
// do>" (errors.go).
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prophet-sync/prophet/replica"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// mode says what a command needs opened before it runs.
type mode uint8

const (
	openNothing mode = iota // the command opens what it needs itself
	openRead                // the replica, read-only
	openWrite               // the replica, for writing, with a creator
)

// command is one prophet subcommand. Each lives in its own file.
type command struct {
	name    string
	args    string // positional arguments, for the usage line
	summary string // one line for prophet --help
	detail  string // the body of prophet NAME --help
	mode    mode
	json    bool // takes --json
	min     int  // positional arguments required
	max     int  // positional arguments allowed; -1: any number
	form    form // what the positional arguments are
	// raw commands get their arguments unparsed (bench has its own flags).
	raw bool
	// run runs the command; or, for a command with flags of its own, setup
	// registers them and returns what runs it.
	run   runFunc
	setup func(fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, c *call) error

// form says what a command's positional arguments are, so that Main checks
// them, before the replica is opened, the same way for every command.
type form uint8

const (
	formType  form = 1 << iota // the first is a record TYPE
	formID                     // the next is a record ID
	formProps                  // the rest are prop=value
)

// call is one run of a command: its arguments, streams and replica.
type call struct {
	cmd    *command
	fs     *flag.FlagSet
	args   []string          // positional arguments
	typ    string            // with formType
	id     string            // with formID, as typed
	props  map[string]string // with formProps
	stdin  io.Reader
	out    *bufio.Writer // stdout; flushed by Main
	stderr io.Writer
	dir    string // the replica directory
	json   bool
	opts   replica.Options
	hooks  *testHooks
	r      *replica.Replica // nil for openNothing commands
	// sess is set for a command that prophet serve runs for another
	// process over its socket (socket.go): that process's directory,
	// environment and creator, and the replica serve holds.
	sess *session
	// since is a Phabricator pull's --since.
	since time.Duration
}

// commands is every subcommand, in the order prophet --help lists them.
var commands = []*command{
	initCmd, cloneCmd, createCmd, updateCmd, deleteCmd, showCmd, listCmd,
	historyCmd, logCmd, infoCmd, verifyCmd, importCmd, exportCmd, pullCmd,
	pushCmd, syncCmd, watchCmd, serveCmd, tokenCmd, conflictsCmd, peerCmd, foreignCmd, demoCmd, benchCmd,
}

// Main runs prophet with args (without the program name) and returns the
// exit code. ctx is cancelled on SIGINT/SIGTERM by cmd/prophet.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	out := bufio.NewWriterSize(stdout, 32<<10)
	code := run(ctx, args, stdin, out, stderr)
	if err := out.Flush(); err != nil && code == exitOK {
		return report(stderr, fmt.Errorf("writing output: %w", err), "")
	}
	return code
}

func run(ctx context.Context, args []string, stdin io.Reader, out *bufio.Writer, stderr io.Writer) int {
	c, runFn, err := parse(args, out, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK // parse wrote the help
	} else if err != nil {
		return report(stderr, err, "")
	}
	c.stdin, c.out, c.stderr = stdin, out, stderr
	if code, ok := c.forward(ctx, args); ok {
		return code
	}
	if err := c.exec(ctx, runFn); err != nil {
		out.Flush() // what was written before the error stays written
		return report(stderr, err, c.dir)
	}
	return exitOK
}

// exec opens what the command needs, runs it and closes the replica.
func (c *call) exec(ctx context.Context, runFn runFunc) error {
	if err := c.prepare(ctx); err != nil {
		return err
	}
	if err := c.open(ctx); err != nil {
		return err
	}
	if c.sess != nil {
		ctx = replica.WithCreator(ctx, c.sess.creator)
	}
	err := runFn(ctx, c)
	if c.r != nil && !c.shared(c.r.Dir()) {
		if cerr := c.r.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing the replica: %w", cerr)
		}
	}
	return err
}

// prepare fills in the replica options: test hooks, and the creator for
// commands that write. Only they pay for finding the creator.
func (c *call) prepare(ctx context.Context) error {
	var err error
	if c.hooks, err = loadTestHooks(c.getenv); err != nil {
		return err
	}
	c.hooks.apply(&c.opts)
	if c.cmd.mode == openWrite {
		c.opts.Creator = c.creator(ctx)
	}
	c.opts.ReadOnly = c.cmd.mode == openRead
	// Another prophet command on the same replica is usually done within
	// milliseconds: wait for it rather than fail.
	c.opts.LockWait = lockWait
	if v := c.getenv("PROPHET_LOCK_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return usagef("PROPHET_LOCK_WAIT=%q is not a duration (like 3s or 500ms)", v)
		}
		c.opts.LockWait = d
	}
	return nil
}

func (c *call) open(ctx context.Context) error {
	if c.cmd.mode == openNothing {
		return nil
	}
	if c.shared(c.dir) {
		c.r = c.sess.shared.R
		return nil
	}
	r, err := replica.OpenContext(ctx, c.dir, &c.opts)
	if err != nil {
		return err
	}
	c.r = r
	c.hooks.opened(r)
	return nil
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// lockWait is how long a command waits for another process to close the
// replica before it reports it in use; $PROPHET_LOCK_WAIT overrides it.
const lockWait = 3 * time.Second
