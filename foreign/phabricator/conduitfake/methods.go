package conduitfake

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// row is one search result with its paging key.
type row struct {
	id  int
	mod int64
	obj map[string]any
}

// order describes a result ordering; before reports whether a sorts before b.
type order struct {
	name   string
	byMod  bool // key is (dateModified desc, id desc) rather than id alone
	idDesc bool
}

var (
	orderNewest  = order{name: "newest", idDesc: true}
	orderOldest  = order{name: "oldest"}
	orderUpdated = order{name: "updated", byMod: true, idDesc: true}
)

func parseOrder(v any, allowMod bool) (order, error) {
	switch v {
	case nil, "newest":
		return orderNewest, nil
	case "oldest":
		return orderOldest, nil
	case "updated":
		if allowMod {
			return orderUpdated, nil
		}
	}
	return order{}, coreErr("Order %v is not a valid order for this query.", v)
}

func (o order) before(a, b row) bool {
	if o.byMod && a.mod != b.mod {
		return a.mod > b.mod
	}
	if o.idDesc {
		return a.id > b.id
	}
	return a.id < b.id
}

// cursor encodes the paging key of r. Id orders use the id, like Phorge;
// "updated" uses "dateModified:id" so that a page boundary inside a run of
// equal timestamps, or a later change to the boundary object, cannot skip or
// repeat results.
func (o order) cursor(r row) string {
	if o.byMod {
		return fmt.Sprintf("%d:%d", r.mod, r.id)
	}
	return strconv.Itoa(r.id)
}

// parseCursor decodes an "after" value into a row key. For "updated", a bare
// id is resolved with modOf (the object's current dateModified), as Phorge
// does.
func (o order) parseCursor(after string, modOf func(id int) (int64, bool)) (row, error) {
	bad := coreErr("Invalid cursor %q.", after)
	if m, id, ok := strings.Cut(after, ":"); ok && o.byMod {
		mod, err1 := strconv.ParseInt(m, 10, 64)
		n, err2 := strconv.Atoi(id)
		if err1 != nil || err2 != nil {
			return row{}, bad
		}
		return row{id: n, mod: mod}, nil
	}
	n, err := strconv.Atoi(after)
	if err != nil {
		return row{}, bad
	}
	r := row{id: n}
	if o.byMod {
		mod, ok := modOf(n)
		if !ok {
			return row{}, bad
		}
		r.mod = mod
	}
	return r, nil
}

// page sorts rows, skips those up to and including the cursor and returns
// one page in the standard search result shape.
func page(rows []row, o order, a searchArgs, modOf func(int) (int64, bool)) (any, error) {
	slices.SortFunc(rows, func(x, y row) int {
		switch {
		case o.before(x, y):
			return -1
		case o.before(y, x):
			return 1
		}
		return 0
	})
	if a.after != "" {
		c, err := o.parseCursor(a.after, modOf)
		if err != nil {
			return nil, err
		}
		i := 0
		for i < len(rows) && !o.before(c, rows[i]) {
			i++
		}
		rows = rows[i:]
	}
	var next any
	if len(rows) > a.limit {
		rows = rows[:a.limit]
		next = o.cursor(rows[len(rows)-1])
	}
	data := make([]any, 0, len(rows))
	for _, r := range rows {
		data = append(data, r.obj)
	}
	return map[string]any{
		"data":  data,
		"maps":  map[string]any{},
		"query": map[string]any{"queryKey": nil},
		"cursor": map[string]any{
			"limit": a.limit, "after": next, "before": nil, "order": a.order,
		},
	}, nil
}

func noMod(int) (int64, bool) { return 0, false }

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) ping(_ *User, _ params) (any, error) { return "conduitfake", nil }

func (s *Server) whoami(u *User, _ params) (any, error) {
	return map[string]any{
		"phid":         u.PHID,
		"userName":     u.Username,
		"realName":     u.RealName,
		"image":        "",
		"uri":          "/p/" + u.Username + "/",
		"roles":        []string{"verified", "approved", "activated"},
		"primaryEmail": u.Username + "@example.com",
	}, nil
}

// objectSearch is the common part of user, project and repository search:
// the constraints ids, phids and one list of names (listKey), and the
// order.
type objectSearch struct {
	a     searchArgs
	o     order
	ids   []int
	phids []string
	names []string
}

func parseObjectSearch(p params, listKey string, extra, attachments []string) (objectSearch, error) {
	var f objectSearch
	var err error
	if f.a, err = parseSearchArgs(p, append([]string{"ids", "phids", listKey}, extra...), attachments); err != nil {
		return f, err
	}
	if f.ids, _, err = f.a.constraints.intList("ids"); err != nil {
		return f, err
	}
	if f.phids, _, err = f.a.constraints.strList("phids"); err != nil {
		return f, err
	}
	if f.names, _, err = f.a.constraints.strList(listKey); err != nil {
		return f, err
	}
	f.o, err = parseOrder(f.a.order, false)
	return f, err
}

// match says whether an object passes the constraints.
func (f objectSearch) match(id int, phid, name string) bool {
	return (f.ids == nil || slices.Contains(f.ids, id)) && (f.phids == nil || slices.Contains(f.phids, phid)) &&
		(f.names == nil || slices.Contains(f.names, name))
}

func (s *Server) userSearch(_ *User, p params) (any, error) {
	f, err := parseObjectSearch(p, "usernames", nil, nil)
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, u := range s.users {
		if !f.match(u.ID, u.PHID, u.Username) {
			continue
		}
		rows = append(rows, row{id: u.ID, obj: map[string]any{
			"id": u.ID, "type": "USER", "phid": u.PHID,
			"fields": map[string]any{
				"username": u.Username, "realName": u.RealName,
				"roles":       []string{"verified", "approved", "activated"},
				"dateCreated": u.Created, "dateModified": u.Created,
				"policy": map[string]any{"view": "public", "edit": "no-one"},
			},
			"attachments": map[string]any{},
		}})
	}
	return page(rows, f.o, f.a, noMod)
}

func (s *Server) projectSearch(_ *User, p params) (any, error) {
	f, err := parseObjectSearch(p, "slugs", []string{"name"}, []string{"members"})
	if err != nil {
		return nil, err
	}
	name, err := f.a.constraints.str("name")
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, pr := range s.projects {
		if !f.match(pr.ID, pr.PHID, pr.Slug) ||
			(name != "" && !strings.Contains(strings.ToLower(pr.Name), strings.ToLower(name))) {
			continue
		}
		att := map[string]any{}
		if f.a.attach["members"] {
			att["members"] = map[string]any{"members": []any{}}
		}
		rows = append(rows, row{id: pr.ID, obj: map[string]any{
			"id": pr.ID, "type": "PROJ", "phid": pr.PHID,
			"fields": map[string]any{
				"name": pr.Name, "slug": pr.Slug, "description": "",
				"milestone": nil, "depth": 0, "parent": nil,
				"icon":        map[string]any{"key": "project", "name": "Project", "icon": "fa-briefcase"},
				"color":       map[string]any{"key": "blue", "name": "Blue"},
				"dateCreated": pr.Created, "dateModified": pr.Created,
				"policy": map[string]any{"view": "users", "edit": "users", "join": "users"},
			},
			"attachments": att,
		}})
	}
	return page(rows, f.o, f.a, noMod)
}

func (s *Server) repositorySearch(_ *User, p params) (any, error) {
	f, err := parseObjectSearch(p, "callsigns", nil, nil)
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, r := range s.repos {
		if !f.match(r.ID, r.PHID, r.Callsign) {
			continue
		}
		rows = append(rows, row{id: r.ID, obj: map[string]any{
			"id": r.ID, "type": "REPO", "phid": r.PHID,
			"fields": map[string]any{
				"name": r.Name, "vcs": "git", "callsign": nullable(r.Callsign), "shortName": nil,
				"status": "active", "isImporting": false, "almanacServicePHID": nil,
				"dateCreated": 0, "dateModified": 0,
				"policy": map[string]any{"view": "users", "edit": "admin", "diffusion.push": "users"},
			},
			"attachments": map[string]any{},
		}})
	}
	return page(rows, f.o, f.a, noMod)
}

// lagCutoff returns the newest dateModified visible to searches.
func (s *Server) lagCutoff() int64 {
	if s.lag <= 0 {
		return 1<<63 - 1
	}
	return s.now() - int64((s.lag+time.Second-1)/time.Second)
}

func (s *Server) revisionSearch(_ *User, p params) (any, error) {
	a, err := parseSearchArgs(p,
		[]string{"ids", "phids", "responsiblePHIDs", "authorPHIDs", "reviewerPHIDs", "repositoryPHIDs",
			"statuses", "createdStart", "createdEnd", "modifiedStart", "modifiedEnd"},
		[]string{"reviewers", "subscribers", "projects"})
	if err != nil {
		return nil, err
	}
	c := a.constraints
	ids, _, err := c.intList("ids")
	if err != nil {
		return nil, err
	}
	lists := map[string]map[string]bool{}
	for _, k := range []string{"phids", "responsiblePHIDs", "authorPHIDs", "reviewerPHIDs", "repositoryPHIDs", "statuses"} {
		l, _, err := c.strList(k)
		if err != nil {
			return nil, err
		}
		lists[k] = set(l)
	}
	bounds := map[string]int64{}
	for _, k := range []string{"createdStart", "createdEnd", "modifiedStart", "modifiedEnd"} {
		n, ok, err := c.int(k)
		if err != nil {
			return nil, err
		}
		if ok {
			bounds[k] = n
		}
	}
	o, err := parseOrder(a.order, true)
	if err != nil {
		return nil, err
	}
	in := func(k, v string) bool { return lists[k] == nil || lists[k][v] }
	inRange := func(start, end string, v int64) bool {
		if b, ok := bounds[start]; ok && v < b {
			return false
		}
		if b, ok := bounds[end]; ok && v > b {
			return false
		}
		return true
	}
	cutoff := s.lagCutoff()
	var rows []row
	for _, r := range s.revisions {
		if r.DateModified > cutoff || (ids != nil && !slices.Contains(ids, r.ID)) ||
			!in("phids", r.PHID) || !in("authorPHIDs", r.AuthorPHID) ||
			!in("repositoryPHIDs", r.RepositoryPHID) || !in("statuses", r.Status) ||
			!inRange("createdStart", "createdEnd", r.DateCreated) ||
			!inRange("modifiedStart", "modifiedEnd", r.DateModified) {
			continue
		}
		if set := lists["reviewerPHIDs"]; set != nil && !slices.ContainsFunc(r.Reviewers, func(x Reviewer) bool { return set[x.PHID] }) {
			continue
		}
		if set := lists["responsiblePHIDs"]; set != nil && !set[r.AuthorPHID] &&
			!slices.ContainsFunc(r.Reviewers, func(x Reviewer) bool { return set[x.PHID] }) {
			continue
		}
		rows = append(rows, row{id: r.ID, mod: r.DateModified, obj: s.revisionObject(r, a.attach)})
	}
	modOf := func(id int) (int64, bool) {
		if id < 1 || id > len(s.revisions) {
			return 0, false
		}
		return s.revisions[id-1].DateModified, true
	}
	return page(rows, o, a, modOf)
}

func (s *Server) revisionObject(r *Revision, attach map[string]bool) map[string]any {
	closed := r.Status == StatusPublished || r.Status == StatusAbandoned
	att := map[string]any{}
	if attach["reviewers"] {
		list := make([]any, 0, len(r.Reviewers))
		for _, rv := range r.Reviewers {
			list = append(list, map[string]any{
				"reviewerPHID": rv.PHID, "status": rv.Status, "isBlocking": rv.IsBlocking, "actorPHID": nil,
			})
		}
		att["reviewers"] = map[string]any{"reviewers": list}
	}
	if attach["subscribers"] {
		att["subscribers"] = map[string]any{
			"subscriberPHIDs": append([]string{}, r.Subscribers...), "subscriberCount": len(r.Subscribers),
			"viewerIsSubscribed": false,
		}
	}
	if attach["projects"] {
		att["projects"] = map[string]any{"projectPHIDs": append([]string{}, r.Projects...)}
	}
	return map[string]any{
		"id": r.ID, "type": "DREV", "phid": r.PHID,
		"fields": map[string]any{
			"title": r.Title, "uri": fmt.Sprintf("/D%d", r.ID),
			"authorPHID": r.AuthorPHID,
			"status": map[string]any{
				"value": r.Status, "name": statusNames[r.Status], "closed": closed, "color.ansi": nil,
			},
			"repositoryPHID": nullable(r.RepositoryPHID),
			"diffPHID":       r.DiffPHID,
			"summary":        r.Summary,
			"testPlan":       r.TestPlan,
			"isDraft":        r.Status == StatusDraft,
			"holdAsDraft":    false,
			"dateCreated":    r.DateCreated,
			"dateModified":   r.DateModified,
			"policy":         map[string]any{"view": "users", "edit": "users"},
		},
		"attachments": att,
	}
}

func (s *Server) diffSearch(_ *User, p params) (any, error) {
	a, err := parseSearchArgs(p, []string{"ids", "phids", "revisionPHIDs"}, []string{"commits"})
	if err != nil {
		return nil, err
	}
	ids, _, err := a.constraints.intList("ids")
	if err != nil {
		return nil, err
	}
	phids, _, err := a.constraints.strList("phids")
	if err != nil {
		return nil, err
	}
	revs, _, err := a.constraints.strList("revisionPHIDs")
	if err != nil {
		return nil, err
	}
	o, err := parseOrder(a.order, false)
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, d := range s.diffs {
		if (ids != nil && !slices.Contains(ids, d.ID)) || (phids != nil && !slices.Contains(phids, d.PHID)) ||
			(revs != nil && !slices.Contains(revs, d.RevisionPHID)) {
			continue
		}
		att := map[string]any{}
		if a.attach["commits"] {
			commits := []any{}
			if d.CommitID != "" {
				author := "unknown"
				if u := s.userByPHID(d.AuthorPHID); u != nil {
					author = u.RealName
				}
				commits = append(commits, map[string]any{
					"identifier": d.CommitID, "tree": nil, "parents": []string{},
					"author": map[string]any{
						"name": author, "email": "", "raw": author, "epoch": d.DateCreated,
					},
					"message": d.CommitMessage,
				})
			}
			att["commits"] = map[string]any{"commits": commits}
		}
		rows = append(rows, row{id: d.ID, obj: map[string]any{
			"id": d.ID, "type": "DIFF", "phid": d.PHID,
			"fields": map[string]any{
				"revisionPHID": nullable(d.RevisionPHID), "authorPHID": d.AuthorPHID,
				"repositoryPHID": nullable(d.RepositoryPHID), "refs": []any{},
				"dateCreated": d.DateCreated, "dateModified": d.DateModified,
				"policy": map[string]any{"view": "users"},
			},
			"attachments": att,
		}})
	}
	return page(rows, o, a, noMod)
}

func (s *Server) transactionSearch(_ *User, p params) (any, error) {
	ident, err := p.str("objectIdentifier")
	if err != nil {
		return nil, err
	}
	if ident == "" {
		return nil, coreErr("When calling \"transaction.search\", you must provide an object to retrieve transactions for.")
	}
	rev := s.revisionByRef(ident)
	if rev == nil {
		return nil, coreErr("No object %q exists.", ident)
	}
	a, err := parseSearchArgs(params{
		"constraints": p["constraints"], "limit": p["limit"], "after": p["after"], "before": p["before"],
	}, []string{"phids", "authorPHIDs"}, nil)
	if err != nil {
		return nil, err
	}
	phids, _, err := a.constraints.strList("phids")
	if err != nil {
		return nil, err
	}
	authors, _, err := a.constraints.strList("authorPHIDs")
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, x := range s.xacts {
		if x.ObjectPHID != rev.PHID || (phids != nil && !slices.Contains(phids, x.PHID)) ||
			(authors != nil && !slices.Contains(authors, x.AuthorPHID)) {
			continue
		}
		comments := []any{}
		if c := x.Comment; c != nil {
			comments = append(comments, map[string]any{
				"id": c.ID, "phid": c.PHID, "version": c.Version, "authorPHID": c.AuthorPHID,
				"dateCreated": c.DateCreated, "dateModified": c.DateModified,
				"removed": c.Removed, "content": map[string]any{"raw": c.Raw},
			})
		}
		fields := map[string]any{}
		for k, v := range x.Fields {
			fields[k] = v
		}
		rows = append(rows, row{id: x.ID, obj: map[string]any{
			"id": x.ID, "phid": x.PHID, "type": nullable(x.Type),
			"authorPHID": x.AuthorPHID, "objectPHID": x.ObjectPHID,
			"dateCreated": x.DateCreated, "dateModified": x.DateModified,
			"groupID":  fmt.Sprintf("%032x", x.ID),
			"comments": comments, "fields": fields,
		}})
	}
	res, err := page(rows, orderNewest, a, noMod)
	if err != nil {
		return nil, err
	}
	m := res.(map[string]any)
	delete(m, "maps")
	delete(m, "query")
	delete(m["cursor"].(map[string]any), "order")
	return m, nil
}

func (s *Server) createRawDiff(viewer *User, p params) (any, error) {
	raw, err := p.str("diff")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(raw) == "" {
		return nil, coreErr("You can not create an empty diff. Paste a diff or upload a file containing a diff.")
	}
	repo, err := p.str("repositoryPHID")
	if err != nil {
		return nil, err
	}
	if repo != "" && s.repoByPHID(repo) == nil {
		return nil, coreErr("No such repository \"%s\"!", repo)
	}
	// viewPolicy is accepted and ignored.
	d := s.addRawDiff(repo, viewer.PHID, raw)
	return map[string]any{
		"id":   d.ID,
		"phid": d.PHID,
		"uri":  fmt.Sprintf("%s/differential/diff/%d/", s.base, d.ID),
	}, nil
}

func (s *Server) getRawDiff(_ *User, p params) (any, error) {
	id, ok, err := p.int("diffID")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, coreErr("Parameter \"diffID\" is required.")
	}
	if id < 1 || id > int64(len(s.diffs)) {
		return nil, coreErr("Diff not found.")
	}
	return s.diffs[id-1].Raw, nil
}

// editTypes are the transaction types differential.revision.edit accepts.
var editTypes = []string{"abandon", "accept", "close", "comment", "plan-changes", "reclaim", "reject", "request-review", "summary", "testPlan", "title", "update"}

// actions are the review actions among them (value true), with the status
// each leaves the revision in, and who may take it.
var actions = map[string]struct {
	status   string
	reviewer bool // a reviewer's (not the author's); else the author's
}{
	"accept":         {StatusAccepted, true},
	"reject":         {StatusNeedsRevision, true},
	"request-review": {StatusNeedsReview, false},
	"plan-changes":   {StatusChangesPlanned, false},
	"abandon":        {StatusAbandoned, false},
	"reclaim":        {StatusNeedsReview, false},
	"close":          {StatusPublished, false},
}

// revisionEdit edits a revision, or creates one when objectIdentifier is
// absent. Everything is validated before any state changes. Like Phorge's
// editor, a new revision gets a "create" transaction first, and comments are
// applied after the other transactions.
func (s *Server) revisionEdit(viewer *User, p params) (any, error) {
	ident, err := p.str("objectIdentifier")
	if err != nil {
		return nil, err
	}
	var rev *Revision
	if ident != "" {
		if rev = s.revisionByRef(ident); rev == nil {
			return nil, coreErr("No object exists with ID %q.", ident)
		}
	}
	list, ok := p["transactions"].([]any)
	if !ok || (len(list) == 0 && rev != nil) {
		return nil, coreErr("Parameter \"transactions\" is not a list of transactions.")
	}
	type edit struct{ typ, value string }
	var edits, comments []edit
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, coreErr("Parameter \"transactions\" must contain a list of transaction descriptions, but item with key \"%d\" is not a dictionary.", i)
		}
		typ, _ := m["type"].(string)
		val, ok := m["value"].(string)
		if !slices.Contains(editTypes, typ) {
			return nil, coreErr("Transaction with key \"%d\" has invalid type %q. This type is not recognized. Valid types are: %s.", i, typ, strings.Join(editTypes, ", "))
		}
		if _, isAction := actions[typ]; isAction {
			b, isBool := m["value"].(bool)
			ok = isBool && b
		}
		if !ok {
			return nil, coreErr("Transaction with key \"%d\" (of type %q) has an invalid value.", i, typ)
		}
		if typ == "comment" {
			comments = append(comments, edit{typ, val})
		} else {
			edits = append(edits, edit{typ, val})
		}
	}

	// Validate, collecting every error like Phorge's editor does.
	var errs []string
	title, hasDiff, claimed := "", false, map[string]bool{}
	if rev != nil {
		title, hasDiff = rev.Title, rev.DiffPHID != ""
	}
	for _, e := range edits {
		switch e.typ {
		case "title":
			title = e.value
		case "update":
			d := s.diffByPHID(e.value)
			switch {
			case d == nil:
				errs = append(errs, fmt.Sprintf("Specified diff (%q) does not exist.", e.value))
			case d.RevisionPHID != "" || claimed[d.PHID]:
				errs = append(errs, fmt.Sprintf("You can not update this revision with the specified diff (%q) because the diff is already attached to another revision.", e.value))
			default:
				claimed[d.PHID], hasDiff = true, true
			}
		}
	}
	for _, e := range edits {
		a, isAction := actions[e.typ]
		switch {
		case !isAction:
		case rev == nil:
			errs = append(errs, fmt.Sprintf("You can not %s a revision that does not exist yet.", e.typ))
		case a.reviewer && rev.AuthorPHID == viewer.PHID:
			errs = append(errs, fmt.Sprintf("You can not %s this revision because you are the owner.", e.typ))
		case !a.reviewer && rev.AuthorPHID != viewer.PHID:
			errs = append(errs, fmt.Sprintf("You can not %s this revision because you do not own it.", e.typ))
		case e.typ == "reclaim" && rev.Status != StatusAbandoned:
			errs = append(errs, "You can not reclaim this revision because it has not been abandoned.")
		case e.typ != "reclaim" && rev.Status == StatusAbandoned && e.typ != "abandon":
			errs = append(errs, fmt.Sprintf("You can not %s this revision because it has been abandoned.", e.typ))
		}
	}
	if !hasDiff && len(errs) == 0 {
		errs = append(errs, "You must specify an initial diff when creating a revision.")
	}
	if strings.TrimSpace(title) == "" {
		errs = append(errs, "Revisions must have a title.")
	}
	if len(errs) > 0 {
		return nil, coreErr("Validation errors:\n  - %s", strings.Join(errs, "\n  - "))
	}

	var out []any
	if rev == nil {
		now := s.now()
		rev = &Revision{
			ID:           len(s.revisions) + 1,
			PHID:         s.newPHID("DREV"),
			Status:       StatusNeedsReview,
			AuthorPHID:   viewer.PHID,
			DateCreated:  now,
			DateModified: now,
		}
		s.revisions = append(s.revisions, rev)
		out = append(out, map[string]any{"phid": s.addXact(rev, viewer.PHID, "create", "", nil).PHID})
	}
	for _, e := range append(edits, comments...) {
		var x *Transaction
		switch e.typ {
		case "comment":
			x = s.addXact(rev, viewer.PHID, "comment", e.value, nil)
		case "title":
			x = s.addXact(rev, viewer.PHID, "title", "", map[string]any{"old": rev.Title, "new": e.value})
			rev.Title = e.value
		case "summary":
			x = s.addXact(rev, viewer.PHID, "summary", "", map[string]any{"old": rev.Summary, "new": e.value})
			rev.Summary = e.value
		case "testPlan":
			x = s.addXact(rev, viewer.PHID, "testPlan", "", map[string]any{"old": rev.TestPlan, "new": e.value})
			rev.TestPlan = e.value
		case "update":
			x = s.attachDiff(rev, s.diffByPHID(e.value), viewer.PHID)
		default: // a review action
			a := actions[e.typ]
			if a.reviewer {
				s.setReviewer(rev, viewer.PHID, map[string]string{"accept": "accepted", "reject": "rejected"}[e.typ])
			}
			old := rev.Status
			rev.Status = a.status
			x = s.addXact(rev, viewer.PHID, e.typ, "", map[string]any{"old": old, "new": a.status})
		}
		out = append(out, map[string]any{"phid": x.PHID})
	}
	return map[string]any{
		"object":       map[string]any{"id": rev.ID, "phid": rev.PHID},
		"transactions": out,
	}, nil
}
