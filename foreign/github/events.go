package github

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	gh "github.com/google/go-github/v84/github"

	"github.com/prophet-sync/prophet/foreign"
)

// WebhookPath is where prophet serve takes GitHub's webhooks.
const WebhookPath = "/v1/webhooks/github"

// commentEvent is an inbound op's payload for a comment: the comment, and
// the number of its issue.
type commentEvent struct {
	Issue   int              `json:"issue"`
	Comment *gh.IssueComment `json:"comment"`
}

// Repository names the repository of an issues or issue_comment event
// (owner/repo) and its API root, so that serve finds the foreign replica.
func Repository(kind string, payload []byte) (owner, repo, api string, err error) {
	ev, err := gh.ParseWebHook(kind, payload)
	if err != nil {
		return "", "", "", fmt.Errorf("github: a %s event that does not parse: %w", kind, err)
	}
	var r *gh.Repository
	switch e := ev.(type) {
	case *gh.IssuesEvent:
		r = e.GetRepo()
	case *gh.IssueCommentEvent:
		r = e.GetRepo()
	default:
		return "", "", "", fmt.Errorf("github: %s events are not synced (issues and issue_comment are)", kind)
	}
	u := r.GetURL() // https://api.github.com/repos/OWNER/REPO
	if i := strings.Index(u, "/repos/"); i >= 0 {
		api = u[:i+1]
	}
	return r.GetOwner().GetLogin(), r.GetName(), api, nil
}

// Event turns an issues or issue_comment event into an inbound op.
func (g *Gateway) Event(ctx context.Context, st *foreign.State, kind string, payload []byte) (foreign.Op, bool, error) {
	ev, err := gh.ParseWebHook(kind, payload)
	if err != nil {
		return foreign.Op{}, false, fmt.Errorf("github: a %s event that does not parse: %w", kind, err)
	}
	snaps, err := foreign.NewSnapshots(st, g.url, g.objectUUID, 0)
	if err != nil {
		return foreign.Op{}, false, err
	}
	p := &puller{Snapshots: snaps, g: g}
	switch e := ev.(type) {
	case *gh.IssuesEvent:
		is := e.GetIssue()
		if is == nil || is.IsPullRequest() || e.GetAction() == "deleted" {
			return foreign.Op{}, false, nil
		}
		key := g.issueKey(is.GetNumber())
		_, marker := splitMarker(is.GetBody())
		ref, err := p.Ref(key, IssueType, marker)
		if err != nil {
			return foreign.Op{}, false, err
		}
		body, err := json.Marshal(is)
		if err != nil {
			return foreign.Op{}, false, err
		}
		return foreign.Op{Ref: ref, Remote: key, Version: is.GetUpdatedAt().UnixNano(), Payload: body}, true, nil
	case *gh.IssueCommentEvent:
		c, is := e.GetComment(), e.GetIssue()
		if c == nil || is == nil || is.IsPullRequest() || e.GetAction() == "deleted" {
			return foreign.Op{}, false, nil
		}
		key := g.commentKey(c.GetID())
		_, marker := splitMarker(c.GetBody())
		ref, err := p.Ref(key, CommentType, marker)
		if err != nil {
			return foreign.Op{}, false, err
		}
		body, err := json.Marshal(commentEvent{Issue: is.GetNumber(), Comment: c})
		if err != nil {
			return foreign.Op{}, false, err
		}
		return foreign.Op{Ref: ref, Remote: key, Version: c.GetUpdatedAt().UnixNano(), Payload: body}, true, nil
	}
	return foreign.Op{}, false, nil
}

// Inbound translates an inbound op into its change, numbered pos: the
// difference between the object in the event and its snapshot. An event
// older than the snapshot (a pull, or a later event, brought a newer
// version) is dropped.
func (g *Gateway) Inbound(ctx context.Context, st *foreign.State, op *foreign.Op, pos uint64) (foreign.Change, error) {
	snaps, err := foreign.NewSnapshots(st, g.url, g.objectUUID, pos-1)
	if err != nil {
		return foreign.Change{}, err
	}
	p := &puller{Snapshots: snaps, g: g}
	snap, err := st.Snapshot(op.Remote)
	if err != nil {
		return foreign.Change{}, err
	}
	fresh := false
	if snap != nil {
		t, err := time.Parse(time.RFC3339, snap["updated"])
		switch {
		case err != nil:
		case t.UnixNano() > op.Version:
			return foreign.Change{}, fmt.Errorf("%w: a newer version (%s) is here already", foreign.ErrDrop, snap["updated"])
		case t.UnixNano() == op.Version:
			// Two versions in one second: the event's payload may be the
			// older. GitHub's current object settles it.
			fresh = true
		}
	}
	var out foreign.Change
	emit := func(c foreign.Change) error { out = c; return nil }
	switch op.Ref.Type {
	case IssueType:
		is := &gh.Issue{}
		if err := json.Unmarshal(op.Payload, is); err != nil {
			return foreign.Change{}, err
		}
		if fresh {
			if is, _, err = g.c.Issues.Get(ctx, g.owner, g.repo, is.GetNumber()); err != nil {
				return foreign.Change{}, transient(g.explain(err))
			}
		}
		err = p.issue(is, emit)
	case CommentType:
		var ce commentEvent
		if err := json.Unmarshal(op.Payload, &ce); err != nil {
			return foreign.Change{}, err
		}
		if fresh {
			c, _, err := g.c.Issues.GetComment(ctx, g.owner, g.repo, ce.Comment.GetID())
			if err != nil {
				return foreign.Change{}, transient(g.explain(err))
			}
			ce.Comment = c
		}
		if ce.Comment.IssueURL == nil {
			ce.Comment.IssueURL = gh.Ptr(fmt.Sprintf("%srepos/%s/%s/issues/%d", g.api, g.owner, g.repo, ce.Issue))
		}
		err = p.comment(ctx, ce.Comment, emit)
	default:
		return foreign.Change{}, fmt.Errorf("github: an inbound op of type %q", op.Ref.Type)
	}
	return out, err
}
