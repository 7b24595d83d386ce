package cli

import (
	"context"
	"fmt"
)

var verifyCmd = &command{
	name:    "verify",
	summary: "check the replica against a replay of its log",
	detail: `
Replays the whole log and checks every invariant of the replica: no gap in
the log, every changeset applies, and the records, indexes, LUIDs, digest and
merge tickets equal what the replay gives. Prints each problem found, and
exits 1 if there is any. With --json, the verify shape of prophet --help.`,
	mode: openRead,
	json: true,
	run: func(ctx context.Context, c *call) error {
		rep, err := c.r.Verify(ctx)
		if err != nil {
			return err
		}
		problems := append([]string{}, rep.Problems...)
		if c.json {
			if err := writeJSON(c.out, verifyJSON{OK: len(problems) == 0, Changesets: rep.Changesets,
				Records: rep.Records, Problems: problems, Truncated: rep.Truncated}); err != nil {
				return err
			}
		} else {
			for _, p := range problems {
				fmt.Fprintf(c.out, "problem: %s\n", p)
			}
			if rep.Truncated > 0 {
				fmt.Fprintf(c.out, "… and %d more problems\n", rep.Truncated)
			}
			if len(problems) == 0 {
				fmt.Fprintf(c.out, "ok: %s, %s\n", count(rep.Changesets, "changeset"), count(rep.Records, "record"))
			}
		}
		if n := len(problems) + rep.Truncated; n > 0 {
			return fmt.Errorf("verify found %d problems in %s (listed on stdout); keep a copy of the directory and report them, then re-clone the replica from a peer", n, c.dir)
		}
		return c.writeErr()
	},
}
