package cli

import (
	"context"
	"flag"

	"github.com/prophet-sync/prophet/replica"
)

var exportCmd = &command{
	name:    "export",
	summary: "write every live record as JSON lines (what prophet import reads)",
	detail: `
Writes one record object per line (the record shape of prophet --help) for
every live record of every type, types in name order, records in UUID order.
The output streams, and prophet import reads it back: export | import into
another replica gives it the same records (the same digest). --json is
accepted and changes nothing.`,
	mode: openRead,
	json: true,
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, c *call) error {
			c.json = true
			for _, tc := range c.r.Counts() {
				err := c.r.List(tc.Type, nil, func(rec *replica.Record) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					return c.writeRecordLine(rec)
				})
				if err != nil {
					return err
				}
			}
			return nil
		}
	},
}
