package githubfake

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/url"
	"time"
)

// This file renders the fake's state as GitHub's JSON. Objects are
// map[string]any so that fields GitHub sends as null can be null.

// links carries the bases that URLs in a rendered object start with.
type links struct {
	api  string // e.g. http://127.0.0.1:1234 (no trailing slash)
	html string // e.g. https://github.com
}

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

func nodeID(prefix string, id int64) string {
	return prefix + "_" + base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "fake:%d", id))
}

func (l links) user(u *User) map[string]any {
	api := l.api + "/users/" + url.PathEscape(u.Login)
	return map[string]any{
		"login":               u.Login,
		"id":                  u.ID,
		"node_id":             nodeID("U", u.ID),
		"avatar_url":          fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", u.ID),
		"gravatar_id":         "",
		"url":                 api,
		"html_url":            l.html + "/" + url.PathEscape(u.Login),
		"followers_url":       api + "/followers",
		"following_url":       api + "/following{/other_user}",
		"gists_url":           api + "/gists{/gist_id}",
		"starred_url":         api + "/starred{/owner}{/repo}",
		"subscriptions_url":   api + "/subscriptions",
		"organizations_url":   api + "/orgs",
		"repos_url":           api + "/repos",
		"events_url":          api + "/events{/privacy}",
		"received_events_url": api + "/received_events",
		"type":                "User",
		"user_view_type":      "public",
		"site_admin":          false,
	}
}

// privateUser is the authenticated user as GET /user shows it.
func (l links) privateUser(u *User, created time.Time, publicRepos int) map[string]any {
	m := l.user(u)
	m["user_view_type"] = "private"
	for k, v := range map[string]any{
		"name": nil, "company": nil, "blog": "", "location": nil, "email": nil,
		"hireable": nil, "bio": nil, "twitter_username": nil,
		"public_repos": publicRepos, "public_gists": 0, "followers": 0, "following": 0,
		"created_at": ts(created), "updated_at": ts(created),
		"private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0,
		"disk_usage": 0, "collaborators": 0, "two_factor_authentication": true,
	} {
		m[k] = v
	}
	return m
}

func (l links) repo(r *repo, owner *User, openIssues int) map[string]any {
	full := r.Owner + "/" + r.Name
	api := l.api + "/repos/" + full
	html := l.html + "/" + full
	host := "github.com"
	if u, err := url.Parse(l.html); err == nil && u.Host != "" {
		host = u.Host
	}
	visibility := "public"
	if r.Private {
		visibility = "private"
	}
	var desc any
	if r.Description != "" {
		desc = r.Description
	}
	m := map[string]any{
		"id": r.ID, "node_id": nodeID("R", r.ID), "name": r.Name, "full_name": full,
		"owner": l.user(owner), "private": r.Private, "html_url": html,
		"description": desc, "fork": false, "url": api,
		"archive_url":       api + "/{archive_format}{/ref}",
		"assignees_url":     api + "/assignees{/user}",
		"blobs_url":         api + "/git/blobs{/sha}",
		"branches_url":      api + "/branches{/branch}",
		"collaborators_url": api + "/collaborators{/collaborator}",
		"comments_url":      api + "/comments{/number}",
		"commits_url":       api + "/commits{/sha}",
		"compare_url":       api + "/compare/{base}...{head}",
		"contents_url":      api + "/contents/{+path}",
		"contributors_url":  api + "/contributors",
		"deployments_url":   api + "/deployments",
		"downloads_url":     api + "/downloads",
		"events_url":        api + "/events",
		"forks_url":         api + "/forks",
		"git_commits_url":   api + "/git/commits{/sha}",
		"git_refs_url":      api + "/git/refs{/sha}",
		"git_tags_url":      api + "/git/tags{/sha}",
		"git_url":           "git://" + host + "/" + full + ".git",
		"issue_comment_url": api + "/issues/comments{/number}",
		"issue_events_url":  api + "/issues/events{/number}",
		"issues_url":        api + "/issues{/number}",
		"keys_url":          api + "/keys{/key_id}",
		"labels_url":        api + "/labels{/name}",
		"languages_url":     api + "/languages",
		"merges_url":        api + "/merges",
		"milestones_url":    api + "/milestones{/number}",
		"notifications_url": api + "/notifications{?since,all,participating}",
		"pulls_url":         api + "/pulls{/number}",
		"releases_url":      api + "/releases{/id}",
		"ssh_url":           "git@" + host + ":" + full + ".git",
		"stargazers_url":    api + "/stargazers",
		"statuses_url":      api + "/statuses/{sha}",
		"subscribers_url":   api + "/subscribers",
		"subscription_url":  api + "/subscription",
		"tags_url":          api + "/tags",
		"teams_url":         api + "/teams",
		"trees_url":         api + "/git/trees{/sha}",
		"clone_url":         html + ".git",
		"mirror_url":        nil,
		"hooks_url":         api + "/hooks",
		"svn_url":           html,
		"homepage":          nil,
		"language":          nil,
		"forks_count":       0, "forks": 0,
		"stargazers_count": 0, "watchers_count": 0, "watchers": 0,
		"size": 0, "default_branch": "main",
		"open_issues_count": openIssues, "open_issues": openIssues,
		"is_template": false, "topics": []any{},
		"has_issues": true, "has_projects": true, "has_wiki": true, "has_pages": false,
		"has_downloads": true, "has_discussions": false,
		"archived": false, "disabled": false, "visibility": visibility,
		"pushed_at":  ts(r.UpdatedAt),
		"created_at": ts(r.CreatedAt), "updated_at": ts(r.UpdatedAt),
		"permissions": map[string]any{
			"admin": true, "maintain": true, "push": true, "triage": true, "pull": true,
		},
		"allow_forking": true, "web_commit_signoff_required": false,
		"license": nil, "network_count": 0, "subscribers_count": 0,
	}
	return m
}

// labelID gives a label a stable id within its repository.
func labelID(repoID int64, name string) int64 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d/%s", repoID, name)
	return int64(h.Sum32())
}

func (l links) label(r *repo, name string) map[string]any {
	id := labelID(r.ID, name)
	return map[string]any{
		"id": id, "node_id": nodeID("LA", id),
		"url":  l.api + "/repos/" + r.Owner + "/" + r.Name + "/labels/" + url.PathEscape(name),
		"name": name, "description": nil, "color": "ededed", "default": false,
	}
}

func reactions(api string) map[string]any {
	return map[string]any{
		"url": api + "/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0,
		"hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
	}
}

// authorAssociation is OWNER for the repository owner and NONE otherwise.
func authorAssociation(r *repo, login string) string {
	if login == r.Owner {
		return "OWNER"
	}
	return "NONE"
}

// issue renders is; users maps logins to users and comments is its count.
func (l links) issue(r *repo, is *Issue, users func(string) *User, comments int) map[string]any {
	base := l.api + "/repos/" + r.Owner + "/" + r.Name
	api := fmt.Sprintf("%s/issues/%d", base, is.Number)
	kind := "issues"
	if is.PullRequest {
		kind = "pull"
	}
	html := fmt.Sprintf("%s/%s/%s/%s/%d", l.html, r.Owner, r.Name, kind, is.Number)
	labels := make([]any, 0, len(is.Labels))
	for _, n := range is.Labels {
		labels = append(labels, l.label(r, n))
	}
	assignees := make([]any, 0, len(is.Assignees))
	var assignee any
	for i, a := range is.Assignees {
		u := l.user(users(a))
		if i == 0 {
			assignee = u
		}
		assignees = append(assignees, u)
	}
	var body, stateReason, closedBy any
	if is.Body != "" {
		body = is.Body
	}
	if is.StateReason != "" {
		stateReason = is.StateReason
	}
	if is.ClosedBy != "" {
		closedBy = l.user(users(is.ClosedBy))
	}
	m := map[string]any{
		"id": is.ID, "node_id": nodeID("I", is.ID), "url": api,
		"repository_url": base,
		"labels_url":     api + "/labels{/name}",
		"comments_url":   api + "/comments",
		"events_url":     api + "/events",
		"html_url":       html,
		"number":         is.Number, "state": is.State, "state_reason": stateReason,
		"title": is.Title, "body": body, "user": l.user(users(is.User)),
		"labels": labels, "assignee": assignee, "assignees": assignees,
		"milestone": nil, "locked": is.Locked, "active_lock_reason": nil,
		"comments":                 comments,
		"closed_at":                ts(is.ClosedAt),
		"created_at":               ts(is.CreatedAt),
		"updated_at":               ts(is.UpdatedAt),
		"closed_by":                closedBy,
		"author_association":       authorAssociation(r, is.User),
		"reactions":                reactions(api),
		"timeline_url":             api + "/timeline",
		"performed_via_github_app": nil,
	}
	if is.PullRequest {
		pr := fmt.Sprintf("%s/pulls/%d", base, is.Number)
		m["pull_request"] = map[string]any{
			"url": pr, "html_url": html, "diff_url": html + ".diff",
			"patch_url": html + ".patch", "merged_at": nil,
		}
		m["draft"] = false
	}
	return m
}

func (l links) comment(r *repo, c *Comment, users func(string) *User) map[string]any {
	base := l.api + "/repos/" + r.Owner + "/" + r.Name
	api := fmt.Sprintf("%s/issues/comments/%d", base, c.ID)
	kind := "issues"
	if is := r.issues[c.IssueNumber]; is != nil && is.PullRequest {
		kind = "pull"
	}
	return map[string]any{
		"id": c.ID, "node_id": nodeID("IC", c.ID), "url": api,
		"html_url": fmt.Sprintf("%s/%s/%s/%s/%d#issuecomment-%d",
			l.html, r.Owner, r.Name, kind, c.IssueNumber, c.ID),
		"body":                     c.Body,
		"user":                     l.user(users(c.User)),
		"created_at":               ts(c.CreatedAt),
		"updated_at":               ts(c.UpdatedAt),
		"issue_url":                fmt.Sprintf("%s/issues/%d", base, c.IssueNumber),
		"author_association":       authorAssociation(r, c.User),
		"reactions":                reactions(api),
		"performed_via_github_app": nil,
	}
}
