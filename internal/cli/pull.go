package cli

import (
	"context"
	"flag"
)

var pullCmd = &command{
	name:    "pull",
	args:    "[SOURCE]",
	summary: "bring in the changesets another replica has and this one lacks",
	detail: `
Integrates into this replica everything SOURCE (a replica directory, the URL
of a prophet serve, or a peer name; without one, the peer named origin) has
that this one lacks: first the
decisions of its resolution database, then its changesets, skipping by the
merge tickets what is already here. Prints how many changesets were
integrated (settlements included), skipped, and conflicts settled; "already
up to date" when there was nothing to bring in.

A changeset that conflicts with this replica is settled, in order, when both
sides made the same change, by the resolution database (a decision recorded
for the same conflict, here or on any replica it came from), by --prefer
(mine keeps this replica's values, theirs takes SOURCE's; recorded for the
others), or, on a terminal, by asking. Otherwise the pull stops with exit 1
before that changeset, keeping everything before it, and says what
conflicts; run it again with --prefer to go on.

Replicas of different databases are refused unless --force. --dry-run
counts what a pull would read and what of it is new, and changes nothing;
it cannot tell whether there are conflicts. With --json, the pull shape of
prophet --help (the dry-run shape with --dry-run).

SOURCE may be a foreign replica, rt:http://HOST/?queue=NAME,
github:OWNER/REPO or phab:https://HOST (or a peer that names one): the
remote's changes since the last pull come in as changesets, with the
remote's old values, so an edit made there while you edited the same field
here is a conflict like any other. See prophet foreign --help for the
credentials and the sync operations.

For Phabricator, a pull syncs the Differential revisions the token's user
is responsible for (author or reviewer, directly or through a project),
with their diffs, comments and history; phab:https://HOST?responsible=NAME
adds a query (a username, or #project), kept for every later pull. A first
pull reaches 30 days back; --since 90d (or 12w, 720h) reaches further, and
the window stays that wide.

--live keeps pulling from a served replica (SOURCE an http(s) URL, or a
peer with one) until interrupted: it subscribes to the server's live feed
(GET /v1/live) and pulls each time the server's log grows, so this replica
follows it within milliseconds. It prints a line for each pull that brought
something in (a JSON line with --json), reconnects by itself after a
network failure, and stops with exit 1 at a conflict nothing settles (give
--prefer to settle them) or a refused token.`,
	mode: openNothing,
	json: true,
	min:  0, max: 1,
	setup: func(fs *flag.FlagSet) runFunc {
		f := addSyncFlags(fs)
		fs.BoolVar(&f.live, "live", false, "keep pulling from a served replica as its log grows, until interrupted")
		return func(ctx context.Context, c *call) error { return c.sync(ctx, f, false) }
	},
}
