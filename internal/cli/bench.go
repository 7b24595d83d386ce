package cli

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/prophet-sync/prophet/internal/bench"
)

var benchCmd = &command{
	name:    "bench",
	args:    "[bench flags]",
	summary: "measure this machine's prophet (flags belong to internal/bench)",
	detail: `
Runs prophet's benchmarks. Every argument goes to the benchmark package,
which has its own flags; --help lists them after this text.`,
	mode: openNothing,
	raw:  true,
	setup: func(fs *flag.FlagSet) runFunc {
		return func(ctx context.Context, c *call) error {
			if wantsHelp(c.args) {
				writeCommandUsage(c.out, c.cmd, fs)
				c.out.WriteString("\nbench flags:\n")
				// Help is help even if the benchmarks cannot run here.
				bench.Run(ctx, []string{"-h"}, c.out, io.Discard)
				return nil
			}
			err := bench.Run(ctx, c.args, c.out, c.stderr)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	},
}
