// Command prophet is the command line of the prophet replication engine.
// It only handles signals; internal/cli does the rest.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/prophet-sync/prophet/internal/cli"
)

func main() {
	// The first SIGINT or SIGTERM cancels ctx: the command stops at its
	// next check, keeping what it committed. Then the default action is
	// back, so a second one ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
