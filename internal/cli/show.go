package cli

import (
	"context"
)

var showCmd = &command{
	name:    "show",
	args:    "TYPE ID",
	summary: "show a record",
	detail: `
Prints the record: "TYPE LUID UUID", who created it when and on which
replica, then one name=value line per property. With --json, the record
shape of prophet --help.`,
	mode: openRead,
	json: true,
	min:  2, max: 2, form: formType | formID,
	run: func(ctx context.Context, c *call) error {
		rec, err := c.record()
		if err != nil {
			return err
		}
		return c.writeRecord(rec)
	},
}
