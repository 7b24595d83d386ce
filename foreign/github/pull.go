package github

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v84/github"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/foreign"
)

// The pull's cursors in the state handle: for issues and for comments,
// the greatest updated_at seen ("since") and the ETag of the first page
// listed from it. The framework's "feed" cursor is the position.
const (
	cIssuesSince   = "issues-since"
	cIssuesETag    = "issues-etag"
	cCommentsSince = "comments-since"
	cCommentsETag  = "comments-etag"
)

// listing is one of the two repo-wide lists the pull reads.
type listing struct {
	kind        string // "issues" or "comments"
	sinceCursor string
	etagCursor  string
}

var listings = []listing{
	{"issues", cIssuesSince, cIssuesETag},
	{"comments", cCommentsSince, cCommentsETag},
}

// firstPage is a page of a list.
type firstPage struct {
	since   string
	etag    string
	issues  []*gh.Issue
	comms   []*gh.IssueComment
	next    int
	changed bool
}

// Latest probes both lists for a change since their cursors: the newest
// hundred items, with If-None-Match on the ETag of the same probe after the
// last pull. When neither changed (two 304s, which cost no rate limit) the
// pull stops there. (Newest first: any change since the cursor changes the
// probe's answer.)
func (g *Gateway) Latest(ctx context.Context, st *foreign.State) (uint64, error) {
	pos, err := st.FeedPosition()
	if err != nil {
		return 0, err
	}
	g.first = map[string]*firstPage{}
	changed := false
	for _, l := range listings {
		since, err := st.Cursor(l.sinceCursor)
		if err != nil {
			return 0, err
		}
		fp, err := g.probe(ctx, st, l, since, true)
		if err != nil {
			return 0, err
		}
		g.first[l.kind] = fp
		changed = changed || fp.changed
	}
	if changed {
		return pos + 1, nil
	}
	return pos, nil
}

// probe asks for the newest item of a list since `since`.
func (g *Gateway) probe(ctx context.Context, st *foreign.State, l listing, since string, cond bool) (*firstPage, error) {
	return g.request(ctx, st, l, since, "desc", 100, 1, cond)
}

// request reads a page of a list; with cond, If-None-Match on the stored
// probe ETag for the same since.
func (g *Gateway) request(ctx context.Context, st *foreign.State, l listing, since, direction string, perPage, page int, cond bool) (*firstPage, error) {
	q := fmt.Sprintf("repos/%s/%s/issues", g.owner, g.repo)
	params := fmt.Sprintf("?sort=updated&direction=%s&per_page=%d&page=%d", direction, perPage, page)
	if l.kind == "comments" {
		q += "/comments"
	} else {
		params = "?state=all&" + params[1:]
	}
	if since != "" {
		params += "&since=" + since
	}
	req, err := g.c.NewRequest(http.MethodGet, q+params, nil)
	if err != nil {
		return nil, err
	}
	if cond {
		stored, err := st.Cursor(l.etagCursor)
		if err != nil {
			return nil, err
		}
		if s, etag, ok := strings.Cut(stored, " "); ok && s == since {
			req.Header.Set("If-None-Match", etag)
		}
	}
	fp := &firstPage{since: since, changed: true}
	var resp *gh.Response
	if l.kind == "issues" {
		resp, err = g.c.Do(ctx, req, &fp.issues)
	} else {
		resp, err = g.c.Do(ctx, req, &fp.comms)
	}
	if resp != nil && resp.StatusCode == http.StatusNotModified {
		fp.changed = false
		return fp, nil
	}
	if err != nil {
		return nil, g.explain(err)
	}
	fp.etag, fp.next = resp.Header.Get("ETag"), resp.NextPage
	return fp, nil
}

// Changes reads both lists after their cursors, page by page (Link
// headers), and emits a changeset for each issue and comment that differs
// from its snapshot.
func (g *Gateway) Changes(ctx context.Context, st *foreign.State, after uint64, emit func(foreign.Change) error) error {
	snaps, err := foreign.NewSnapshots(st, g.url, g.objectUUID, after)
	if err != nil {
		return err
	}
	p := &puller{Snapshots: snaps, g: g}
	for _, l := range listings {
		if probe := g.first[l.kind]; probe != nil && !probe.changed {
			continue
		}
		since, err := st.Cursor(l.sinceCursor)
		if err != nil {
			return err
		}
		// Pages by key: each page after the first starts at the newest
		// updated_at of the one before (items updated meanwhile move to
		// the end, which page numbers would skip over); the items of that
		// second read again are skipped by their snapshots. Page numbers
		// serve only inside one second of more than a hundred items.
		maxUpdated := since
		cur, page := since, 1
		for {
			fp, err := g.request(ctx, st, l, cur, "asc", 100, page, false)
			if err != nil {
				return err
			}
			last := cur
			for _, is := range fp.issues {
				if is.IsPullRequest() {
					continue
				}
				if err := p.issue(is, emit); err != nil {
					return err
				}
				maxUpdated = maxStamp(maxUpdated, stamp(is.GetUpdatedAt()))
			}
			for _, is := range fp.issues {
				last = maxStamp(last, stamp(is.GetUpdatedAt()))
			}
			for _, c := range fp.comms {
				if err := p.comment(ctx, c, emit); err != nil {
					return err
				}
				maxUpdated = maxStamp(maxUpdated, stamp(c.GetUpdatedAt()))
				last = maxStamp(last, stamp(c.GetUpdatedAt()))
			}
			if fp.next == 0 {
				break
			}
			if last > cur {
				cur, page = last, 1
			} else {
				page++
			}
		}
		// The cursor moves to the newest change seen (GitHub's since is
		// "at or after": that second is read again, and what did not
		// change since is skipped by its snapshot). The probe's ETag
		// from there makes the next pull with nothing new free of the
		// rate limit (a 304); if a change came in meanwhile, the probe
		// shows it, and no ETag is kept.
		lst := l
		probe, err := g.probe(ctx, st, l, maxUpdated, false)
		if err != nil {
			return err
		}
		etag := probe.etag
		if !p.seen(probe) {
			etag = ""
		}
		if err := emit(foreign.Change{Pos: p.Next(), Record: func(w *foreign.Writer) error {
			if err := w.SetCursor(lst.sinceCursor, maxUpdated); err != nil {
				return err
			}
			if etag == "" {
				return w.SetCursor(lst.etagCursor, "")
			}
			return w.SetCursor(lst.etagCursor, maxUpdated+" "+etag)
		}}); err != nil {
			return err
		}
	}
	g.first = nil
	return nil
}

// seen says whether every item of a page equals its snapshot.
func (p *puller) seen(fp *firstPage) bool {
	for _, is := range fp.issues {
		props, _ := issueProps(is)
		if !is.IsPullRequest() && !p.Same(p.g.issueKey(is.GetNumber()), props) {
			return false
		}
	}
	for _, c := range fp.comms {
		n, err := issueNumber(c.GetIssueURL())
		if err != nil {
			return false
		}
		props, _ := commentProps(c)
		ref, err := p.Ref(p.g.issueKey(n), IssueType, uuid.Nil)
		if err != nil {
			return false
		}
		props["issue"] = ref.Record.String()
		key := p.g.commentKey(c.GetID())
		if snap, err := p.Snapshot(key); err == nil && snap == nil {
			if p.prs[n] {
				continue // a pull request's comment, never kept
			}
			return false // a new comment
		}
		if !p.Same(key, props) {
			return false
		}
	}
	return true
}

func maxStamp(a, b string) string {
	if b > a { // RFC 3339 in UTC sorts as time does
		return b
	}
	return a
}

// puller translates one pull (foreign.Snapshots), remembering the pull
// requests it met.
type puller struct {
	*foreign.Snapshots
	g   *Gateway
	prs map[int]bool // numbers found to be pull requests
}

func (p *puller) issue(is *gh.Issue, emit func(foreign.Change) error) error {
	props, rec := issueProps(is)
	return p.Object(IssueType, p.g.issueKey(is.GetNumber()), props, rec, is.GetUpdatedAt().Time, nil, emit)
}

func (p *puller) comment(ctx context.Context, c *gh.IssueComment, emit func(foreign.Change) error) error {
	n, err := issueNumber(c.GetIssueURL())
	if err != nil {
		return err
	}
	ikey := p.g.issueKey(n)
	known, err := p.Known(ikey)
	if err != nil {
		return err
	}
	if !known {
		// An issue not seen yet (opened after the issues were listed)
		// comes first; a pull request's comments are not kept.
		if p.prs[n] {
			return nil
		}
		is, _, err := p.g.c.Issues.Get(ctx, p.g.owner, p.g.repo, n)
		if err != nil {
			return p.g.explain(err)
		}
		if is.IsPullRequest() {
			if p.prs == nil {
				p.prs = map[int]bool{}
			}
			p.prs[n] = true
			return nil
		}
		if err := p.issue(is, emit); err != nil {
			return err
		}
	}
	iref, err := p.Ref(ikey, IssueType, uuid.Nil)
	if err != nil {
		return err
	}
	props, rec := commentProps(c)
	props["issue"] = iref.Record.String()
	return p.Object(CommentType, p.g.commentKey(c.GetID()), props, rec, c.GetUpdatedAt().Time, nil, emit)
}
