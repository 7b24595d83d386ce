package githubfake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// route dispatches an authenticated request. It runs with s.mu held.
func (s *Server) route(c *call) *reply {
	seg := strings.Split(strings.Trim(c.path, "/"), "/")
	m := c.r.Method
	switch {
	case len(seg) == 1 && seg[0] == "user" && m == http.MethodGet:
		return s.getUser(c)
	case len(seg) == 1 && seg[0] == "rate_limit" && m == http.MethodGet:
		return s.getRateLimit(c)
	case len(seg) < 3 || seg[0] != "repos":
		return notFound()
	}
	r, err := s.repoLocked(seg[1], seg[2])
	if err != nil {
		return notFound()
	}
	rest := seg[3:]
	switch {
	case len(rest) == 0 && m == http.MethodGet:
		return s.getRepo(c, r)
	case len(rest) == 0 || rest[0] != "issues":
		return notFound()
	case len(rest) == 1 && m == http.MethodGet:
		return s.listIssues(c, r)
	case len(rest) == 1 && m == http.MethodPost:
		return s.createIssue(c, r)
	case len(rest) == 2 && rest[1] == "comments" && m == http.MethodGet:
		return s.listComments(c, r, nil)
	case len(rest) == 3 && rest[1] == "comments":
		id, err := strconv.ParseInt(rest[2], 10, 64)
		cm, ok := r.comments[id]
		if err != nil || !ok {
			return notFound()
		}
		switch m {
		case http.MethodGet:
			return newReply(http.StatusOK, c.links.comment(r, cm, s.userLocked))
		case http.MethodPatch:
			return s.editComment(c, r, cm)
		}
		return notFound()
	}
	n, err := strconv.Atoi(rest[1])
	is, ok := r.issues[n]
	if err != nil || !ok {
		return notFound()
	}
	switch {
	case len(rest) == 2 && m == http.MethodGet:
		return newReply(http.StatusOK, s.renderIssue(c.links, r, is))
	case len(rest) == 2 && m == http.MethodPatch:
		return s.editIssue(c, r, is)
	case len(rest) == 3 && rest[2] == "comments" && m == http.MethodGet:
		return s.listComments(c, r, is)
	case len(rest) == 3 && rest[2] == "comments" && m == http.MethodPost:
		return s.createComment(c, r, is)
	}
	return notFound()
}

func (s *Server) getUser(c *call) *reply {
	u := s.userLocked(c.login)
	repos := 0
	for _, r := range s.repos {
		if strings.EqualFold(r.Owner, u.Login) {
			repos++
		}
	}
	return newReply(http.StatusOK, c.links.privateUser(u, time.Unix(1300000000, 0), repos))
}

func (s *Server) getRateLimit(c *call) *reply {
	t := s.tokens[credential(c.r)]
	core := map[string]any{
		"limit": t.limit, "remaining": max(t.remaining, 0),
		"used": t.limit - max(t.remaining, 0), "reset": t.reset.Unix(), "resource": "core",
	}
	reset := s.now().Add(time.Minute).Unix()
	other := func(name string, limit int) map[string]any {
		return map[string]any{"limit": limit, "remaining": limit, "used": 0, "reset": reset, "resource": name}
	}
	return newReply(http.StatusOK, map[string]any{
		"resources": map[string]any{
			"core":    core,
			"search":  other("search", 30),
			"graphql": other("graphql", 5000),
		},
		"rate": core,
	})
}

func (s *Server) getRepo(c *call, r *repo) *reply {
	open := 0
	for _, is := range r.issues {
		if is.State == "open" {
			open++
		}
	}
	return newReply(http.StatusOK, c.links.repo(r, s.userLocked(r.Owner), open))
}

func (s *Server) renderIssue(l links, r *repo, is *Issue) map[string]any {
	return l.issue(r, is, s.userLocked, countComments(r, is.Number))
}

func countComments(r *repo, number int) int {
	n := 0
	for _, c := range r.comments {
		if c.IssueNumber == number {
			n++
		}
	}
	return n
}

func (s *Server) listIssues(c *call, r *repo) *reply {
	q := c.r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	if state != "open" && state != "closed" && state != "all" {
		return validationFailed("Issue", "state", "invalid")
	}
	sortBy := q.Get("sort")
	if sortBy == "" {
		sortBy = "created"
	}
	if sortBy != "created" && sortBy != "updated" && sortBy != "comments" {
		return validationFailed("Issue", "sort", "invalid")
	}
	desc, rep := direction(q.Get("direction"), true)
	if rep != nil {
		return rep
	}
	since, hasSince, rep := parseSince(c)
	if rep != nil {
		return rep
	}
	p, rep := parsePage(c)
	if rep != nil {
		return rep
	}
	var labels []string
	if v := q.Get("labels"); v != "" {
		labels = strings.Split(v, ",")
	}
	creator := q.Get("creator")

	counts := map[int]int{}
	for _, cm := range r.comments {
		counts[cm.IssueNumber]++
	}
	var list []*Issue
	for _, is := range r.issues {
		if state != "all" && is.State != state {
			continue
		}
		if hasSince && is.UpdatedAt.Before(since) {
			continue
		}
		if creator != "" && !strings.EqualFold(creator, is.User) {
			continue
		}
		if len(minus(labels, is.Labels)) > 0 {
			continue
		}
		list = append(list, is)
	}
	key := func(is *Issue) int64 {
		switch sortBy {
		case "updated":
			return is.UpdatedAt.Unix()
		case "comments":
			return int64(counts[is.Number])
		}
		return is.CreatedAt.Unix()
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		ka, kb := key(a), key(b)
		if ka == kb {
			ka, kb = a.ID, b.ID
		}
		if desc {
			return ka > kb
		}
		return ka < kb
	})
	rep = newReply(http.StatusOK, nil)
	out := []any{}
	for _, is := range paginate(c, rep, list, p) {
		out = append(out, c.links.issue(r, is, s.userLocked, counts[is.Number]))
	}
	rep.body = out
	return rep
}

// direction parses a direction parameter, with def meaning descending.
func direction(v string, def bool) (desc bool, rep *reply) {
	switch v {
	case "":
		return def, nil
	case "asc":
		return false, nil
	case "desc":
		return true, nil
	}
	return false, validationFailed("Issue", "direction", "invalid")
}

// listComments lists the comments of is, or of the whole repository if is
// is nil.
func (s *Server) listComments(c *call, r *repo, is *Issue) *reply {
	q := c.r.URL.Query()
	sortBy := "created"
	desc := false
	if is == nil {
		switch v := q.Get("sort"); v {
		case "", "created", "updated":
			if v != "" {
				sortBy = v
			}
		default:
			return validationFailed("IssueComment", "sort", "invalid")
		}
		var rep *reply
		if desc, rep = direction(q.Get("direction"), false); rep != nil {
			return rep
		}
	}
	since, hasSince, rep := parseSince(c)
	if rep != nil {
		return rep
	}
	p, rep := parsePage(c)
	if rep != nil {
		return rep
	}
	var list []*Comment
	for _, cm := range r.comments {
		if is != nil && cm.IssueNumber != is.Number {
			continue
		}
		if hasSince && cm.UpdatedAt.Before(since) {
			continue
		}
		list = append(list, cm)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		ka, kb := a.CreatedAt, b.CreatedAt
		if sortBy == "updated" {
			ka, kb = a.UpdatedAt, b.UpdatedAt
		}
		if ka.Equal(kb) {
			if desc {
				return a.ID > b.ID
			}
			return a.ID < b.ID
		}
		if desc {
			return ka.After(kb)
		}
		return ka.Before(kb)
	})
	rep = newReply(http.StatusOK, nil)
	out := []any{}
	for _, cm := range paginate(c, rep, list, p) {
		out = append(out, c.links.comment(r, cm, s.userLocked))
	}
	rep.body = out
	return rep
}

// decodeObject parses a JSON object body into raw fields.
func decodeObject(body []byte) (map[string]json.RawMessage, *reply) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, errorReply(http.StatusBadRequest, "Problems parsing JSON", docsREST)
	}
	return m, nil
}

// stringField reads a string (or, for titles, number) field; null is "".
func stringField(raw json.RawMessage) (string, bool) {
	if bytes.Equal(raw, []byte("null")) {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// labelsField reads labels given as names or as objects with a name.
func labelsField(raw json.RawMessage) ([]string, bool) {
	var items []json.RawMessage
	if bytes.Equal(raw, []byte("null")) {
		return nil, true
	}
	if json.Unmarshal(raw, &items) != nil {
		return nil, false
	}
	var out []string
	for _, it := range items {
		var name string
		if json.Unmarshal(it, &name) == nil {
			out = append(out, name)
			continue
		}
		var obj struct{ Name string }
		if json.Unmarshal(it, &obj) != nil {
			return nil, false
		}
		out = append(out, obj.Name)
	}
	return out, true
}

func stringsField(raw json.RawMessage) ([]string, bool) {
	var out []string
	if json.Unmarshal(raw, &out) != nil {
		return nil, false
	}
	return out, true
}

// issueFields applies the fields of an issue create or update body to is.
func issueFields(m map[string]json.RawMessage, is *Issue) *reply {
	for k, raw := range m {
		ok := true
		switch k {
		case "title":
			is.Title, ok = stringField(raw)
		case "body":
			is.Body, ok = stringField(raw)
		case "state":
			is.State, ok = stringField(raw)
			ok = ok && (is.State == "open" || is.State == "closed")
		case "state_reason":
			is.StateReason, ok = stringField(raw)
		case "labels":
			is.Labels, ok = labelsField(raw)
		case "assignees":
			is.Assignees, ok = stringsField(raw)
		case "assignee":
			var a string
			a, ok = stringField(raw)
			if a == "" {
				is.Assignees = nil
			} else {
				is.Assignees = []string{a}
			}
		}
		if !ok {
			return validationFailed("Issue", k, "invalid")
		}
	}
	return nil
}

func (s *Server) createIssue(c *call, r *repo) *reply {
	m, rep := decodeObject(c.body)
	if rep != nil {
		return rep
	}
	var in Issue
	if rep := issueFields(m, &in); rep != nil {
		return rep
	}
	if strings.TrimSpace(in.Title) == "" {
		return validationFailed("Issue", "title", "missing_field")
	}
	out := s.createIssueLocked(r, c.login, Issue{
		Title: in.Title, Body: in.Body, Labels: in.Labels, Assignees: in.Assignees,
	})
	rep = newReply(http.StatusCreated, s.renderIssue(c.links, r, r.issues[out.Number]))
	rep.header.Set("Location", c.links.api+"/repos/"+r.Owner+"/"+r.Name+"/issues/"+strconv.Itoa(out.Number))
	return rep
}

func (s *Server) editIssue(c *call, r *repo, is *Issue) *reply {
	m, rep := decodeObject(c.body)
	if rep != nil {
		return rep
	}
	next := cloneIssue(is)
	if rep := issueFields(m, &next); rep != nil {
		return rep
	}
	if _, ok := m["title"]; ok && strings.TrimSpace(next.Title) == "" {
		return validationFailed("Issue", "title", "missing_field")
	}
	s.applyIssueLocked(r, is, next, c.login)
	return newReply(http.StatusOK, s.renderIssue(c.links, r, is))
}

func (s *Server) createComment(c *call, r *repo, is *Issue) *reply {
	body, rep := commentBody(c)
	if rep != nil {
		return rep
	}
	cm := s.addCommentLocked(r, is, c.login, body)
	rep = newReply(http.StatusCreated, c.links.comment(r, r.comments[cm.ID], s.userLocked))
	rep.header.Set("Location", c.links.api+"/repos/"+r.Owner+"/"+r.Name+"/issues/comments/"+strconv.FormatInt(cm.ID, 10))
	return rep
}

func (s *Server) editComment(c *call, r *repo, cm *Comment) *reply {
	body, rep := commentBody(c)
	if rep != nil {
		return rep
	}
	s.editCommentLocked(r, cm, body, c.login)
	return newReply(http.StatusOK, c.links.comment(r, cm, s.userLocked))
}

func commentBody(c *call) (string, *reply) {
	m, rep := decodeObject(c.body)
	if rep != nil {
		return "", rep
	}
	raw, ok := m["body"]
	if !ok {
		return "", validationFailed("IssueComment", "body", "missing_field")
	}
	var body string
	if json.Unmarshal(raw, &body) != nil || body == "" {
		return "", validationFailed("IssueComment", "body", "invalid")
	}
	return body, nil
}
