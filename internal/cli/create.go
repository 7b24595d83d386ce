package cli

import (
	"context"

	"github.com/prophet-sync/prophet/replica"
)

var createCmd = &command{
	name:    "create",
	args:    "TYPE [prop=value…]",
	summary: "create a record",
	detail: `
Creates a record of TYPE with the given properties (an empty value leaves the
property out) and prints "created TYPE LUID UUID".`,
	mode: openWrite,
	min:  1, max: -1, form: formType | formProps,
	run: func(ctx context.Context, c *call) error {
		return c.edit(ctx, "created", replica.Edit{Type: c.typ, Op: replica.Create, Set: c.props})
	},
}
