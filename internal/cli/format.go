package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
)

// The human output of records and changesets. The JSON output is in
// json.go; these functions choose between the two.

// writeRecord writes rec in full (show).
func (c *call) writeRecord(rec *replica.Record) error {
	if c.json {
		return writeJSON(c.out, toRecordJSON(rec))
	}
	fmt.Fprintf(c.out, "%s %d %s\n", rec.Type, rec.LUID, rec.UUID)
	fmt.Fprintf(c.out, "created %s by %s on %s\n", jsonTime(rec.Created), quote(rec.Creator), rec.Origin)
	for _, p := range rec.Props {
		fmt.Fprintf(c.out, "  %s\n", formatProp(p.Name, p.Value))
	}
	return c.writeErr()
}

// writeRecordLine writes rec as one line (list): LUID, UUID, properties.
func (c *call) writeRecordLine(rec *replica.Record) error {
	if c.json {
		return writeJSON(c.out, toRecordJSON(rec))
	}
	fmt.Fprintf(c.out, "%d %s", rec.LUID, rec.UUID)
	for _, p := range rec.Props {
		fmt.Fprintf(c.out, " %s", formatProp(p.Name, p.Value))
	}
	c.out.WriteByte('\n')
	return c.writeErr()
}

// recordLines is the replica.List callback of list and export: one line a
// record, stopping at an interrupt or a failed write.
func (c *call) recordLines(ctx context.Context) func(*replica.Record) error {
	return func(rec *replica.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return c.writeRecordLine(rec)
	}
}

// writeChangeset writes cs (history, log). raw is its canonical encoding
// when the caller has it, to hash without encoding again; else nil.
func (c *call) writeChangeset(cs *changeset.Changeset, raw []byte) error {
	if c.json {
		h, err := hashOf(cs, raw)
		if err != nil {
			return err
		}
		return writeJSON(c.out, cs.ToJSON(h))
	}
	c.writeChangesetHeader(cs)
	for _, ch := range cs.Changes {
		l, err := c.r.LUID(ch.RecordType, ch.Record)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "  %s %s %d %s\n", ch.Op, ch.RecordType, l, ch.Record)
		for _, p := range ch.Props {
			switch ch.Op {
			case changeset.Add:
				fmt.Fprintf(c.out, "    %s\n", formatProp(p.Name, p.New))
			case changeset.Delete:
				fmt.Fprintf(c.out, "    %s (removed)\n", formatProp(p.Name, p.Old))
			default:
				fmt.Fprintf(c.out, "    %s: %s -> %s\n", p.Name, orUnset(p.Old), orUnset(p.New))
			}
		}
	}
	return c.writeErr()
}

func hashOf(cs *changeset.Changeset, raw []byte) (changeset.Hash, error) {
	if raw != nil {
		return changeset.HashOf(raw), nil
	}
	return cs.Hash()
}

func orUnset(v string) string {
	if v == "" {
		return "(unset)"
	}
	return quote(v)
}

// writeErr reports a failed write to stdout (a closed pipe, a full disk),
// so that a streaming command stops instead of reading on. bufio.Writer
// keeps the first error and returns it from every later write.
func (c *call) writeErr() error {
	_, err := c.out.Write(nil)
	return err
}

// count is "1 record", "2 records".
func count(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// writeChangesetHeader writes the first line of a changeset as log and
// watch print it.
func (c *call) writeChangesetHeader(cs *changeset.Changeset) {
	var flags []string
	if cs.IsNullification {
		flags = append(flags, " nullification")
	}
	if cs.IsResolution {
		flags = append(flags, " resolution")
	}
	fmt.Fprintf(c.out, "changeset %d %s by %s (origin %s@%d)%s\n", cs.Seq, jsonTime(cs.Created),
		quote(cs.Creator), cs.Origin, cs.OriginSeq, strings.Join(flags, ""))
}
