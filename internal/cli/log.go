package cli

import (
	"context"
	"flag"
)

var logCmd = &command{
	name:    "log",
	summary: "show the changeset log",
	detail: `
Prints changesets oldest first: by default the last --limit of them; with
--from SEQ, up to --limit of them starting at sequence number SEQ. --limit 0
means no limit. The output streams. With --json, one changeset object per
line.`,
	mode: openRead,
	json: true,
	min:  0, max: 0,
	setup: func(fs *flag.FlagSet) runFunc {
		limit := fs.Uint64("limit", 20, "show at most `N` changesets (0: all)")
		from := fs.Uint64("from", 0, "start at sequence number `SEQ` (default: the last --limit)")
		return func(ctx context.Context, c *call) error {
			latest := c.r.LatestSeq()
			start := *from
			if start == 0 {
				start = 1
				if *limit > 0 && latest > *limit {
					start = latest - *limit + 1
				}
			}
			if start > latest {
				return nil
			}
			it := c.r.Log(start)
			defer it.Close()
			for n := uint64(0); (*limit == 0 || n < *limit) && it.Next(); n++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				cs, err := it.Changeset()
				if err != nil {
					return err
				}
				if err := c.writeChangeset(cs, it.Raw()); err != nil {
					return err
				}
			}
			return it.Close()
		}
	},
}
