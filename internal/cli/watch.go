package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge/httpsync"
)

var watchCmd = &command{
	name:    "watch",
	args:    "SOURCE",
	summary: "print the changesets of a served replica as they are committed",
	detail: `
Subscribes to the live feed of the served replica SOURCE (an http(s) URL,
or a peer with one; GET /v1/live) and prints each changeset committed there
from now on, as soon as it is durable, until interrupted. --history prints
the whole log first. --type TYPE (repeatable) keeps only changesets that
touch records of that type. It reconnects by itself after a network
failure, missing nothing and printing nothing twice. With --json, one
changeset a line, in the shape of prophet log --json (seq is the server's).
This replica is not touched: SOURCE may be any served replica.`,
	mode: openNothing,
	json: true,
	min:  1, max: 1,
	setup: func(fs *flag.FlagSet) runFunc {
		history := fs.Bool("history", false, "print the whole log first")
		var types stringList
		fs.Var(&types, "type", "only changesets touching records of this `TYPE` (repeatable)")
		return func(ctx context.Context, c *call) error {
			loc, err := c.locate(c.args[0])
			if err != nil {
				return err
			}
			if loc.url == "" {
				return usagef("watch follows a served replica: give the URL of a prophet serve, or a peer that has one")
			}
			r, err := c.dialLoc(ctx, loc)
			if err != nil {
				return err
			}
			opts := &httpsync.WatchOptions{Types: types}
			if !*history {
				info, err := r.Info(ctx)
				if err != nil {
					return c.httpErr(err, loc)
				}
				opts.After = info.Latest
			}
			err = r.Watch(ctx, opts, func(cs *changeset.Changeset) error {
				if err := c.writeRemoteChangeset(cs); err != nil {
					return err
				}
				return c.out.Flush()
			})
			if ctx.Err() != nil {
				return nil
			}
			return c.httpErr(err, loc)
		}
	},
}

// writeRemoteChangeset prints a changeset of another replica: as log does,
// with UUIDs instead of this replica's LUIDs.
func (c *call) writeRemoteChangeset(cs *changeset.Changeset) error {
	if c.json {
		h, err := cs.Hash()
		if err != nil {
			return err
		}
		return writeJSON(c.out, cs.ToJSON(h))
	}
	c.writeChangesetHeader(cs)
	for _, ch := range cs.Changes {
		fmt.Fprintf(c.out, "  %s %s %s\n", ch.Op, ch.RecordType, ch.Record)
		for _, p := range ch.Props {
			fmt.Fprintf(c.out, "    %s: %s -> %s\n", p.Name, quote(p.Old), quote(p.New))
		}
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
