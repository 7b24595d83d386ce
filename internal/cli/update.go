package cli

import (
	"context"

	"github.com/prophet-sync/prophet/replica"
)

var updateCmd = &command{
	name:    "update",
	args:    "TYPE ID prop=value… [prop=]",
	summary: "change properties of a record",
	detail: `
Sets each property to its value; prop= (an empty value) unsets it. Prints
"updated TYPE LUID UUID", or "no change" when every property already has
that value (nothing is written then).`,
	mode: openWrite,
	min:  3, max: -1, form: formType | formID | formProps,
	run: func(ctx context.Context, c *call) error {
		return c.editID(ctx, "updated", replica.Update, c.props)
	},
}
