package httpsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// WatchOptions choose what Watch receives.
type WatchOptions struct {
	// Since is the caller's version vector: for each origin replica, the
	// highest origin sequence number it has. Changesets it covers are not
	// sent. Nil: everything.
	Since map[uuid.UUID]uint64
	// After skips the server's log up to this sequence number: the
	// server's LatestSeq (Info) starts with what comes next. 0: from the
	// start.
	After uint64
	// Types, when set, limits the stream to changesets that touch a
	// record of one of these types.
	Types []string
	// OnSync, when set, is called each time the server has sent the
	// history the caller lacked (after each reconnect too); what follows
	// is live.
	OnSync func()
}

// Watch is the live change feed of the served replica (GET /v1/live): it
// calls fn with every changeset the caller lacks by opts.Since, in the
// server's log order, then with every new one as soon as it is durable
// there, until ctx ends (it returns ctx.Err()) or fn fails (it returns that
// error). A connection that breaks is dialled again, with backoff, from
// where it stopped: the version vector moves on with every changeset fn
// took, so none is handed over twice. A refusal (401, 403, 404) ends it.
func (r *Remote) Watch(ctx context.Context, opts *WatchOptions, fn func(*changeset.Changeset) error) error {
	var o WatchOptions
	if opts != nil {
		o = *opts
	}
	since := map[uuid.UUID]uint64{}
	for k, v := range o.Since {
		since[k] = v
	}
	pos := o.After
	return r.live(ctx, func() *liveMsg {
		m := &liveMsg{Type: "subscribe", MuxID: 1, Position: pos, Types: o.Types}
		for origin, seq := range since {
			m.Since = append(m.Since, [2]json.RawMessage{jsonRaw(origin), jsonRaw(seq)})
		}
		return m
	}, func(m *liveMsg) error {
		switch m.Type {
		case "changeset":
			cs, err := m.Changeset.Changeset()
			if err != nil {
				return fmt.Errorf("the server sent a bad changeset: %w", err)
			}
			if err := fn(cs); err != nil {
				return fnError{err}
			}
			since[cs.Origin] = max(since[cs.Origin], cs.OriginSeq)
			pos = max(pos, cs.Seq)
		case "sync":
			pos = max(pos, m.Position)
			if o.OnSync != nil {
				o.OnSync()
			}
		}
		return nil
	})
}

// WatchLatest calls fn with the served replica's latest sequence number at
// once, then each time its log grows, until ctx ends or fn fails; it
// reconnects like Watch. It sends no changesets: `prophet pull --live`
// pulls when it is told.
func (r *Remote) WatchLatest(ctx context.Context, fn func(latest uint64) error) error {
	return r.live(ctx, func() *liveMsg {
		return &liveMsg{Type: "subscribe", MuxID: 1, Notify: true}
	}, func(m *liveMsg) error {
		if m.Type == "notify" {
			if err := fn(m.Position); err != nil {
				return fnError{err}
			}
		}
		return nil
	})
}

// live runs one stream on GET /v1/live, dialling again after a break.
func (r *Remote) live(ctx context.Context, subscribe func() *liveMsg, handle func(*liveMsg) error) error {
	url := r.endpoint("/v1/live", nil)
	wait := r.o.Backoff
	for {
		progressed, err := r.liveOnce(ctx, url, subscribe(), handle)
		var fe fnError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &fe):
			return fe.err
		case isRefusal(err), untrusted(err):
			return err
		}
		if progressed {
			wait = r.o.Backoff
		}
		r.o.Logger.Warn("live: connection broke; dialling again", "server", r.base.String(), "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait + time.Duration(rand.Int64N(int64(wait)/2+1))):
		}
		wait = min(2*wait, r.o.MaxBackoff)
	}
}

// liveOnce runs the stream on one connection; progressed says whether the
// server sent anything.
func (r *Remote) liveOnce(ctx context.Context, url string, sub *liveMsg, handle func(*liveMsg) error) (progressed bool, err error) {
	h := http.Header{}
	if r.o.Token != "" {
		h.Set("Authorization", "Bearer "+r.o.Token)
	}
	dctx, cancel := context.WithTimeout(ctx, r.o.RequestTimeout)
	c, resp, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPClient: r.o.HTTPClient, HTTPHeader: h})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return false, answerError(resp)
		}
		return false, fmt.Errorf("live: dial %s: %w", url, err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	b, err := json.Marshal(sub)
	if err != nil {
		return false, err
	}
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		return false, err
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return progressed, err
		}
		progressed = true
		var m liveMsg
		if err := json.Unmarshal(b, &m); err != nil {
			return progressed, fmt.Errorf("live: the server sent a message that is not JSON: %w", err)
		}
		if m.Type == "error" {
			if m.Code == "bad_request" {
				return progressed, &Error{Status: http.StatusBadRequest, Msg: m.Error, Code: m.Code}
			}
			// The server failed on its side: dial again.
			return progressed, fmt.Errorf("live: the server's stream failed: %s (%s)", m.Error, m.Code)
		}
		if err := handle(&m); err != nil {
			c.Close(websocket.StatusNormalClosure, "")
			return progressed, err
		}
	}
}

// isRefusal reports whether err is an answer that dialling again cannot
// change.
func isRefusal(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

func jsonRaw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
