package cli

import (
	"context"

	"github.com/prophet-sync/prophet/replica"
)

var deleteCmd = &command{
	name:    "delete",
	args:    "TYPE ID",
	summary: "delete a record",
	detail: `
Deletes the record and prints "deleted TYPE LUID UUID". Its history stays:
prophet history TYPE ID still shows it.`,
	mode: openWrite,
	min:  2, max: 2, form: formType | formID,
	run: func(ctx context.Context, c *call) error {
		return c.editID(ctx, "deleted", replica.Delete, nil)
	},
}
