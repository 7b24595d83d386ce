package cli

import (
	"context"
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
	run: func(ctx context.Context, c *call) error {
		c.json = true
		for _, tc := range c.r.Counts() {
			if err := c.r.List(tc.Type, nil, c.recordLines(ctx)); err != nil {
				return err
			}
		}
		return nil
	},
}
