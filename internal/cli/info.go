package cli

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/google/uuid"
)

var infoCmd = &command{
	name:    "info",
	summary: "show the replica's identity, state and merge tickets",
	detail: `
Prints the replica and database UUIDs, the directory, the latest sequence
number, the state digest (equal digests mean equal records), the live records
per type and the merge tickets (the last changeset integrated from each
origin replica).`,
	mode: openRead,
	json: true,
	run: func(ctx context.Context, c *call) error {
		r := c.r
		dir, err := filepath.Abs(c.dir)
		if err != nil {
			return err
		}
		info := infoJSON{Replica: r.UUID().String(), Database: r.DatabaseUUID().String(), Dir: dir,
			LatestSeq: r.LatestSeq(), Digest: r.Digest().String(),
			Counts: map[string]uint64{}, Tickets: map[string]uint64{}}
		for _, tc := range r.Counts() {
			info.Counts[tc.Type] = tc.Count
		}
		tickets := r.Tickets()
		for origin, seq := range tickets {
			info.Tickets[origin.String()] = seq
		}
		if c.json {
			return writeJSON(c.out, info)
		}
		fmt.Fprintf(c.out, "replica     %s\ndatabase    %s\ndirectory   %s\nlatest seq  %d\ndigest      %s\n",
			info.Replica, info.Database, info.Dir, info.LatestSeq, info.Digest)
		fmt.Fprintf(c.out, "records:\n")
		for _, tc := range r.Counts() {
			fmt.Fprintf(c.out, "  %-10s %d\n", tc.Type, tc.Count)
		}
		fmt.Fprintf(c.out, "merge tickets:\n")
		byUUID := func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }
		for _, o := range slices.SortedFunc(maps.Keys(tickets), byUUID) {
			fmt.Fprintf(c.out, "  %s %d\n", o, tickets[o])
		}
		return c.writeErr()
	},
}
