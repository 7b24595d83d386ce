package cli

import (
	"context"
	"flag"
)

var syncCmd = &command{
	name:    "sync",
	args:    "[PEER]",
	summary: "pull, then push: both sides end with everything either had",
	detail: `
prophet pull PEER, then prophet push PEER (see their --help): PEER is a
replica directory, the URL of a prophet serve, a foreign replica
(rt:http://HOST/?queue=NAME) or a peer name; without one, the peer named
origin. Pulling first settles every conflict here, so the push sends the
settled values; with a foreign replica that is the only safe order (a push
over a remote edit it has not pulled waits for the next sync).

Takes pull's and push's flags; --prefer is from this replica's side, as
everywhere. With --json, the pull's JSON line, then the push's.`,
	mode: openNothing,
	json: true,
	min:  0, max: 1,
	setup: func(fs *flag.FlagSet) runFunc {
		f := addSyncFlags(fs)
		return func(ctx context.Context, c *call) error {
			if err := c.sync(ctx, f, false); err != nil {
				return err
			}
			return c.sync(ctx, f, true)
		}
	},
}
