package httpsync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
)

// Live subscriptions (DESIGN.md, "Live subscriptions"): GET /v1/live is a
// websocket on which a client runs any number of streams, each named by a
// mux_id it chooses. A stream sends the changesets the client lacks by its
// version vector (since), then "sync", then every new changeset as soon as
// it is durable. JSON text messages, one per websocket message:
//
//	client: {"type":"subscribe","mux_id":7,"since":[["<origin>",12]],"position":0,"types":["bug"],"notify":false}
//	        {"type":"close","mux_id":7}
//	server: {"type":"changeset","mux_id":7,"changeset":{...changeset.JSON...}}
//	        {"type":"sync","mux_id":7,"position":120}
//	        {"type":"notify","mux_id":7,"position":121}   (notify streams only)
//	        {"type":"error","mux_id":7,"code":"bad_request","error":"..."}

// liveMsg is every message of the protocol, both ways.
type liveMsg struct {
	Type  string `json:"type"`
	MuxID int64  `json:"mux_id"`
	// subscribe
	Since    [][2]json.RawMessage `json:"since,omitempty"`
	Position uint64               `json:"position,omitempty"`
	Types    []string             `json:"types,omitempty"`
	Notify   bool                 `json:"notify,omitempty"`
	// server
	Changeset *changeset.JSON `json:"changeset,omitempty"`
	Code      string          `json:"code,omitempty"`
	Error     string          `json:"error,omitempty"`
}

const (
	// liveWriteTimeout is how long a subscriber may leave a message
	// unread before the server drops it as too slow.
	liveWriteTimeout = 30 * time.Second
	// livePingEvery is how often the server checks that a quiet
	// subscriber is still there.
	livePingEvery = 30 * time.Second
	// maxStreams is how many streams one connection may run.
	maxStreams = 64
)

// liveConn is one websocket connection and its streams.
type liveConn struct {
	h       *Handler
	c       *websocket.Conn
	mu      sync.Mutex
	streams map[int64]*liveEntry
	wg      sync.WaitGroup
}

func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		h.o.Logger.Warn("live: websocket handshake failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c.SetReadLimit(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lc := &liveConn{h: h, c: c, streams: map[int64]*liveEntry{}}
	h.o.Logger.Info("live: connected", "remote", r.RemoteAddr)
	h.m.subscribers.Inc()
	defer h.m.subscribers.Dec()
	go func() {
		select {
		case <-h.liveCtx.Done():
			c.Close(websocket.StatusGoingAway, "the server is shutting down")
		case <-ctx.Done():
		}
	}()
	go lc.ping(ctx)
	err = lc.read(ctx)
	cancel()
	lc.wg.Wait()
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		h.o.Logger.Info("live: disconnected", "remote", r.RemoteAddr)
	default:
		h.o.Logger.Warn("live: connection lost", "remote", r.RemoteAddr, "err", err)
	}
	c.CloseNow()
}

func (lc *liveConn) ping(ctx context.Context) {
	t := time.NewTicker(livePingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, liveWriteTimeout)
			err := lc.c.Ping(pctx)
			cancel()
			if err != nil {
				return // the connection is closed; read returns
			}
		}
	}
}

// read takes the client's messages until the connection ends.
func (lc *liveConn) read(ctx context.Context) error {
	for {
		_, b, err := lc.c.Read(ctx)
		if err != nil {
			return err
		}
		var m liveMsg
		if err := json.Unmarshal(b, &m); err != nil {
			lc.send(ctx, &liveMsg{Type: "error", Code: "bad_request", Error: "a message is not JSON: " + err.Error()})
			continue
		}
		switch m.Type {
		case "subscribe":
			lc.subscribe(ctx, &m)
		case "close":
			lc.mu.Lock()
			if e, ok := lc.streams[m.MuxID]; ok {
				e.stop()
				delete(lc.streams, m.MuxID)
			}
			lc.mu.Unlock()
		default:
			lc.send(ctx, &liveMsg{Type: "error", MuxID: m.MuxID, Code: "bad_request", Error: fmt.Sprintf("unknown message type %q (subscribe or close)", m.Type)})
		}
	}
}

// send writes one message, giving up (and so closing the connection) if
// the client does not take it in time.
func (lc *liveConn) send(ctx context.Context, m *liveMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, liveWriteTimeout)
	defer cancel()
	return lc.c.Write(wctx, websocket.MessageText, b)
}

func (lc *liveConn) subscribe(ctx context.Context, m *liveMsg) {
	refuse := func(format string, args ...any) {
		lc.send(ctx, &liveMsg{Type: "error", MuxID: m.MuxID, Code: "bad_request", Error: fmt.Sprintf(format, args...)})
	}
	since := map[uuid.UUID]uint64{}
	for i, p := range m.Since {
		var origin uuid.UUID
		var seq uint64
		if err := json.Unmarshal(p[0], &origin); err != nil {
			refuse("since[%d]: origin: %v", i, err)
			return
		}
		if err := json.Unmarshal(p[1], &seq); err != nil {
			refuse("since[%d]: sequence number: %v", i, err)
			return
		}
		since[origin] = max(since[origin], seq)
	}
	lc.mu.Lock()
	_, dup := lc.streams[m.MuxID]
	full := len(lc.streams) >= maxStreams
	var e *liveEntry
	var sctx context.Context
	if !dup && !full {
		e = &liveEntry{}
		sctx, e.stop = context.WithCancel(ctx)
		lc.streams[m.MuxID] = e
	}
	lc.mu.Unlock()
	switch {
	case dup:
		refuse("mux_id %d is already subscribed on this connection; close it first", m.MuxID)
		return
	case full:
		refuse("this connection already runs %d streams, the most it may", maxStreams)
		return
	}
	s := &liveStream{lc: lc, wctx: ctx, mux: m.MuxID, since: since, pos: m.Position, types: m.Types, notify: m.Notify}
	lc.wg.Add(1)
	lc.h.m.streams.Inc()
	go func() {
		defer lc.wg.Done()
		defer lc.h.m.streams.Dec()
		defer func() {
			// Ended by itself (or closed): its mux_id is free again,
			// unless a new stream took it already.
			e.stop()
			lc.mu.Lock()
			if lc.streams[m.MuxID] == e {
				delete(lc.streams, m.MuxID)
			}
			lc.mu.Unlock()
		}()
		if err := s.run(sctx); err != nil && sctx.Err() == nil {
			lc.h.o.Logger.Warn("live: stream ended", "mux_id", s.mux, "err", err)
			lc.send(ctx, &liveMsg{Type: "error", MuxID: s.mux, Code: "internal", Error: oneLine(err.Error())})
		}
	}()
}

// liveEntry is a running stream, as its connection knows it.
type liveEntry struct{ stop context.CancelFunc }

// liveStream is one subscription.
type liveStream struct {
	lc *liveConn
	// wctx is the connection's context: writes use it, not the stream's,
	// since a write cancelled half-way closes the whole websocket.
	wctx   context.Context
	mux    int64
	since  map[uuid.UUID]uint64
	pos    uint64 // the server's log is sent up to here
	types  []string
	notify bool
}

func (s *liveStream) run(ctx context.Context) error {
	r := s.lc.h.l.R
	if s.notify {
		// Only positions: the client pulls what it lacks itself.
		for {
			changed := r.Changed()
			if latest := r.LatestSeq(); latest > s.pos || s.pos == 0 {
				s.pos = latest
				if err := s.lc.send(s.wctx, &liveMsg{Type: "notify", MuxID: s.mux, Position: latest}); err != nil {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			}
		}
	}
	synced := false
	for {
		changed := r.Changed()
		if err := s.sendNew(ctx, r); err != nil {
			return err
		}
		if !synced {
			synced = true
			if err := s.lc.send(s.wctx, &liveMsg{Type: "sync", MuxID: s.mux, Position: s.pos}); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// sendNew sends what the log holds after s.pos that the client lacks.
func (s *liveStream) sendNew(ctx context.Context, r *replica.Replica) error {
	it := r.Log(s.pos + 1)
	defer it.Close()
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return nil
		}
		s.pos = it.Seq()
		id, err := it.ID()
		if err != nil {
			return err
		}
		if id.Seq <= s.since[id.Origin] {
			continue
		}
		s.since[id.Origin] = id.Seq
		cs, err := it.Changeset()
		if err != nil {
			return err
		}
		if len(s.types) > 0 && !slices.ContainsFunc(cs.Changes, func(ch changeset.Change) bool { return slices.Contains(s.types, ch.RecordType) }) {
			continue
		}
		h, err := cs.Hash()
		if err != nil {
			return err
		}
		if err := s.lc.send(s.wctx, &liveMsg{Type: "changeset", MuxID: s.mux, Changeset: cs.ToJSON(h)}); err != nil {
			return err
		}
		s.lc.h.m.served.WithLabelValues("live").Inc()
	}
	return it.Err()
}
