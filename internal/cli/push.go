package cli

import (
	"context"
	"flag"
)

var pushCmd = &command{
	name:    "push",
	args:    "[TARGET]",
	summary: "send this replica's changesets to another replica",
	detail: `
Integrates into TARGET (a replica directory, the URL of a prophet serve, or a
peer name; without one, the peer named origin) everything this replica has
that TARGET lacks: the same as running prophet pull in TARGET with this
replica as the source. Nothing of TARGET's comes back; pull for that. A
served TARGET settles conflicts itself (no prompt): a conflict nothing
settles stops the push, and --prefer goes on.

TARGET may be a foreign replica, rt:http://HOST/?queue=NAME (or a peer that
names one): every change since the last push becomes a sync operation, one
record at a time, several records at once; it prints how many changes were
sent, failed and wait, and exits 1 when one failed (prophet foreign ops
says why). A change RT made since the last pull is not overwritten: the
operation waits; pull first (prophet sync does both).

--prefer is from this replica's side, as everywhere: mine keeps this
replica's values, theirs keeps TARGET's. The rest is as in prophet pull
--help: the resolution database, identical changes, the prompt on a
terminal, --force, --dry-run, and the pull shape of prophet --help with
--json.`,
	mode: openNothing,
	json: true,
	min:  0, max: 1,
	setup: func(fs *flag.FlagSet) runFunc {
		f := addSyncFlags(fs)
		return func(ctx context.Context, c *call) error { return c.sync(ctx, f, true) }
	},
}
