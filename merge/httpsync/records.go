package httpsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
)

// The read-only records API (DESIGN.md, "Records API"), for apps: the JSON
// shapes of prophet show|list|history --json.
//
//	GET /v1/records/{type}[?prop=value&…][&limit=N]  live records, one JSON object a line
//	GET /v1/records/{type}/{id}                       one record (id: LUID, UUID or unique prefix)
//	GET /v1/records/{type}/{id}/history               its changesets, one a line, oldest first

// maxListLimit caps ?limit=, and is the default.
const maxListLimit = 1_000_000

func (h *Handler) records(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	filter := map[string]string{}
	limit := maxListLimit
	for name, vs := range r.URL.Query() {
		if name == "limit" {
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 1 {
				h.fail(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("limit=%q: want a positive number", vs[0]))
				return
			}
			limit = min(n, maxListLimit)
			continue
		}
		if len(vs) != 1 {
			h.fail(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("property %q is filtered on %d times; give it once", name, len(vs)))
			return
		}
		filter[name] = vs[0]
	}
	lines := h.jsonLines(w)
	n := 0
	err := h.l.R.List(typ, filter, func(rec *replica.Record) error {
		if err := r.Context().Err(); err != nil {
			return err
		}
		if n++; n > limit {
			return errStop
		}
		return lines.write(rec.ToJSON())
	})
	lines.end(r, err)
}

func (h *Handler) record(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	id, ok := h.resolve(w, r, typ)
	if !ok {
		return
	}
	rec, err := h.l.R.Get(typ, id)
	if err != nil {
		h.recordFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec.ToJSON())
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	id, ok := h.resolve(w, r, typ)
	if !ok {
		return
	}
	lines := h.jsonLines(w)
	err := h.l.R.History(typ, id, func(cs *changeset.Changeset) error {
		hash, err := cs.Hash()
		if err != nil {
			return err
		}
		return lines.write(cs.ToJSON(hash))
	})
	lines.end(r, err)
}

// resolve turns the {id} of the path into a record UUID, or answers 404 or
// 409 (an ambiguous prefix).
func (h *Handler) resolve(w http.ResponseWriter, r *http.Request, typ string) (uuid.UUID, bool) {
	id, err := h.l.R.ResolveID(typ, r.PathValue("id"))
	if err != nil {
		h.recordFailed(w, r, err)
		return uuid.Nil, false
	}
	return id, true
}

func (h *Handler) recordFailed(w http.ResponseWriter, r *http.Request, err error) {
	var ae *replica.AmbiguousIDError
	switch {
	case errors.As(err, &ae):
		h.fail(w, r, http.StatusConflict, "ambiguous", err)
	case errors.Is(err, replica.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, "not_found", err)
	default:
		h.fail(w, r, http.StatusInternalServerError, "internal", err)
	}
}

// errStop ends a listing at its limit.
var errStop = errors.New("limit reached")

// jsonLines is a streamed answer of one JSON value a line. Its status is
// 200 once the first line is out: an error after that ends the stream with
// a last line {"error":…,"code":…}, so a client can tell a complete answer
// (no error line) from a cut one.
type jsonLines struct {
	h       *Handler
	w       http.ResponseWriter
	enc     *json.Encoder
	started bool
}

func (h *Handler) jsonLines(w http.ResponseWriter) *jsonLines {
	return &jsonLines{h: h, w: w, enc: json.NewEncoder(w)}
}

func (l *jsonLines) write(v any) error {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/x-ndjson")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.enc.Encode(v)
}

func (l *jsonLines) end(r *http.Request, err error) {
	if errors.Is(err, errStop) || r.Context().Err() != nil {
		err = nil
	}
	switch {
	case err != nil && !l.started:
		l.h.fail(l.w, r, http.StatusInternalServerError, "internal", err)
	case err != nil:
		l.h.o.Logger.Error("records answer cut", "path", r.URL.Path, "err", err)
		l.enc.Encode(errorJSON{Error: oneLine(err.Error()), Code: "internal"})
	case !l.started:
		l.w.Header().Set("Content-Type", "application/x-ndjson")
		l.w.WriteHeader(http.StatusOK)
	}
}
