package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
)

// These read and write the record the user named with TYPE ID. Each does a
// constant number of point reads, whatever the size of the replica.

// resolve turns the ID the user typed into a record UUID. Deleted records
// resolve too, so that history can show them.
func (c *call) resolve() (uuid.UUID, error) {
	u, err := c.r.ResolveID(c.typ, c.id)
	if errors.Is(err, replica.ErrNotFound) {
		return uuid.Nil, userf(err, "no %s with ID %q in this replica; run prophet list %s to see the IDs", c.typ, c.id, c.typ)
	}
	return u, err
}

// record reads the live record.
func (c *call) record() (*replica.Record, error) {
	u, err := c.resolve()
	if err != nil {
		return nil, err
	}
	rec, err := c.r.Get(c.typ, u)
	if errors.Is(err, replica.ErrNotFound) {
		return nil, c.deleted(err, u)
	}
	return rec, err
}

func (c *call) deleted(err error, u uuid.UUID) error {
	return userf(err, "%s %s (%s) was deleted; run prophet history %s %s to see its changesets", c.typ, c.id, u, c.typ, c.id)
}

// editID commits an edit of the named record.
func (c *call) editID(ctx context.Context, verb string, op replica.EditOp, set map[string]string) error {
	u, err := c.resolve()
	if err != nil {
		return err
	}
	return c.edit(ctx, verb, replica.Edit{Type: c.typ, Record: u, Op: op, Set: set})
}

// edit commits one edit and says what happened: "VERB TYPE LUID UUID", or
// "no change".
func (c *call) edit(ctx context.Context, verb string, e replica.Edit) error {
	cs, err := c.r.Commit(ctx, e)
	if errors.Is(err, replica.ErrNotFound) {
		return c.deleted(err, e.Record)
	}
	if err != nil {
		return err
	}
	if cs == nil {
		_, err = fmt.Fprintln(c.out, "no change")
		return err
	}
	u := cs.Changes[0].Record // one edit, one change
	l, err := c.r.LUID(e.Type, u)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.out, "%s %s %d %s\n", verb, e.Type, l, u)
	return err
}
