package httpsync

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
)

// A push body (POST /v1/push) is, in frames (frames.go):
//
//	header       kindHeader, JSON {replica, database, latest}: the pusher
//	resolutions  kindItem frames (resolution.Encode), then kindEnd count
//	changesets   kindItem frames (seq, canonical bytes), then kindEnd last
//
// and nothing after. The pusher sends what the server lacks by its tickets
// (GET /v1/tickets), from the server's position in its log; the server
// integrates it with merge.Pull, reading it as a merge.Source.

// bodySource is a push body read as a merge.Source. It can be read once,
// in order: Info, Resolutions, Changesets.
type bodySource struct {
	fr    *frameReader
	info  merge.Info
	state int // 0: at the resolutions, 1: at the changesets, 2: done
}

var _ merge.FilteredSource = (*bodySource)(nil)

func newBodySource(body io.Reader) (*bodySource, error) {
	b := &bodySource{fr: newFrameReader(body)}
	k, err := b.fr.kind()
	if err != nil {
		return nil, err
	}
	if k != kindHeader {
		return nil, fmt.Errorf("%w: the push does not start with a header frame", errMalformed)
	}
	h, err := b.fr.bytes(64 << 10)
	if err != nil {
		return nil, err
	}
	var j infoJSON
	if err := json.Unmarshal(h, &j); err != nil {
		return nil, fmt.Errorf("%w: the header: %v", errMalformed, err)
	}
	if j.Replica == uuid.Nil || j.Database == uuid.Nil {
		return nil, fmt.Errorf("%w: the header names no replica or database", errMalformed)
	}
	b.info = merge.Info{Replica: j.Replica, Database: j.Database, Latest: j.Latest}
	return b, nil
}

func (b *bodySource) Info(context.Context) (merge.Info, error) { return b.info, nil }

func (b *bodySource) Resolutions(ctx context.Context, have map[uuid.UUID]uint64, fn func(resolution.Decision) error) error {
	if b.state != 0 {
		return errors.New("httpsync: the push body's resolutions were read already")
	}
	var n uint64
	for {
		k, err := b.fr.kind()
		if err != nil {
			return err
		}
		switch k {
		case kindItem:
			raw, err := b.fr.bytes(maxItem)
			if err != nil {
				return err
			}
			d, err := resolution.Decode(raw)
			if err != nil {
				return fmt.Errorf("%w: decision %d of the push: %w", errMalformed, n+1, err)
			}
			n++
			if d.Seq <= have[d.Origin] {
				continue
			}
			if err := fn(*d); err != nil {
				return err
			}
		case kindEnd:
			total, err := b.fr.uvarint()
			if err != nil {
				return err
			}
			if total != n {
				return fmt.Errorf("%w: the resolutions end frame counts %d, %d came", errMalformed, total, n)
			}
			b.state = 1
			return nil
		default:
			return fmt.Errorf("%w: frame kind %d among the resolutions", errMalformed, k)
		}
	}
}

func (b *bodySource) Changesets(ctx context.Context, after uint64, fn func(seq uint64, raw []byte) error) error {
	_, err := b.ChangesetsFor(ctx, after, nil, uuid.Nil, 0, fn)
	return err
}

// ChangesetsFor hands fn the body's entries after `after`: the pusher has
// filtered them by the server's tickets already (the merge checks again).
func (b *bodySource) ChangesetsFor(ctx context.Context, after uint64, _ map[uuid.UUID]uint64, _ uuid.UUID, _ uint64, fn func(seq uint64, raw []byte) error) (uint64, error) {
	if b.state == 0 {
		if err := b.Resolutions(ctx, nil, func(resolution.Decision) error { return nil }); err != nil {
			return 0, err
		}
	}
	if b.state != 1 {
		return 0, errors.New("httpsync: the push body's changesets were read already")
	}
	var prev uint64
	last, err := readChangesets(b.fr, func(seq uint64, raw []byte) error {
		if seq <= prev {
			return fmt.Errorf("%w: entry %d after %d: not in log order", errMalformed, seq, prev)
		}
		prev = seq
		if raw == nil || seq <= after {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(seq, raw)
	})
	if err != nil {
		var se serverError
		if errors.As(err, &se) {
			err = fmt.Errorf("%w: an error frame in a push", errMalformed)
		}
		return 0, err
	}
	if last < prev {
		return 0, fmt.Errorf("%w: the changesets end frame says %d, before the last entry %d", errMalformed, last, prev)
	}
	b.state = 2
	if err := b.fr.atEOF(); err != nil {
		return 0, err
	}
	return last, nil
}

// checkPush reads a whole push body from f, decoding every decision and
// changeset, and rewinds f.
func checkPush(ctx context.Context, f io.ReadSeeker, r *replica.Replica) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	b, err := newBodySource(f)
	if err != nil {
		return err
	}
	if err := b.Resolutions(ctx, nil, func(resolution.Decision) error { return nil }); err != nil {
		return err
	}
	_, err = b.ChangesetsFor(ctx, 0, nil, uuid.Nil, 0, func(seq uint64, raw []byte) error {
		cs, err := changeset.Decode(raw)
		if err != nil {
			return fmt.Errorf("%w at %d of its log: %w", merge.ErrMalformed, seq, err)
		}
		// A changeset under an identity this replica holds must be the
		// one it holds.
		held, same, err := r.Holds(raw)
		if err != nil {
			return err
		}
		if held && !same {
			return &merge.RefusedError{ID: cs.ID(), Seq: seq, Err: errors.New("it differs from the changeset this replica holds under that identity (its content hash does not match): forged or corrupt; refused")}
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// PushOptions tune Push. The zero value is usable.
type PushOptions struct {
	Client *ClientOptions
	// Prefer settles conflicts nothing else settles, from the pusher's
	// side: "mine" keeps the pusher's values, "theirs" the server's; ""
	// lets such a conflict stop the push (a 409: *merge.UnresolvedError).
	Prefer string
	// Force pushes into a replica of another database.
	Force bool
}

// Push integrates into the replica served at rawURL everything l has that
// it lacks, through the server's merge (the same as a local pull there).
// It reads the server's tickets, streams what they do not cover, and
// returns the server's report. A conflict nothing settles is a
// *merge.UnresolvedError (errors.As), as for a local push; other refusals
// are *Error. A cut connection or a failing server is retried from the
// tickets, so nothing is sent twice into the log.
func Push(ctx context.Context, l *merge.Local, rawURL string, opts *PushOptions) (merge.Report, error) {
	var po PushOptions
	if opts != nil {
		po = *opts
	}
	switch po.Prefer {
	case "", "mine", "theirs":
	default:
		return merge.Report{}, fmt.Errorf("httpsync: Prefer %q: want mine or theirs", po.Prefer)
	}
	r, err := Dial(ctx, rawURL, po.Client)
	if err != nil {
		return merge.Report{}, err
	}
	for attempt := 1; ; attempt++ {
		rep, err := r.pushOnce(ctx, l, &po)
		var e *Error
		switch {
		case err == nil:
			return rep, nil
		case errors.As(err, &e) && e.Status < 500 && e.Status != http.StatusTooManyRequests,
			ctx.Err() != nil, attempt >= r.o.Attempts:
			return rep, err
		}
		var ue *merge.UnresolvedError
		if errors.As(err, &ue) || errors.Is(err, merge.ErrOtherDatabase) || errors.Is(err, merge.ErrSameReplica) {
			return rep, err
		}
		wait := r.backoff(attempt)
		r.o.Logger.Warn("push failed; retrying", "url", r.base.Redacted(), "err", err, "attempt", attempt, "wait", wait)
		if err := sleep(ctx, wait); err != nil {
			return rep, err
		}
	}
}

func (r *Remote) pushOnce(ctx context.Context, l *merge.Local, po *PushOptions) (merge.Report, error) {
	li, _ := l.Info(ctx)
	var t ticketsJSON
	if err := r.getJSON(ctx, "/v1/tickets", url.Values{"peer": {li.Replica.String()}}, &t); err != nil {
		return merge.Report{}, err
	}
	if err := merge.Check(li, merge.Info{Replica: t.Replica, Database: t.Database, Latest: t.Latest}, po.Force); err != nil {
		return merge.Report{Source: li.Replica}, err
	}
	q := url.Values{}
	if po.Prefer != "" {
		q.Set("prefer", po.Prefer)
	}
	if po.Force {
		q.Set("force", "true")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writePush(ctx, pw, l, li, &t)) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint("/v1/push", q), pr)
	if err != nil {
		pr.Close()
		return merge.Report{}, err
	}
	req.Header.Set("Content-Type", "application/x-prophet-frames")
	r.authorize(req)
	resp, err := r.o.HTTPClient.Do(req)
	pr.CloseWithError(errors.New("push ended"))
	if err != nil {
		return merge.Report{}, fmt.Errorf("httpsync: push to %s: %w", r.base.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return merge.Report{Source: li.Replica}, answerError(resp)
	}
	defer resp.Body.Close()
	var rep merge.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return merge.Report{}, fmt.Errorf("httpsync: push to %s: reading the report: %w", r.base.Redacted(), err)
	}
	return rep, nil
}

// writePush writes a push body: what l has that the server (its tickets t)
// lacks.
func writePush(ctx context.Context, w io.Writer, l *merge.Local, li merge.Info, t *ticketsJSON) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	f := &frameWriter{w: bw}
	h, _ := json.Marshal(infoJSON{Replica: li.Replica, Database: li.Database, Latest: li.Latest})
	if err := f.message(kindHeader, h); err != nil {
		return err
	}
	var n uint64
	var enc []byte
	err := l.Resolutions(ctx, t.Resolutions, func(d resolution.Decision) error {
		var err error
		if enc, err = resolution.Encode(enc[:0], &d); err != nil {
			return err
		}
		n++
		return f.resolution(enc)
	})
	if err != nil {
		return err
	}
	if err := f.number(kindEnd, n); err != nil {
		return err
	}
	pos := t.Position
	if pos > li.Latest {
		pos = 0 // this replica was restored from an older copy: send it all
	}
	tickets := t.Tickets
	if tickets == nil {
		tickets = map[uuid.UUID]uint64{}
	}
	last := pos
	err = l.Changesets(ctx, pos, func(seq uint64, raw []byte) error {
		id, err := changeset.PeekID(raw)
		if err != nil {
			return fmt.Errorf("changeset %d of this replica: %w", seq, err)
		}
		last = seq
		if !merge.Lacks(id, tickets, t.Replica, t.Latest) {
			return nil
		}
		tickets[id.Origin] = max(tickets[id.Origin], id.Seq)
		return f.changeset(seq, raw)
	})
	if err != nil {
		return err
	}
	if err := f.number(kindEnd, last); err != nil {
		return err
	}
	return bw.Flush()
}
