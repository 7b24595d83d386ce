package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/github"
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

Once the replica has tokens (prophet token add), every request must carry
one (Authorization: Bearer TOKEN; the CLI sends $PROPHET_TOKEN): read
tokens pull and clone, write tokens also push. serve reads REPLICA/
tokens.json at start and again on SIGHUP (kill -HUP PID), so a token added
or revoked meanwhile counts from then on. With no tokens, anyone who can
reach the address can read and write the replica, so serve then binds only
loopback addresses; to serve another address with no tokens anyway (a
trusted network, or behind a proxy that authenticates), pass
--unsafe-no-auth; serve then says so on every start.

--tls-cert FILE --tls-key FILE serve HTTPS (TLS 1.2 or later) with that
certificate chain and key (PEM): clients use https://ADDR, and trust the
certificate as any Go program does (the system's roots, or $SSL_CERT_FILE).
Beyond loopback, serve needs TLS too, since a token would cross the
network in clear text: to serve plain HTTP there anyway (behind a
TLS-terminating proxy, on a trusted network), pass --unsafe-no-tls; serve
then says so on every start.

GitHub's webhooks go to POST /v1/webhooks/github: they authenticate by
their X-Hub-Signature-256 (HMAC of the body with the secret in
$PROPHET_GITHUB_WEBHOOK_SECRET; 401 otherwise), not by tokens. Issues and
issue_comment events of a repository this replica syncs (prophet pull
github:OWNER/REPO once made its foreign replica) become sync operations,
run at once; prophet foreign ops shows them.

Live subscribers (GET /v1/live, prophet watch, pull --live) are told the
server is going away at shutdown. --addr-file FILE writes the address
actually listened on (host:port; useful with port 0) into FILE once the
server is ready.`,
	mode: openNothing,
	min:  0, max: 0,
	setup: func(fs *flag.FlagSet) runFunc {
		listen := fs.String("listen", "127.0.0.1:7770", "the `address` to listen on (host:port; port 0 picks a free one)")
		addrFile := fs.String("addr-file", "", "write the address listened on into `FILE` once ready")
		maxPush := fs.Int64("max-push-bytes", 256<<20, "the largest push body taken, in `bytes`")
		grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long to let requests under way finish on SIGINT/SIGTERM")
		unsafe := fs.Bool("unsafe-no-auth", false, "serve a non-loopback address although the replica has no tokens: anyone who reaches it can read and write")
		unsafeTLS := fs.Bool("unsafe-no-tls", false, "serve a non-loopback address over plain HTTP: tokens and data cross the network in clear text")
		certFile := fs.String("tls-cert", "", "serve HTTPS with the certificate chain in this PEM `FILE` (with --tls-key)")
		keyFile := fs.String("tls-key", "", "the private key of --tls-cert, a PEM `FILE`")
		return func(ctx context.Context, c *call) error {
			if _, _, err := net.SplitHostPort(*listen); err != nil {
				return usagef("--listen %q: %v; give host:port, e.g. 127.0.0.1:7770", *listen, err)
			}
			toks, err := tokenSet(c.dir)
			if err != nil {
				return err
			}
			if (*certFile == "") != (*keyFile == "") {
				return usagef("give both --tls-cert and --tls-key, or neither")
			}
			var tlsConf *tls.Config
			if *certFile != "" {
				cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
				if err != nil {
					return userf(err, "cannot use the TLS certificate %s and key %s: %v; give a PEM certificate chain and its private key", *certFile, *keyFile, err)
				}
				tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			}
			if err := checkListen(*listen, *unsafe, toks != nil); err != nil {
				return err
			}
			if err := checkTLS(*listen, *unsafeTLS, tlsConf != nil); err != nil {
				return err
			}
			if *unsafe && toks == nil {
				fmt.Fprintf(c.stderr, "prophet: WARNING: serving %s with no authentication (--unsafe-no-auth): anyone who can reach it can read and write this replica\n", *listen)
			}
			if *unsafeTLS && tlsConf == nil && !loopback(*listen) {
				fmt.Fprintf(c.stderr, "prophet: WARNING: serving %s over plain HTTP (--unsafe-no-tls): tokens and changesets cross the network in clear text\n", *listen)
			}
			return c.serve(ctx, *listen, *addrFile, *maxPush, *grace, toks, tlsConf)
		}
	},
}

func (c *call) serve(ctx context.Context, listen, addrFile string, maxPush int64, grace time.Duration, toks *httpsync.TokenSet, tlsConf *tls.Config) (err error) {
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
	// The tokens in force; nil: none needed. SIGHUP reads them again.
	var tokens atomic.Pointer[httpsync.TokenSet]
	tokens.Store(toks)
	auth := func(tok string) (httpsync.Scope, bool) {
		if s := tokens.Load(); s != nil {
			return s.Check(tok)
		}
		return httpsync.ScopeWrite, true
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	go func() {
		for range hup {
			s, err := tokenSet(c.dir)
			if err != nil {
				log.Error("SIGHUP: cannot read the tokens; keeping those in force", "err", oneLine(describe(err, c.dir)))
				continue
			}
			if s == nil && toks != nil && !loopback(listen) {
				log.Error("SIGHUP: the replica has no tokens left; keeping those in force, since serving a non-loopback address needs one (restart with --unsafe-no-auth to serve it with none)")
				continue
			}
			tokens.Store(s)
			n := 0
			if s != nil {
				n = s.Len()
			}
			log.Info("SIGHUP: tokens read again", "tokens", n)
		}
	}()
	n := 0
	if toks != nil {
		n = toks.Len()
	}
	h := httpsync.NewHandler(l, &httpsync.HandlerOptions{Logger: log, MaxPushBytes: maxPush, Auth: auth})
	// GitHub's webhooks authenticate by their signature, not by tokens.
	hooks := &github.Webhooks{Local: l, Secret: []byte(c.getenv("PROPHET_GITHUB_WEBHOOK_SECRET")), Logger: log,
		Open: func(addr string) (*foreign.Foreign, error) {
			gw, err := c.gateway(addr)
			if err != nil {
				// Events need no token: they bring their data.
				if gw, err = github.New(github.Config{Address: addr, Token: "events-only"}); err != nil {
					return nil, err
				}
			}
			return foreign.Open(l, gw, nil)
		}}
	defer hooks.Close()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Done()
			if r.URL.Path == github.WebhookPath {
				hooks.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if tlsConf != nil {
		srv.TLSConfig = tlsConf
		ln = tls.NewListener(ln, tlsConf)
		scheme = "https"
	}
	fmt.Fprintf(c.out, "serving %s on %s://%s\n", c.dir, scheme, addr)
	if err := c.out.Flush(); err != nil {
		ln.Close()
		return err
	}
	// The CLI on this replica goes through its socket meanwhile.
	// Forwarded commands run under cliCtx, cancelled when the shutdown
	// timeout passes (a forwarded pull --live never ends by itself).
	var cliSrv *http.Server
	cliCtx, cancelCli := context.WithCancel(context.Background())
	defer cancelCli()
	stopCLI := func(ctx context.Context) {
		if cliSrv == nil {
			return
		}
		stop := context.AfterFunc(ctx, cancelCli)
		defer stop()
		if err := cliSrv.Shutdown(ctx); err != nil {
			log.Warn("commands still under way at the shutdown timeout; cutting them", "err", err)
			cancelCli()
			cliSrv.Shutdown(context.Background()) // they end once cancelled
		}
	}
	if sockLn, sock, err := listenSocket(c.dir); err != nil {
		log.Warn("other prophet commands on this replica will wait for the lock while it is served: no command socket", "socket", sock, "err", err)
	} else {
		cliSrv = &http.Server{Handler: &cliServer{l: l, dir: absDir(c.dir), log: log, wg: &inflight},
			ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			BaseContext: func(net.Listener) context.Context { return cliCtx }}
		go cliSrv.Serve(sockLn)
		defer os.Remove(sock)
	}
	// Ready, command socket included: the address file says so.
	if addrFile != "" {
		if err := writeFileAtomic(addrFile, []byte(addr+"\n")); err != nil {
			ln.Close()
			if cliSrv != nil {
				cliSrv.Close()
			}
			return err
		}
	}
	log.Info("serving", "replica", l.R.UUID(), "dir", absDir(c.dir), "addr", addr, "tls", tlsConf != nil, "tokens", n)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		cctx, cancel := context.WithTimeout(context.Background(), grace)
		stopCLI(cctx)
		cancel()
		inflight.Wait()
		return fmt.Errorf("serving on %s: %w", addr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing the requests under way", "timeout", grace)
	h.Close() // live subscribers are told the server is going away
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// Both servers stop taking new work at once, then finish theirs.
	cliDone := make(chan struct{})
	go func() { stopCLI(sctx); close(cliDone) }()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still under way at the shutdown timeout; cutting them", "err", err)
		srv.Close()
	}
	<-cliDone
	inflight.Wait()
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// checkListen refuses an address that is not loopback when the replica
// has no tokens, unless unsafe: anyone who reaches it could write.
func checkListen(listen string, unsafe, tokens bool) error {
	if loopback(listen) || tokens || unsafe {
		return nil
	}
	return userf(nil, "--listen %s is not a loopback address, and this replica has no tokens: anyone who reaches it could read and write this replica; add one (prophet token add NAME --scope write) and serve behind a TLS-terminating proxy, serve 127.0.0.1, or pass --unsafe-no-auth if every machine that can reach %s is trusted", listen, listen)
}

// checkTLS refuses plain HTTP on an address that is not loopback, unless
// unsafe: tokens and changesets would cross the network in clear text.
func checkTLS(listen string, unsafe, tls bool) error {
	if loopback(listen) || tls || unsafe {
		return nil
	}
	return userf(nil, "--listen %s is not a loopback address, and serve has no TLS: tokens and changesets would cross the network in clear text; give --tls-cert and --tls-key, serve 127.0.0.1 behind a TLS-terminating proxy, or pass --unsafe-no-tls if the network is trusted", listen)
}

// loopback reports whether listen (host:port) is a loopback address.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
