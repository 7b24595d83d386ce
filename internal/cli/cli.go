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
	"strings"

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
}

// commands is every subcommand, in the order prophet --help lists them.
var commands = []*command{
	initCmd, createCmd, updateCmd, deleteCmd, showCmd, listCmd, historyCmd,
	logCmd, infoCmd, verifyCmd, importCmd, exportCmd, benchCmd,
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
	global := newFlagSet("prophet")
	dirFlag := global.String("replica", "", "the replica directory")
	if err := global.Parse(args); errors.Is(err, flag.ErrHelp) {
		writeUsage(out)
		return exitOK
	} else if err != nil {
		return report(stderr, usagef("%v; run prophet --help", err), "")
	}
	if global.NArg() == 0 {
		return report(stderr, usagef("no command given; run prophet --help to see the commands"), "")
	}
	name, rest := global.Arg(0), global.Args()[1:]
	cmd := lookup(name)
	if cmd == nil {
		return report(stderr, usagef("unknown command %q; run prophet --help to see the commands", name), "")
	}
	c := &call{cmd: cmd, stdin: stdin, out: out, stderr: stderr}
	fs := newFlagSet(cmd.name)
	if !cmd.raw {
		fs.StringVar(dirFlag, "replica", *dirFlag, "the replica `DIR`ectory (default $PROPHET_REPLICA, else ./.prophet)")
	}
	if cmd.json {
		fs.BoolVar(&c.json, "json", false, "write JSON (shapes: prophet --help)")
	}
	runFn := cmd.run
	if cmd.setup != nil {
		runFn = cmd.setup(fs)
	}
	c.fs = fs
	if cmd.raw {
		c.args = rest
	} else {
		var err error
		c.args, err = parseInterspersed(fs, rest)
		if errors.Is(err, flag.ErrHelp) {
			writeCommandUsage(out, cmd, fs)
			return exitOK
		} else if err != nil {
			return report(stderr, usagef("%s: %v; run prophet %s --help", cmd.name, err, cmd.name), "")
		}
		if err := c.parseArgs(); err != nil {
			return report(stderr, err, "")
		}
	}
	c.dir = replicaDir(*dirFlag)
	if err := c.prepare(ctx); err != nil {
		return report(stderr, err, c.dir)
	}
	err := c.open()
	if err == nil {
		err = runFn(ctx, c)
		if c.r != nil {
			if cerr := c.r.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("closing the replica: %w", cerr)
			}
		}
	}
	if err != nil {
		out.Flush() // what was written before the error stays written
		return report(stderr, err, c.dir)
	}
	return exitOK
}

// prepare fills in the replica options: test hooks, and the creator for
// commands that write. Only they pay for finding the creator.
func (c *call) prepare(ctx context.Context) error {
	var err error
	if c.hooks, err = loadTestHooks(); err != nil {
		return err
	}
	c.hooks.apply(&c.opts)
	if c.cmd.mode == openWrite {
		c.opts.Creator = creator(ctx)
	}
	c.opts.ReadOnly = c.cmd.mode == openRead
	return nil
}

func (c *call) open() error {
	if c.cmd.mode == openNothing {
		return nil
	}
	r, err := replica.Open(c.dir, &c.opts)
	if err != nil {
		return err
	}
	c.r = r
	c.hooks.opened(r)
	return nil
}

// parseArgs checks the positional arguments against cmd.min, max and form.
func (c *call) parseArgs() error {
	cmd, rest := c.cmd, c.args
	if len(rest) < cmd.min || (cmd.max >= 0 && len(rest) > cmd.max) {
		return usagef("%s takes %s; run prophet %s --help", cmd.name, cmd.synopsis(), cmd.name)
	}
	if cmd.form&formType != 0 {
		if err := checkName("record type", rest[0]); err != nil {
			return err
		}
		c.typ, rest = rest[0], rest[1:]
	}
	if cmd.form&formID != 0 {
		c.id, rest = rest[0], rest[1:]
	}
	if cmd.form&formProps != 0 {
		var err error
		c.props, err = parseProps(rest)
		return err
	}
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

// newFlagSet makes a FlagSet that reports nothing itself: Main turns its
// errors into one-line messages and prints help to stdout.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments ("prophet list task --json"), up to a "--", after which
// everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos, tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return append(pos, tail...), nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		switch strings.TrimLeft(a, "-") {
		case "h", "help":
			return strings.HasPrefix(a, "-")
		}
	}
	return false
}

func (cmd *command) synopsis() string {
	if cmd.args == "" {
		return "no arguments"
	}
	return cmd.args
}

// replicaDir is --replica, else $PROPHET_REPLICA, else ./.prophet.
func replicaDir(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := os.Getenv("PROPHET_REPLICA"); v != "" {
		return v
	}
	return ".prophet"
}
