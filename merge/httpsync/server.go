// Package httpsync is prophet's HTTP transport: a server (NewHandler) that
// serves one replica to pulling, cloning and pushing peers, and a client
// (Dial, Push) that makes a remote replica a merge.Source and pushes into
// one. The frames and endpoints are in DESIGN.md, "Wire protocol (HTTP)".
package httpsync

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
)

// HandlerOptions tune a Handler. The zero value is usable.
type HandlerOptions struct {
	// Logger defaults to a discard logger.
	Logger *slog.Logger
	// MaxPushBytes limits a push's request body. Default 256 MiB.
	MaxPushBytes int64
	// MaxRequestBytes limits the JSON body of the other requests. Default
	// 16 MiB.
	MaxRequestBytes int64
	// FlushEvery is how much of a stream is buffered before it is sent.
	// Default 256 KiB.
	FlushEvery int
	// SpoolDir is where a push body is kept while it is checked, before
	// anything of it is integrated. Default os.TempDir().
	SpoolDir string
	// ProgressEvery is how long a changeset stream may skip entries
	// without sending anything before it sends a progress frame (a
	// keep-alive that also lets a resumed pull start further on).
	// Default 1 s.
	ProgressEvery time.Duration
	// Auth, when set, is asked about the bearer token of every /v1
	// request (Authorization: Bearer TOKEN; "" when there is none; not
	// /healthz): a request whose token Auth refuses gets 401, and one
	// whose token only reads gets 403 on POST /v1/push. Nil: no token is
	// needed. TokenSet.Check is an Auth.
	Auth func(token string) (scope Scope, ok bool)
}

// Handler serves one replica (NewHandler).
type Handler struct {
	l    *merge.Local
	o    HandlerOptions
	mux  *http.ServeMux
	push sync.Mutex // one push integrates at a time
	// liveCtx ends the live subscriptions (Close): http.Server.Shutdown
	// does not wait for websockets, which it no longer sees.
	liveCtx   context.Context
	closeLive context.CancelFunc
	m         *metrics
}

// NewHandler serves l, which must be open for writing to take pushes. The
// caller keeps l open while the handler runs, and closes it after the
// server's Shutdown.
func NewHandler(l *merge.Local, opts *HandlerOptions) *Handler {
	h := &Handler{l: l, mux: http.NewServeMux()}
	h.liveCtx, h.closeLive = context.WithCancel(context.Background())
	h.m = newMetrics(h)
	if opts != nil {
		h.o = *opts
	}
	if h.o.Logger == nil {
		h.o.Logger = slog.New(slog.DiscardHandler)
	}
	if h.o.MaxPushBytes <= 0 {
		h.o.MaxPushBytes = 256 << 20
	}
	if h.o.MaxRequestBytes <= 0 {
		h.o.MaxRequestBytes = 16 << 20
	}
	if h.o.FlushEvery <= 0 {
		h.o.FlushEvery = 256 << 10
	}
	if h.o.ProgressEvery <= 0 {
		h.o.ProgressEvery = time.Second
	}
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	h.mux.HandleFunc("GET /v1/info", h.info)
	h.mux.HandleFunc("GET /v1/tickets", h.tickets)
	h.mux.HandleFunc("POST /v1/resolutions", h.resolutions)
	h.mux.HandleFunc("POST /v1/changesets", h.changesets)
	h.mux.HandleFunc("POST /v1/push", h.pushHandler)
	h.mux.HandleFunc("GET /v1/snapshot", h.snapshot)
	h.mux.HandleFunc("GET /v1/live", h.live)
	h.mux.Handle("GET /metrics", h.m.handler())
	h.mux.HandleFunc("GET /v1/records/{type}", h.records)
	h.mux.HandleFunc("GET /v1/records/{type}/{id}", h.record)
	h.mux.HandleFunc("GET /v1/records/{type}/{id}/history", h.history)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The path may be served with another method: 405, naming them.
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, pattern := h.mux.Handler(r2); pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			h.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Errorf("%s takes %s, not %s", r.URL.Path, strings.Join(allow, " or "), r.Method))
			return
		}
		h.fail(w, r, http.StatusNotFound, "not_found", fmt.Errorf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return h
}

// Close ends the live subscriptions, telling their clients the server is
// going away. Call it when the server shuts down.
func (h *Handler) Close() { h.closeLive() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	h.mux.ServeHTTP(w, r)
}

// infoJSON is GET /v1/info.
type infoJSON struct {
	Replica  uuid.UUID `json:"replica"`
	Database uuid.UUID `json:"database"`
	Latest   uint64    `json:"latest"`
}

// ticketsJSON is GET /v1/tickets: what a pusher needs to send only what the
// server lacks.
type ticketsJSON struct {
	infoJSON
	Tickets     map[uuid.UUID]uint64 `json:"tickets"`
	Resolutions map[uuid.UUID]uint64 `json:"resolutions"`
	// Position is how far the server has read the log of the replica
	// named by ?peer= (0: never, or no peer given).
	Position uint64 `json:"position"`
}

// errorJSON is every error answer.
type errorJSON struct {
	Error    string        `json:"error"`
	Code     string        `json:"code"`
	Conflict *conflictJSON `json:"conflict,omitempty"`
}

func (h *Handler) information() infoJSON {
	return infoJSON{Replica: h.l.R.UUID(), Database: h.l.R.DatabaseUUID(), Latest: h.l.R.LatestSeq()}
}

func (h *Handler) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.information())
}

func (h *Handler) tickets(w http.ResponseWriter, r *http.Request) {
	t := ticketsJSON{infoJSON: h.information(), Tickets: h.l.R.Tickets(), Resolutions: map[uuid.UUID]uint64{}}
	if h.l.Res != nil {
		var err error
		if t.Resolutions, err = h.l.Res.Tickets(); err != nil {
			h.fail(w, r, http.StatusInternalServerError, "internal", err)
			return
		}
	}
	if p := r.URL.Query().Get("peer"); p != "" {
		peer, err := uuid.Parse(p)
		if err != nil {
			h.fail(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("peer=%q is not a UUID", p))
			return
		}
		if t.Position, err = h.l.R.PeerPosition(peer); err != nil {
			h.fail(w, r, http.StatusInternalServerError, "internal", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, t)
}

// resolutionsRequest is the body of POST /v1/resolutions.
type resolutionsRequest struct {
	Have map[uuid.UUID]uint64 `json:"have"`
}

func (h *Handler) resolutions(w http.ResponseWriter, r *http.Request) {
	var req resolutionsRequest
	if !h.readJSON(w, r, &req) {
		return
	}
	s := h.stream(w)
	var n uint64
	var enc []byte
	err := h.l.Resolutions(r.Context(), req.Have, func(d resolution.Decision) error {
		var err error
		if enc, err = resolution.Encode(enc[:0], &d); err != nil {
			return err
		}
		n++
		return s.f.resolution(enc)
	})
	s.end(r, err, n)
}

// changesetsRequest is the body of POST /v1/changesets: the puller's
// position and what it holds (merge.FilteredSource).
type changesetsRequest struct {
	After      uint64               `json:"after"`
	Tickets    map[uuid.UUID]uint64 `json:"tickets"`
	Self       uuid.UUID            `json:"self"`
	SelfLatest uint64               `json:"self_latest"`
}

func (h *Handler) changesets(w http.ResponseWriter, r *http.Request) {
	var req changesetsRequest
	if !h.readJSON(w, r, &req) {
		return
	}
	if req.Tickets == nil {
		req.Tickets = map[uuid.UUID]uint64{}
	}
	start := time.Now()
	s := h.stream(w)
	last := req.After
	lastWrite := time.Now()
	var sent, read uint64
	err := h.l.Changesets(r.Context(), req.After, func(seq uint64, raw []byte) error {
		read++
		id, err := changeset.PeekID(raw)
		if err != nil {
			return fmt.Errorf("changeset %d of this replica's log: %w", seq, err)
		}
		last = seq
		if merge.Lacks(id, req.Tickets, req.Self, req.SelfLatest) {
			req.Tickets[id.Origin] = max(req.Tickets[id.Origin], id.Seq)
			sent++
			lastWrite = time.Now()
			return s.f.changeset(seq, raw)
		}
		if read%256 == 0 && time.Since(lastWrite) >= h.o.ProgressEvery {
			lastWrite = time.Now()
			if err := s.f.number(kindProgress, seq); err != nil {
				return err
			}
			return s.flush()
		}
		return nil
	})
	h.o.Logger.Debug("changesets served", "after", req.After, "read", read, "sent", sent, "last", last, "remote", r.RemoteAddr)
	h.m.served.WithLabelValues("pull").Add(float64(sent))
	h.m.observe("pull", start, err)
	s.end(r, err, last)
}

// stream is a streamed response: frames into a buffer flushed as it fills.
type stream struct {
	h  *Handler
	w  http.ResponseWriter
	rc *http.ResponseController
	f  frameWriter
}

func (h *Handler) stream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "application/x-prophet-frames")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	return &stream{h: h, w: w, rc: http.NewResponseController(w), f: frameWriter{w: bufio.NewWriterSize(w, h.o.FlushEvery)}}
}

func (s *stream) flush() error {
	if err := s.f.w.Flush(); err != nil {
		return err
	}
	return s.rc.Flush()
}

// end ends the stream with an end frame carrying n, or, after a failure,
// an error frame.
func (s *stream) end(r *http.Request, err error, n uint64) {
	if err == nil {
		err = s.f.number(kindEnd, n)
	} else if r.Context().Err() == nil {
		s.h.o.Logger.Error("stream failed", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		err = s.f.message(kindError, []byte(err.Error()))
	}
	if err == nil {
		err = s.flush()
	}
	if err != nil && r.Context().Err() == nil {
		s.h.o.Logger.Warn("stream cut", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	}
}

func (h *Handler) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, h.o.MaxRequestBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("the request is over %d bytes", mbe.Limit))
			return false
		}
		h.fail(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("the request body is not the JSON expected: %v", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// fail answers with a JSON error; 5xx are logged as errors, the rest as
// warnings.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, kind string, err error) {
	h.failWith(w, r, code, errorJSON{Error: oneLine(err.Error()), Code: kind})
}

func (h *Handler) failWith(w http.ResponseWriter, r *http.Request, code int, e errorJSON) {
	lvl := slog.LevelWarn
	if code >= 500 {
		lvl = slog.LevelError
	}
	h.m.errors.WithLabelValues(e.Code).Inc()
	h.o.Logger.Log(r.Context(), lvl, "request failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", code, "err", e.Error)
	writeJSON(w, code, e)
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(strings.TrimSpace(s))
}

// conflictJSON is an unresolved conflict of a push (409): enough to
// describe it as the pusher's CLI does for a local push.
type conflictJSON struct {
	Type        string        `json:"type"`
	Record      uuid.UUID     `json:"record"`
	Op          uint8         `json:"op"`
	Base        []propJSON    `json:"base"`
	Source      outcomeJSON   `json:"source"`
	Target      outcomeJSON   `json:"target"`
	Changeset   changesetJSON `json:"changeset"`
	Fingerprint string        `json:"fingerprint"`
	Description string        `json:"description"`
}

type propJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type outcomeJSON struct {
	Live  bool       `json:"live"`
	Props []propJSON `json:"props"`
}

type changesetJSON struct {
	Origin    uuid.UUID `json:"origin"`
	OriginSeq uint64    `json:"origin_seq"`
	Creator   string    `json:"creator"`
	Created   time.Time `json:"created"`
}

func toConflictJSON(c *merge.Conflict) *conflictJSON {
	props := func(ps []replica.Prop) []propJSON {
		out := make([]propJSON, len(ps))
		for i, p := range ps {
			out[i] = propJSON{p.Name, p.Value}
		}
		return out
	}
	return &conflictJSON{Type: c.Type, Record: c.Record, Op: uint8(c.Op), Base: props(c.Base),
		Source:      outcomeJSON{c.Source.Live, props(c.Source.Props)},
		Target:      outcomeJSON{c.Target.Live, props(c.Target.Props)},
		Changeset:   changesetJSON{c.Changeset.Origin, c.Changeset.OriginSeq, c.Changeset.Creator, c.Changeset.Created},
		Fingerprint: c.Fingerprint.String(), Description: c.Describe()}
}

func (j *conflictJSON) conflict() *merge.Conflict {
	props := func(ps []propJSON) []replica.Prop {
		out := make([]replica.Prop, len(ps))
		for i, p := range ps {
			out[i] = replica.Prop{Name: p.Name, Value: p.Value}
		}
		return out
	}
	c := &merge.Conflict{
		Conflict: replica.Conflict{Type: j.Type, Record: j.Record, Op: changeset.Op(j.Op), Base: props(j.Base),
			Source: replica.Outcome{Live: j.Source.Live, Props: props(j.Source.Props)},
			Target: replica.Outcome{Live: j.Target.Live, Props: props(j.Target.Props)}},
		Changeset: &changeset.Changeset{Origin: j.Changeset.Origin, OriginSeq: j.Changeset.OriginSeq, Creator: j.Changeset.Creator, Created: j.Changeset.Created},
	}
	if b, err := hexDecode32(j.Fingerprint); err == nil {
		c.Fingerprint = b
	}
	return c
}

// pushHandler integrates a push body (push.go) through merge.Pull, the
// same path as a local pull.
func (h *Handler) pushHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := &merge.Options{Logger: h.o.Logger}
	// prefer is the pusher's side: mine keeps the pusher's values (the
	// incoming changeset's, Theirs here), theirs the server's.
	switch p := q.Get("prefer"); p {
	case "":
	case "mine":
		opts.Resolver = merge.Theirs
	case "theirs":
		opts.Resolver = merge.Mine
	default:
		h.fail(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("prefer=%q: want mine or theirs (the pusher's side)", p))
		return
	}
	switch f := q.Get("force"); f {
	case "", "0", "false":
	case "1", "true":
		opts.Force = true
	default:
		h.fail(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("force=%q: want true or false", f))
		return
	}
	// The body is spooled to a file and checked whole (framing, every
	// changeset and decision decoded) before anything of it is
	// integrated: a malformed, torn or oversized push changes nothing.
	spool, err := os.CreateTemp(h.o.SpoolDir, "prophet-push-*")
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "internal", err)
		return
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	if _, err := io.Copy(spool, http.MaxBytesReader(w, r.Body, h.o.MaxPushBytes)); err != nil {
		h.pushFailed(w, r, merge.Report{}, err)
		return
	}
	// One push at a time, checked and integrated under the same lock, so
	// that no other push integrates an identity between the check that
	// it is the one held and the integration.
	h.push.Lock()
	defer h.push.Unlock()
	if err := checkPush(r.Context(), spool, h.l.R); err != nil {
		h.pushFailed(w, r, merge.Report{}, err)
		return
	}
	src, err := newBodySource(spool)
	if err != nil {
		h.pushFailed(w, r, merge.Report{}, err)
		return
	}
	start := time.Now()
	rep, err := merge.Pull(r.Context(), src, h.l, opts)
	h.m.integrated.Add(float64(rep.Integrated))
	h.m.observe("push", start, err)
	if err != nil {
		h.pushFailed(w, r, rep, err)
		return
	}
	h.o.Logger.Info("push integrated", "source", rep.Source, "read", rep.Read, "integrated", rep.Integrated, "conflicts", rep.Conflicts, "resolutions", rep.Resolutions, "took", time.Since(start), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, rep)
}

// pushFailed maps a failed push to a status: the pusher's fault (400, 413,
// 409, 422) or the server's (500).
func (h *Handler) pushFailed(w http.ResponseWriter, r *http.Request, rep merge.Report, err error) {
	var (
		mbe *http.MaxBytesError
		ue  *merge.UnresolvedError
		re  *merge.RefusedError
	)
	msg := err
	if rep.Integrated > 0 {
		msg = fmt.Errorf("%w (%d changesets before it were integrated)", err, rep.Integrated)
	}
	switch {
	case errors.As(err, &mbe):
		h.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("the push is over %d bytes (the server's limit); %d changesets before the limit were integrated: push again to send the rest", mbe.Limit, rep.Integrated))
	case errors.As(err, &ue):
		h.failWith(w, r, http.StatusConflict, errorJSON{Error: oneLine(msg.Error()), Code: "conflict", Conflict: toConflictJSON(ue.Conflict)})
	case errors.Is(err, errMalformed), errors.Is(err, merge.ErrMalformed):
		h.fail(w, r, http.StatusBadRequest, "malformed", msg)
	case errors.Is(err, merge.ErrOtherDatabase):
		h.fail(w, r, http.StatusConflict, "other_database", err)
	case errors.Is(err, merge.ErrSameReplica):
		h.fail(w, r, http.StatusConflict, "same_replica", err)
	case errors.As(err, &re):
		h.fail(w, r, http.StatusUnprocessableEntity, "refused", msg)
	case r.Context().Err() != nil:
		h.o.Logger.Warn("push cut", "remote", r.RemoteAddr, "integrated", rep.Integrated, "err", err)
	default:
		h.fail(w, r, http.StatusInternalServerError, "internal", msg)
	}
}
