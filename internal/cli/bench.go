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
Runs prophet's benchmarks. Every argument goes to the benchmark package
(internal/bench), which has its own flags: they follow this text.`,
	mode: openNothing,
	raw:  true,
	run: func(ctx context.Context, c *call) error {
		if wantsHelp(c.args) {
			writeCommandUsage(c.out, c.cmd, c.fs)
			c.out.WriteString("\n")
			// bench prints its own help (of one benchmark, with
			// "bench append -h"). Help exits 0 whatever it returns.
			bench.Run(ctx, c.args, c.out, io.Discard)
			return nil
		}
		err := bench.Run(ctx, c.args, c.out, c.stderr)
		var ue *bench.UsageError
		switch {
		case errors.Is(err, flag.ErrHelp):
			return nil
		case errors.As(err, &ue):
			return usagef("%s", err.Error())
		}
		return err
	},
}
