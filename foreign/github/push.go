package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v84/github"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/replica"
)

// Outbound: issue fields and comment bodies GitHub takes.
func (g *Gateway) Outbound(ch *changeset.Change) ([]string, bool) {
	switch ch.RecordType {
	case IssueType:
		return foreign.Writable(ch, issueWritable)
	case CommentType:
		return foreign.Writable(ch, commentWritable)
	}
	return nil, false
}

// Apply carries one outbound op to GitHub.
func (g *Gateway) Apply(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	switch op.Ref.Type {
	case IssueType:
		return g.applyIssue(ctx, st, op, rec)
	case CommentType:
		return g.applyComment(ctx, st, op, rec)
	}
	return foreign.Applied{}, fmt.Errorf("github: records of type %q do not go to GitHub", op.Ref.Type)
}

// definite says whether err is GitHub refusing a write (a 4xx answer), so
// that it surely made nothing.
func definite(err error) bool {
	var er *gh.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode < 500
}

// transient wraps an error that may pass (a lost answer, a 5xx): the op
// stays queued for the next push.
func transient(err error) error { return foreign.Later(err, definite(err)) }

func (g *Gateway) applied(st *foreign.State, key string, props map[string]string, op *foreign.Op) (foreign.Applied, error) {
	prev, err := st.Snapshot(key)
	if err != nil {
		return foreign.Applied{}, err
	}
	return foreign.Answered(key, props, op, assigned, prev), nil
}

// assigned are the properties GitHub sets.
var assigned = append(slices.Clone(derived), "number", "author", "issue")

func (g *Gateway) applyIssue(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	key, known, err := st.Remote(op.Ref)
	if err != nil {
		return foreign.Applied{}, err
	}
	if !known {
		if rec == nil {
			return foreign.Applied{}, nil
		}
		if n, err := strconv.Atoi(rec.Get("number")); err == nil && n > 0 {
			// A record of an issue here (pulled by another gateway
			// replica, or pushed by one), if the issue of that number
			// confirms it by its name or its marker; a number of another
			// repository's (a relay) does not.
			ok, err := g.confirmIssue(ctx, n, op.Ref.Record)
			if err != nil {
				return foreign.Applied{}, err
			}
			if ok {
				return g.updateIssue(ctx, st, op, rec, g.issueKey(n))
			}
		}
		if !op.Create {
			return foreign.Applied{}, fmt.Errorf("%w: %s is not on GitHub as far as this replica knows: pull first", foreign.ErrLater, op.Ref)
		}
		// Made here: on GitHub already if a try of ours lost its answer,
		// or another gateway replica pushed it first; the marker tells.
		n, found, err := g.findIssue(ctx, op.Ref.Record, rec.Created)
		if err != nil {
			return foreign.Applied{}, transient(err)
		}
		if !found {
			return g.createIssue(ctx, st, op, rec)
		}
		key = g.issueKey(n)
	}
	return g.updateIssue(ctx, st, op, rec, key)
}

// confirmIssue says whether issue n is the one record names: by the name
// of its URL, or by its marker.
func (g *Gateway) confirmIssue(ctx context.Context, n int, record uuid.UUID) (bool, error) {
	if g.objectUUID(g.issueKey(n)) == record {
		return true, nil
	}
	is, resp, err := g.c.Issues.Get(ctx, g.owner, g.repo, n)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, transient(g.explain(err))
	}
	_, m := splitMarker(is.GetBody())
	return m == record, nil
}

// findIssue looks for the issue whose body carries record's marker (made
// by a try of ours whose answer was lost, or by another gateway replica),
// among those updated since the record was made (less ten minutes for
// clocks): an issue made for it cannot be older.
func (g *Gateway) findIssue(ctx context.Context, record uuid.UUID, made time.Time) (int, bool, error) {
	opts := &gh.IssueListByRepoOptions{State: "all", Sort: "created", Direction: "desc", Since: made.Add(-10 * time.Minute), ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		issues, resp, err := g.c.Issues.ListByRepo(ctx, g.owner, g.repo, opts)
		if err != nil {
			return 0, false, g.explain(err)
		}
		for _, is := range issues {
			if _, m := splitMarker(is.GetBody()); m == record {
				return is.GetNumber(), true, nil
			}
		}
		if resp.NextPage == 0 {
			return 0, false, nil
		}
		opts.ListOptions.Page = resp.NextPage
	}
}

func withMarker(body string, id uuid.UUID) string { return markers.Append(body, id) }

func issueRequest(rec *replica.Record, props []string, id uuid.UUID) *gh.IssueRequest {
	req := &gh.IssueRequest{}
	for _, p := range props {
		v := rec.Get(p)
		switch p {
		case "title":
			req.Title = gh.Ptr(v)
		case "body":
			req.Body = gh.Ptr(withMarker(v, id))
		case "state":
			if v != "" {
				req.State = gh.Ptr(v)
			}
		case "labels":
			l := splitSet(v)
			req.Labels = &l
		case "assignees":
			a := splitSet(v)
			req.Assignees = &a
		}
	}
	return req
}

func (g *Gateway) createIssue(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	req := issueRequest(rec, []string{"title", "body", "labels", "assignees"}, op.Ref.Record)
	if req.Body == nil {
		req.Body = gh.Ptr(marker(op.Ref.Record))
	}
	is, _, err := g.c.Issues.Create(ctx, g.owner, g.repo, req)
	if err != nil {
		if definite(err) {
			return foreign.Applied{}, g.explain(err)
		}
		// The answer was lost, or GitHub failed after the write: look.
		n, found, ferr := g.findIssue(ctx, op.Ref.Record, rec.Created)
		if ferr != nil || !found {
			return foreign.Applied{}, transient(err)
		}
		if is, _, err = g.c.Issues.Get(ctx, g.owner, g.repo, n); err != nil {
			return foreign.Applied{}, transient(err)
		}
	}
	if rec.Get("state") == "closed" && is.GetState() != "closed" {
		if is, _, err = g.c.Issues.Edit(ctx, g.owner, g.repo, is.GetNumber(), &gh.IssueRequest{State: gh.Ptr("closed")}); err != nil {
			return foreign.Applied{}, transient(err)
		}
	}
	props, _ := issueProps(is)
	return g.applied(st, g.issueKey(is.GetNumber()), props, op)
}

func (g *Gateway) updateIssue(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record, key string) (foreign.Applied, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(key, "issue/"))
	if err != nil {
		return foreign.Applied{}, fmt.Errorf("github: state handle maps %s to %q", op.Ref, key)
	}
	is, _, err := g.c.Issues.Get(ctx, g.owner, g.repo, n)
	if err != nil {
		return foreign.Applied{}, transient(g.explain(err))
	}
	cur, _ := issueProps(is)
	prev, err := st.Snapshot(key)
	if err != nil {
		return foreign.Applied{}, err
	}
	props := op.Props
	if rec == nil { // deleted here: closed there
		props = []string{"state"}
		rec = &replica.Record{Props: []replica.Prop{{Name: "state", Value: "closed"}}}
	}
	var change []string
	for _, p := range props {
		if rec.Get(p) == cur[p] {
			continue
		}
		if prev != nil && prev[p] != cur[p] {
			return foreign.Applied{}, fmt.Errorf("%w: GitHub's %s of issue #%d changed since the last pull: pull first, to settle it", foreign.ErrLater, p, n)
		}
		change = append(change, p)
	}
	if len(change) > 0 {
		if is, _, err = g.c.Issues.Edit(ctx, g.owner, g.repo, n, issueRequest(rec, change, op.Ref.Record)); err != nil {
			return foreign.Applied{}, transient(g.explain(err))
		}
		cur, _ = issueProps(is)
	}
	return g.applied(st, key, cur, op)
}

func (g *Gateway) applyComment(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	key, known, err := st.Remote(op.Ref)
	if err != nil {
		return foreign.Applied{}, err
	}
	if rec == nil {
		if known {
			return foreign.Applied{}, fmt.Errorf("github: deleting a comment (%s) is not synced; delete it on GitHub", key)
		}
		return foreign.Applied{}, nil
	}
	iu, err := uuid.Parse(rec.Get("issue"))
	if err != nil {
		return foreign.Applied{}, fmt.Errorf("github: comment %s has no valid issue property (%q)", op.Ref.Record, rec.Get("issue"))
	}
	ikey, iknown, err := st.Remote(foreign.Ref{Type: IssueType, Record: iu})
	if err != nil {
		return foreign.Applied{}, err
	}
	if !iknown {
		return foreign.Applied{}, fmt.Errorf("%w: its issue %s is not on GitHub yet", foreign.ErrLater, iu)
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(ikey, "issue/"))
	if !known && !op.Create {
		return foreign.Applied{}, fmt.Errorf("%w: comment %s is not on GitHub as far as this replica knows: pull first", foreign.ErrLater, op.Ref.Record)
	}
	if !known {
		c, found, err := g.findComment(ctx, n, op.Ref.Record)
		if err != nil {
			return foreign.Applied{}, transient(err)
		}
		if !found {
			c, _, err = g.c.Issues.CreateComment(ctx, g.owner, g.repo, n, &gh.IssueComment{Body: gh.Ptr(withMarker(rec.Get("body"), op.Ref.Record))})
			if err != nil {
				if definite(err) {
					return foreign.Applied{}, g.explain(err)
				}
				var ferr error
				if c, found, ferr = g.findComment(ctx, n, op.Ref.Record); ferr != nil || !found {
					return foreign.Applied{}, transient(err)
				}
			}
		}
		props, _ := commentProps(c)
		props["issue"] = iu.String()
		opc := *op
		opc.Create = true
		return g.applied(st, g.commentKey(c.GetID()), props, &opc)
	}
	id, _ := strconv.ParseInt(strings.TrimPrefix(key, "comment/"), 10, 64)
	c, _, err := g.c.Issues.GetComment(ctx, g.owner, g.repo, id)
	if err != nil {
		return foreign.Applied{}, transient(g.explain(err))
	}
	cur, _ := commentProps(c)
	cur["issue"] = iu.String()
	if rec.Get("body") != cur["body"] {
		prev, err := st.Snapshot(key)
		if err != nil {
			return foreign.Applied{}, err
		}
		if prev != nil && prev["body"] != cur["body"] {
			return foreign.Applied{}, fmt.Errorf("%w: the comment changed on GitHub since the last pull: pull first, to settle it", foreign.ErrLater)
		}
		if c, _, err = g.c.Issues.EditComment(ctx, g.owner, g.repo, id, &gh.IssueComment{Body: gh.Ptr(withMarker(rec.Get("body"), op.Ref.Record))}); err != nil {
			return foreign.Applied{}, transient(g.explain(err))
		}
		cur, _ = commentProps(c)
		cur["issue"] = iu.String()
	}
	return g.applied(st, key, cur, op)
}

// findComment looks among issue n's comments for the one carrying
// record's marker.
func (g *Gateway) findComment(ctx context.Context, n int, record uuid.UUID) (*gh.IssueComment, bool, error) {
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := g.c.Issues.ListComments(ctx, g.owner, g.repo, n, opts)
		if err != nil {
			return nil, false, g.explain(err)
		}
		for _, c := range cs {
			if _, m := splitMarker(c.GetBody()); m == record {
				return c, true, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, false, nil
		}
		opts.Page = resp.NextPage
	}
}
