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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
