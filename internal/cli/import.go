package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
)

var importCmd = &command{
	name:    "import",
	args:    "FILE|-",
	summary: "load records from JSON lines (the output of prophet export)",
	detail: `
Reads one record object per line (the record shape of prophet --help; - is
standard input) and makes each record hold exactly those properties: new
records are created, existing ones updated, unchanged ones left alone, so
importing a file of records with "uuid"s twice changes nothing. A line
without "uuid" makes a new record every time it is imported. Each line is
one changeset, committed in large batches. Blank lines are skipped.

On a bad line, or when interrupted, the import stops and says which lines
are committed; import the rest from the line it names (tail -n +N FILE |
prophet import -).`,
	mode: openWrite,
	min:  1, max: 1,
	run: func(ctx context.Context, c *call) error {
		in := c.stdin
		if name := c.args[0]; name != "-" {
			f, err := os.Open(c.path(name))
			if err != nil {
				reason := err
				var pe *fs.PathError
				if errors.As(err, &pe) {
					reason = pe.Err
				}
				return userf(err, "cannot read %s: %v; check the file name", name, reason)
			}
			defer f.Close()
			in = f
		}
		ctx, cancel := context.WithCancel(ctx) // ends the reader
		defer cancel()
		src := newImportSource(ctx, in)
		res, err := c.r.Bulk(ctx, src.next)
		if err != nil {
			return src.explain(err)
		}
		_, err = fmt.Fprintf(c.out, "imported %s: %d changed, %d unchanged\n",
			count(uint64(res.Units), "record"), res.Changesets, res.Units-res.Changesets)
		return err
	},
}

// importSource turns lines into bulk units, one Put per line.
type importSource struct {
	ctx   context.Context
	lines <-chan readLine
	line  int // the line last read
}

type readLine struct {
	b   []byte
	err error // then b is nil and the input is over
}

// newImportSource reads in on its own goroutine, so that an interrupt is
// seen even while a read from a terminal or pipe blocks. The goroutine ends
// at the end of the input; after an interrupt it may stay blocked in Read
// until the process exits, which follows at once.
func newImportSource(ctx context.Context, in io.Reader) *importSource {
	ch := make(chan readLine, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), changeset.MaxEncodedSize)
		for sc.Scan() {
			select {
			case ch <- readLine{b: bytes.Clone(sc.Bytes())}:
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil {
			ch <- readLine{err: err}
		}
	}()
	return &importSource{ctx: ctx, lines: ch}
}

// lineError is a line import could not use.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

func (s *importSource) next() (*replica.Unit, error) {
	for {
		var l readLine
		var ok bool
		select {
		case l, ok = <-s.lines:
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		}
		switch {
		case !ok:
			return nil, io.EOF
		case l.err != nil:
			return nil, &lineError{s.line + 1, l.err}
		}
		s.line++
		b := bytes.TrimSpace(l.b)
		if len(b) == 0 {
			continue
		}
		e, err := parseRecordLine(b)
		if err != nil {
			return nil, &lineError{s.line, err}
		}
		return &replica.Unit{Edits: []replica.Edit{e}}, nil
	}
}

// parseRecordLine reads one record object as an edit that makes the record
// hold exactly its properties.
func parseRecordLine(b []byte) (replica.Edit, error) {
	var rec recordJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&rec); err != nil {
		return replica.Edit{}, fmt.Errorf("not a record object: %v", err)
	}
	if d.More() {
		return replica.Edit{}, errors.New("more than one JSON value on the line")
	}
	if err := checkName("record type", rec.Type); err != nil {
		return replica.Edit{}, err
	}
	for name := range rec.Props {
		if err := checkName("property name", name); err != nil {
			return replica.Edit{}, err
		}
	}
	e := replica.Edit{Type: rec.Type, Op: replica.Create, Set: rec.Props}
	if rec.UUID != "" {
		if rec.Props == nil {
			// Put would unset every property: say so rather than do it.
			return replica.Edit{}, errors.New(`no "props": a record with a "uuid" is set to exactly its props; give "props":{} to clear it`)
		}
		id, err := uuid.Parse(rec.UUID)
		if err != nil || id == uuid.Nil {
			return replica.Edit{}, fmt.Errorf("uuid %q is not a UUID", rec.UUID)
		}
		e.Record, e.Op = id, replica.Put
	}
	return e, nil
}

// explain makes a bulk load's error say which line failed and what of the
// file is committed.
func (s *importSource) explain(err error) error {
	var (
		le *lineError
		ue *replica.UnitError
	)
	switch {
	case errors.As(err, &le):
	case errors.As(err, &ue):
		// The replica refused the unit made from the line last read.
		le = &lineError{s.line, ue.Err}
	case errors.Is(err, context.Canceled) && s.line == 0:
		return userf(err, "import interrupted before it read a line; nothing is committed")
	case errors.Is(err, context.Canceled):
		// Every line read was staged, and is committed.
		return userf(err, "import interrupted; lines 1-%d are committed; import the rest from line %d (tail -n +%d FILE | prophet import -)", s.line, s.line+1, s.line+1)
	default:
		return err
	}
	return userf(err, "import: %v; the lines before line %d are committed; fix line %d and import from it (tail -n +%d FILE | prophet import -), not the whole file, or lines without a uuid are made twice", oneLine(le.Error()), le.line, le.line, le.line)
}
