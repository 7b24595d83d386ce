package rt

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/foreigntest"
)

// rtRemote is a queue of its own on the real RT server.
type rtRemote struct {
	s     *server
	queue string
}

func (r *rtRemote) Gateway(t testing.TB, rt http.RoundTripper) foreign.Gateway {
	g, err := New(Config{Address: r.s.address(r.queue), Credentials: r.s.cred, Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (r *rtRemote) Create(t testing.TB, title string) string {
	return remoteTicket(r.s.createTicket(t, r.queue, title, "", ""))
}

func (r *rtRemote) SetTitle(t testing.TB, key, title string) {
	r.s.set(t, strings.TrimPrefix(key, "ticket/"), map[string]any{"Subject": title})
}

func (r *rtRemote) Title(t testing.TB, key string) string {
	return r.s.ticket(t, strings.TrimPrefix(key, "ticket/")).Subject
}

func (r *rtRemote) Count(t testing.TB) int {
	var pg page[struct{}]
	q := url.Values{"query": {"Queue = '" + sqlQuote(r.queue) + "'"}, "per_page": {"1"}}
	if _, err := r.s.c.do(context.Background(), "GET", "/tickets", q, nil, nil, &pg); err != nil {
		t.Fatal(err)
	}
	return int(pg.Total)
}

func TestConformance(t *testing.T) {
	s := rtServer(t)
	foreigntest.Run(t, foreigntest.Kit{
		NewRemote: func(t testing.TB) foreigntest.Remote { return &rtRemote{s: s, queue: s.queue(t)} },
		Type:      TicketType,
		Title:     "subject",
		Writes: func(r *http.Request) bool {
			return r.Method == http.MethodPost && !strings.HasSuffix(r.URL.Path, "/attachments")
		},
	})
}
