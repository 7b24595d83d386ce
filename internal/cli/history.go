package cli

import (
	"context"

	"github.com/prophet-sync/prophet/changeset"
)

var historyCmd = &command{
	name:    "history",
	args:    "TYPE ID",
	summary: "show the changesets that touched a record",
	detail: `
Prints every changeset that touched the record, oldest first, including
those of a deleted record. With --json, one changeset object per line.`,
	mode: openRead,
	json: true,
	min:  2, max: 2, form: formType | formID,
	run: func(ctx context.Context, c *call) error {
		id, err := c.resolve()
		if err != nil {
			return err
		}
		return c.r.History(c.typ, id, func(cs *changeset.Changeset) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return c.writeChangeset(cs, nil)
		})
	},
}
