package cli

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
)

var initCmd = &command{
	name:    "init",
	summary: "create a new replica of a new database",
	detail: `
Creates the replica directory (--replica DIR, $PROPHET_REPLICA or ./.prophet)
with a new replica UUID and a new database UUID, and prints both.`,
	mode: openNothing,
	run: func(ctx context.Context, c *call) error {
		r, err := replica.Init(c.dir, uuid.Nil, &c.opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "initialized replica %s (database %s) in %s\n", r.UUID(), r.DatabaseUUID(), c.dir)
		return r.Close()
	},
}
