package foreign

import (
	"regexp"
	"sync"

	"github.com/google/uuid"
)

// Marker is the line a push appends to a text it writes to a remote (a
// ticket's first message, an issue's body, a comment), naming the record
// the remote object is: a retry after a lost answer, or another gateway
// replica, finds the object by it instead of making a second one.
type Marker struct {
	open, close string
	re          func() *regexp.Regexp // compiled on first use, not at init
}

// NewMarker makes the marker "open UUID close", on a line of its own at
// the end of a text.
func NewMarker(open, close string) *Marker {
	re := sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?m)[\r\n]*^` + regexp.QuoteMeta(open) + `([0-9a-f-]{36})` + regexp.QuoteMeta(close) + `\s*\z`)
	})
	return &Marker{open: open, close: close, re: re}
}

// Line is the marker naming id.
func (m *Marker) Line(id uuid.UUID) string { return m.open + id.String() + m.close }

// Append appends the marker to text, on a line of its own.
func (m *Marker) Append(text string, id uuid.UUID) string {
	if text == "" {
		return m.Line(id)
	}
	return text + "\n\n" + m.Line(id)
}

// Split returns text without its marker, and the record the marker names
// (uuid.Nil: none).
func (m *Marker) Split(text string) (string, uuid.UUID) {
	loc := m.re().FindStringSubmatchIndex(text)
	if loc == nil {
		return text, uuid.Nil
	}
	id, err := uuid.Parse(text[loc[2]:loc[3]])
	if err != nil {
		return text, uuid.Nil
	}
	return text[:loc[0]], id
}

// RedactAddr hides whatever could be a password in a gateway's address,
// which may not even parse: anything between "//" and an "@".
func RedactAddr(addr string) string {
	return userinfoRE().ReplaceAllString(addr, "//xxxxx@")
}

// userinfoRE is compiled on first use: every process links the gateways,
// and most never print an address (each regexp compiled at init costs a
// short CLI command its share of a millisecond).
var userinfoRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`//[^/@]*@`) })
