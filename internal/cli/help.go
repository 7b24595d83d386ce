package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

const usageHead = `prophet keeps records (typed, flat maps of properties) in a replica: an
append-only log of changesets that replicas exchange.

usage: prophet [--replica DIR] COMMAND [flags] [arguments]

commands:
`

const usageTail = `
The replica directory is --replica DIR (given before or after the command
name), else $PROPHET_REPLICA, else ./.prophet in the current directory.

A record ID is its LUID (a small local number: 1, 2, 3 …), its full UUID, or
a unique prefix of 4 or more hex digits of its UUID. Properties are given as
name=value; an empty value (name=) means absent.

Environment:
  PROPHET_REPLICA  the replica directory, when --replica is not given
  PROPHET_EMAIL    the creator recorded on new changesets; when unset,
                   git config user.email, else the OS user name

--json (show, list, history, log, info, verify, clone, pull, push,
conflicts, peer list, token list; export always) writes one JSON object per line. Absent
values are "", times RFC 3339 in UTC (internal/cli/json.go says more):
  record     {"type","uuid","luid","creator","origin","created","props":{NAME:VALUE}}
  changeset  {"seq","origin","origin_seq","creator","created","is_nullification",
              "is_resolution","hash","changes":[{"type","uuid","op",
              "props":[{"name","old","new"}]}]}
  info       {"replica","database","dir","latest_seq","digest","counts":{TYPE:N},
              "tickets":{ORIGIN:SEQ}}
  verify     {"ok","changesets","records","problems":[...],"truncated"}
  clone      {"source","dir","replica","database","changesets","records",
              "resolutions","seconds"}
  pull       {"direction","source","target","peer","source_replica","read",
              "skipped","integrated","conflicts","resolutions","up_to_date"}
  dry run    {"direction","dry_run","source","target","peer","source_replica",
              "read","new","already_here","resolutions"}
  conflict   {"origin","seq","stamp","how","fingerprint","type","uuid","luid",
              "source_live","target_live","final_live",
              "props":[{"name","base","source","target","final"}]}
  peer       {"name","location","token_env"}
  token      {"name","scope","created"}

Exit codes: 0 success, 1 error, 2 usage error.
Run prophet COMMAND --help (or prophet help COMMAND) for a command's flags
and arguments.
`

func writeUsage(w io.Writer) {
	io.WriteString(w, usageHead)
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	io.WriteString(w, usageTail)
}

func writeCommandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	flags := "[flags] "
	if cmd.raw {
		flags = "" // its flags are in cmd.args
	}
	fmt.Fprintf(w, "usage: prophet %s %s%s\n\n%s\n", cmd.name, flags, cmd.args, cmd.summary)
	if cmd.detail != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.detail))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	io.WriteString(w, "\nflags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
