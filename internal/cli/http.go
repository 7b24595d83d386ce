package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/merge/httpsync"
	"github.com/prophet-sync/prophet/resolution"
)

// clone, pull and push with a replica served over HTTP (prophet serve).

// tokenVar is the environment variable whose token goes to loc: the
// peer's --token-env when it is set, else PROPHET_TOKEN.
func (c *call) tokenVar(loc location) string {
	if loc.tokenEnv != "" && c.getenv(loc.tokenEnv) != "" {
		return loc.tokenEnv
	}
	return "PROPHET_TOKEN"
}

// clientOptions are the HTTP client's options for loc, with its token.
func (c *call) clientOptions(loc location) *httpsync.ClientOptions {
	return &httpsync.ClientOptions{Token: c.getenv(c.tokenVar(loc))}
}

// dial connects to the replica served at url.
func (c *call) dial(ctx context.Context, url string) (*httpsync.Remote, error) {
	return c.dialLoc(ctx, location{url: url})
}

// dialLoc connects to the served replica loc.
func (c *call) dialLoc(ctx context.Context, loc location) (*httpsync.Remote, error) {
	r, err := httpsync.Dial(ctx, loc.url, c.clientOptions(loc))
	if err != nil {
		return nil, c.httpErr(err, loc)
	}
	return r, nil
}

// httpErr says what went wrong with the served replica loc, in one line.
// A missing or insufficient token names its URL.
func (c *call) httpErr(err error, loc location) error {
	where := loc.String()
	var (
		he *httpsync.Error
		ue *merge.UnresolvedError
	)
	switch {
	case errors.As(err, &ue), errors.Is(err, context.Canceled),
		errors.Is(err, merge.ErrOtherDatabase), errors.Is(err, merge.ErrSameReplica):
		return err
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		v := c.tokenVar(loc)
		if loc.tokenEnv != "" {
			v = loc.tokenEnv
		}
		if c.getenv(v) != "" {
			return userf(err, "%s: no valid token (401): it does not take $%s (revoked, or made for another replica); set %s to a token made with prophet token add on the served replica", loc.url, v, v)
		}
		return userf(err, "%s: no valid token (401); set %s to a token made with prophet token add on the served replica", loc.url, v)
	case errors.As(err, &he) && he.Status == http.StatusForbidden:
		return userf(err, "%s: this token can only read; pushing needs a token with --scope write", loc.url)
	case errors.As(err, &he):
		return userf(err, "%s refused: %s (HTTP %d)", where, he.Msg, he.Status)
	case errors.As(err, new(*tls.CertificateVerificationError)):
		return userf(err, "%s: its TLS certificate is not trusted here (%v); give the certificate of its issuer in SSL_CERT_FILE, or serve a certificate this machine trusts", where, errors.Unwrap(errors.Unwrap(err)))
	case errors.As(err, new(tls.RecordHeaderError)):
		return userf(err, "%s does not speak TLS; use http:// for a prophet serve without --tls-cert", where)
	}
	return userf(err, "cannot sync with %s: %v; is prophet serve running there?", where, err)
}

func (c *call) cloneHTTP(ctx context.Context, url, dir string) error {
	r, err := c.dial(ctx, url)
	if err != nil {
		return err
	}
	return c.clone(ctx, r, url, url, dir)
}

// syncHTTP is pull and push with a served replica; here is this replica
// (open for writing for a pull).
func (c *call) syncHTTP(ctx context.Context, f *syncFlags, push bool, here *merge.Local, loc location) error {
	if f.dryRun {
		return c.dryRunHTTP(ctx, loc, here, f.force, push)
	}
	var (
		rep merge.Report
		err error
	)
	if push {
		// The server settles conflicts; it cannot ask here.
		rep, err = httpsync.Push(ctx, here, loc.url, &httpsync.PushOptions{Client: c.clientOptions(loc), Prefer: f.prefer, Force: f.force})
		if err != nil {
			return c.explainMerge(c.httpErr(err, loc), rep, here, loc, push, false)
		}
		return c.writeSyncReport(rep, loc, absDir(here.R.Dir()), loc.url, push)
	}
	r, err := c.dialLoc(ctx, loc)
	if err != nil {
		return err
	}
	opts := c.pullOptions(f)
	p := newProgress(c.stderr)
	opts.Progress = p.update
	var aborted bool
	if f.prefer == "" && isTerminal(c.stdin) && isTerminal(c.stderr) {
		opts.Prompt = c.prompt(p, here, loc, false, &aborted)
	}
	rep, err = merge.Pull(ctx, r, here, opts)
	p.done()
	if err != nil {
		return c.explainMerge(c.httpErr(err, loc), rep, here, loc, false, aborted)
	}
	return c.writeSyncReport(rep, loc, loc.url, absDir(here.R.Dir()), false)
}

// dryRunHTTP counts what a pull from or push to a served replica would
// move, as dryRun does for directories.
func (c *call) dryRunHTTP(ctx context.Context, loc location, here *merge.Local, force, push bool) error {
	r, err := c.dialLoc(ctx, loc)
	if err != nil {
		return err
	}
	hi, _ := here.Info(ctx)
	j := dryRunJSON{Direction: c.cmd.name, DryRun: true, Peer: loc.peer}
	if push {
		t, err := r.Tickets(ctx, hi.Replica)
		if err != nil {
			return c.httpErr(err, loc)
		}
		if err := merge.Check(hi, t.Info, force); err != nil {
			return err
		}
		j.Source, j.Target, j.SourceReplica = absDir(here.R.Dir()), loc.url, jsonUUID(hi.Replica)
		pos := t.Position
		if pos > hi.Latest {
			pos = 0
		}
		tickets := t.Tickets
		if tickets == nil {
			tickets = map[uuid.UUID]uint64{}
		}
		if err := j.count(ctx, here, pos, tickets, t.Info.Replica, t.Info.Latest); err != nil {
			return err
		}
		if err := here.Resolutions(ctx, t.Resolutions, func(resolution.Decision) error { j.Resolutions++; return nil }); err != nil {
			return err
		}
	} else {
		si, err := r.Info(ctx)
		if err != nil {
			return c.httpErr(err, loc)
		}
		if err := merge.Check(si, hi, force); err != nil {
			return err
		}
		j.Source, j.Target, j.SourceReplica = loc.url, absDir(here.R.Dir()), jsonUUID(si.Replica)
		pos, err := here.R.PeerPosition(si.Replica)
		if err != nil {
			return err
		}
		if pos > si.Latest {
			pos = 0
		}
		var sent uint64
		last, err := r.ChangesetsFor(ctx, pos, here.R.Tickets(), hi.Replica, hi.Latest, func(uint64, []byte) error { sent++; return nil })
		if err != nil {
			return c.httpErr(err, loc)
		}
		j.Read, j.New, j.AlreadyHere = last-pos, uint64(sent), last-pos-sent
		have := map[uuid.UUID]uint64{}
		if here.Res != nil {
			if have, err = here.Res.Tickets(); err != nil {
				return err
			}
		}
		if err := r.Resolutions(ctx, have, func(resolution.Decision) error { j.Resolutions++; return nil }); err != nil {
			return c.httpErr(err, loc)
		}
	}
	return c.writeDryRun(j, loc, push)
}

// pullLive pulls from the served replica at loc each time its log grows
// (pull --live), until ctx ends.
func (c *call) pullLive(ctx context.Context, f *syncFlags, here *merge.Local, loc location) error {
	r, err := c.dialLoc(ctx, loc)
	if err != nil {
		return err
	}
	opts := c.pullOptions(f)
	// The feed says when to pull; a burst of commits there is one pull
	// here.
	grew := make(chan struct{}, 1)
	watched := make(chan error, 1)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		watched <- r.WatchLatest(wctx, func(uint64) error {
			select {
			case grew <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watched:
			if ctx.Err() != nil {
				return nil
			}
			return c.httpErr(err, loc)
		case <-grew:
		}
		rep, err := merge.Pull(ctx, r, here, opts)
		if ctx.Err() != nil {
			return nil
		}
		var ue *merge.UnresolvedError
		switch {
		case errors.As(err, &ue):
			return c.explainMerge(c.httpErr(err, loc), rep, here, loc, false, false)
		case err != nil:
			// The feed reconnects by itself; the next change there
			// (or this one, once the server answers) pulls again.
			fmt.Fprintf(c.stderr, "prophet: pull --live: %v; waiting for the server\n", oneLine(c.httpErr(err, loc).Error()))
			continue
		}
		if rep.Integrated == 0 && rep.Resolutions == 0 && !c.json {
			continue
		}
		if err := c.writeSyncReport(rep, loc, loc.url, absDir(here.R.Dir()), false); err != nil {
			return err
		}
		if err := c.out.Flush(); err != nil {
			return err
		}
	}
}

// pullOptions are the merge options of a pull from a served replica:
// --force, and --prefer (mine: this replica's values).
func (c *call) pullOptions(f *syncFlags) *merge.Options {
	opts := c.mergeOptions()
	opts.Force = f.force
	switch f.prefer {
	case "mine":
		opts.Resolver = merge.Mine
	case "theirs":
		opts.Resolver = merge.Theirs
	}
	return opts
}
