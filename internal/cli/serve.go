package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prophet-sync/prophet/merge/httpsync"
)

var serveCmd = &command{
	name:    "serve",
	args:    "",
	summary: "serve this replica over HTTP to pull, clone and push",
	detail: `
Serves this replica over HTTP at --listen (default 127.0.0.1:7770, this
machine only), so that other machines can run prophet clone, pull and push
with http://ADDR as the replica. Prints "serving DIR on http://ADDR", then
logs each sync on stderr. The replica stays open for writing while it
serves. On SIGINT or SIGTERM it stops taking requests, finishes the ones
under way (a push being integrated ends at a changeset boundary within
--shutdown-timeout), closes the replica and exits 0.

There is no authentication yet, so serve binds only loopback addresses:
anyone who can reach the address can read and write the replica. To serve
another address anyway (a trusted network, or behind a proxy that
authenticates), pass --unsafe-no-auth; serve then says so on every start.
--addr-file FILE writes the address actually listened on (useful with port
0) into FILE once the server is ready.`,
	mode: openNothing,
	min:  0, max: 0,
	setup: func(fs *flag.FlagSet) runFunc {
		listen := fs.String("listen", "127.0.0.1:7770", "the `address` to listen on (host:port; port 0 picks a free one)")
		addrFile := fs.String("addr-file", "", "write the address listened on into `FILE` once ready")
		maxPush := fs.Int64("max-push-bytes", 256<<20, "the largest push body taken, in `bytes`")
		grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long to let requests under way finish on SIGINT/SIGTERM")
		unsafe := fs.Bool("unsafe-no-auth", false, "serve a non-loopback address with no authentication: anyone who reaches it can read and write")
		return func(ctx context.Context, c *call) error {
			if err := checkListen(*listen, *unsafe); err != nil {
				return err
			}
			if *unsafe {
				fmt.Fprintf(c.stderr, "prophet: WARNING: serving %s with no authentication (--unsafe-no-auth): anyone who can reach it can read and write this replica\n", *listen)
			}
			return c.serve(ctx, *listen, *addrFile, *maxPush, *grace)
		}
	},
}

func (c *call) serve(ctx context.Context, listen, addrFile string, maxPush int64, grace time.Duration) (err error) {
	l, err := c.openLocal(ctx, c.dir, true)
	if err != nil {
		return err
	}
	defer closeLocal(l, &err)
	log := slog.New(slog.NewTextHandler(c.stderr, nil))
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return userf(err, "cannot listen on %s: %v; pick another --listen address", listen, err)
	}
	addr := ln.Addr().String()
	// Handlers still running when the server is closed must end before
	// the replica closes.
	var inflight sync.WaitGroup
	h := httpsync.NewHandler(l, &httpsync.HandlerOptions{Logger: log, MaxPushBytes: maxPush})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Done()
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(c.out, "serving %s on http://%s\n", c.dir, addr)
	if err := c.out.Flush(); err != nil {
		ln.Close()
		return err
	}
	if addrFile != "" {
		if err := writeFileAtomic(addrFile, []byte(addr+"\n")); err != nil {
			ln.Close()
			return err
		}
	}
	log.Info("serving", "replica", l.R.UUID(), "dir", absDir(c.dir), "addr", addr)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		inflight.Wait()
		return fmt.Errorf("serving on %s: %w", addr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing the requests under way", "timeout", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still under way at the shutdown timeout; cutting them", "err", err)
		srv.Close()
	}
	inflight.Wait()
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// checkListen refuses an address that is not loopback unless unsafe: with
// no authentication yet, serving one would let anyone who reaches it write.
func checkListen(listen string, unsafe bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return usagef("--listen %q: %v; give host:port, e.g. 127.0.0.1:7770", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if unsafe {
		return nil
	}
	return userf(nil, "--listen %s is not a loopback address, and serve has no authentication yet: anyone who reaches it could read and write this replica; serve 127.0.0.1 (and put an authenticating proxy in front), or pass --unsafe-no-auth if every machine that can reach %s is trusted", listen, listen)
}

// writeFileAtomic writes b into path through a rename, so a reader sees all
// of it or nothing.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
