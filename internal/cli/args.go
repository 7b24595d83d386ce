package cli

import (
	"errors"
	"flag"
	"io"
	"strings"
)

// parse reads the command line into a call and what runs it. When it was
// asked for help, it writes the help to out and returns flag.ErrHelp.
// Every other error is a usage error.
func parse(args []string, out io.Writer, getenv func(string) string) (*call, runFunc, error) {
	global := newFlagSet("prophet")
	dirFlag := global.String("replica", "", "the replica directory")
	if err := global.Parse(args); errors.Is(err, flag.ErrHelp) {
		writeUsage(out)
		return nil, nil, err
	} else if err != nil {
		return nil, nil, usagef("%v; run prophet --help", err)
	}
	if global.NArg() == 0 {
		return nil, nil, usagef("no command given; run prophet --help to see the commands")
	}
	name, rest := global.Arg(0), global.Args()[1:]
	if name == "help" { // prophet help [COMMAND]
		if len(rest) == 0 {
			return parse([]string{"--help"}, out, getenv)
		}
		return parse([]string{rest[0], "--help"}, out, getenv)
	}
	cmd := lookup(name)
	if cmd == nil {
		return nil, nil, usagef("unknown command %q; run prophet --help to see the commands", name)
	}
	c := &call{cmd: cmd, fs: newFlagSet(cmd.name)}
	if !cmd.raw {
		c.fs.StringVar(dirFlag, "replica", *dirFlag, "the replica `DIR`ectory (default $PROPHET_REPLICA, else ./.prophet)")
	}
	if cmd.json {
		c.fs.BoolVar(&c.json, "json", false, "write JSON (shapes: prophet --help)")
	}
	runFn := cmd.run
	if cmd.setup != nil {
		runFn = cmd.setup(c.fs)
	}
	if cmd.raw {
		c.args = rest
	} else {
		var err error
		c.args, err = parseInterspersed(c.fs, rest)
		if errors.Is(err, flag.ErrHelp) {
			writeCommandUsage(out, cmd, c.fs)
			return nil, nil, err
		} else if err != nil {
			return nil, nil, usagef("%s: %v; run prophet %s --help", cmd.name, err, cmd.name)
		}
		if err := c.parseArgs(); err != nil {
			return nil, nil, err
		}
	}
	c.dir = replicaDir(*dirFlag, getenv)
	return c, runFn, nil
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
func replicaDir(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := getenv("PROPHET_REPLICA"); v != "" {
		return v
	}
	return ".prophet"
}
