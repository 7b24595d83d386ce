package cli

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/prophet-sync/prophet/resolution"
)

var conflictsCmd = &command{
	name:    "conflicts",
	summary: "list how conflicts were settled (the resolution database)",
	detail: `
Lists every decision in the replica's resolution database, oldest first:
when, which replica decided and how (resolver:mine, resolver:theirs, prompt,
...), the record (TYPE LUID UUID; the LUID is missing when this replica has
never seen the record), and per property in conflict

  name: base → source | target ⇒ final

base being the value both sides started from, source what the incoming
change made of it, target what the deciding replica had, and final how it
was settled ((unset) is no value). A replica uses these decisions to settle
the same conflict the same way when it meets it again, without asking. With
--json, the conflict shape of prophet --help, one per line.`,
	mode: openNothing,
	json: true,
	min:  0, max: 0,
	run: func(ctx context.Context, c *call) (err error) {
		l, err := c.openLocal(ctx, c.dir, false)
		if err != nil {
			return err
		}
		defer c.closeLocal(l, &err)
		var ds []resolution.Decision
		if l.Res != nil {
			if err := l.Res.All(func(d resolution.Decision) error { ds = append(ds, d); return ctx.Err() }); err != nil {
				return err
			}
		}
		slices.SortFunc(ds, func(a, b resolution.Decision) int {
			return cmp.Or(cmp.Compare(a.Stamp, b.Stamp), bytes.Compare(a.Origin[:], b.Origin[:]), cmp.Compare(a.Seq, b.Seq))
		})
		if len(ds) == 0 && !c.json {
			fmt.Fprintln(c.out, "no conflicts recorded")
		}
		self := l.R.UUID()
		for _, d := range ds {
			cf := &d.Conflict
			luid, err := l.R.LUID(cf.Type, cf.Record)
			if err != nil {
				return err
			}
			if c.json {
				if err := writeJSON(c.out, toConflictJSON(&d, luid)); err != nil {
					return err
				}
				continue
			}
			by := d.Origin.String()
			if d.Origin == self {
				by += " (this replica)"
			}
			fmt.Fprintf(c.out, "%s %s by replica %s\n", jsonTime(time.Unix(0, d.Stamp)), d.How, by)
			if luid > 0 {
				fmt.Fprintf(c.out, "  %s %d %s\n", cf.Type, luid, cf.Record)
			} else {
				fmt.Fprintf(c.out, "  %s %s (not here)\n", cf.Type, cf.Record)
			}
			if !cf.Source.Live || !cf.Target.Live || !d.Final.Live {
				fmt.Fprintf(c.out, "    the record: %s | %s ⇒ %s\n", liveness(cf.Source), liveness(cf.Target), liveness(d.Final))
			}
			for i, p := range cf.Base {
				fmt.Fprintf(c.out, "    %s: %s → %s | %s ⇒ %s\n", p.Name, orUnset(p.Value),
					orUnset(cf.Source.Props[i].Value), orUnset(cf.Target.Props[i].Value), orUnset(d.Final.Props[i].Value))
			}
		}
		return c.writeErr()
	},
}

func liveness(o resolution.Outcome) string {
	if o.Live {
		return "live"
	}
	return "deleted"
}
