package cli

import (
	"context"
)

var listCmd = &command{
	name:    "list",
	args:    "TYPE [prop=value…]",
	summary: "list the records of a type",
	detail: `
Prints one line per live record of TYPE, in UUID order: LUID, UUID and its
name=value properties. Each prop=value keeps only the records whose property
has that value; prop= keeps those without the property. The output streams:
memory does not grow with the number of records. With --json, one record
object per line.`,
	mode: openRead,
	json: true,
	min:  1, max: -1, form: formType | formProps,
	run: func(ctx context.Context, c *call) error {
		return c.r.List(c.typ, c.props, c.recordLines(ctx))
	},
}
