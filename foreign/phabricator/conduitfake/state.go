package conduitfake

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Revision status values, as reported in fields.status.value.
const (
	StatusNeedsReview    = "needs-review"
	StatusNeedsRevision  = "needs-revision"
	StatusChangesPlanned = "changes-planned"
	StatusAccepted       = "accepted"
	StatusPublished      = "published"
	StatusAbandoned      = "abandoned"
	StatusDraft          = "draft"
)

var statusNames = map[string]string{
	StatusNeedsReview:    "Needs Review",
	StatusNeedsRevision:  "Needs Revision",
	StatusChangesPlanned: "Changes Planned",
	StatusAccepted:       "Accepted",
	StatusPublished:      "Closed",
	StatusAbandoned:      "Abandoned",
	StatusDraft:          "Draft",
}

// ErrNotFound is returned by hooks given an unknown PHID or identifier.
var ErrNotFound = errors.New("conduitfake: object not found")

// User is a user account; Token is its Conduit API token.
type User struct {
	ID       int
	PHID     string
	Username string
	RealName string
	Token    string
	Created  int64
}

// Project is a project (tag).
type Project struct {
	ID      int
	PHID    string
	Name    string
	Slug    string
	Created int64
}

// Repository is a Diffusion repository.
type Repository struct {
	ID       int
	PHID     string
	Name     string
	Callsign string
}

// Reviewer is one reviewer of a revision.
type Reviewer struct {
	PHID       string
	Status     string // "added", "accepted", "rejected", ...
	IsBlocking bool
}

// Revision is a snapshot of a Differential revision.
type Revision struct {
	ID             int
	PHID           string
	Title          string
	Summary        string
	TestPlan       string
	Status         string
	AuthorPHID     string
	RepositoryPHID string
	DiffPHID       string
	DateCreated    int64
	DateModified   int64
	Reviewers      []Reviewer
	Subscribers    []string
	Projects       []string
}

// Diff is a snapshot of a Differential diff. Diffs made by the hooks have a
// single commit (CommitID, CommitMessage); diffs made by
// differential.createrawdiff have none (CommitID is empty). RevisionPHID is
// empty while the diff is not attached to a revision. Raw is the diff text
// returned by differential.getrawdiff.
type Diff struct {
	ID             int
	PHID           string
	RevisionPHID   string
	AuthorPHID     string
	RepositoryPHID string
	DateCreated    int64
	DateModified   int64
	CommitID       string
	CommitMessage  string
	Raw            string
}

// Comment is the current version of a transaction comment.
type Comment struct {
	ID           int
	PHID         string
	Version      int
	AuthorPHID   string
	DateCreated  int64
	DateModified int64
	Removed      bool
	Raw          string
}

// Transaction is a snapshot of an object transaction.
type Transaction struct {
	ID           int
	PHID         string
	Type         string // "create", "comment", "update", "title", "summary", "status", "accept", ...
	AuthorPHID   string
	ObjectPHID   string
	DateCreated  int64
	DateModified int64
	Comment      *Comment // nil when the transaction has no comment
	Fields       map[string]any
}

// RevisionSpec describes a revision for CreateRevision.
type RevisionSpec struct {
	AuthorPHID        string
	Title             string
	Summary           string
	RepositoryPHID    string
	Reviewers         []string // PHIDs, added as non-blocking reviewers
	BlockingReviewers []string // PHIDs, added as blocking reviewers
	Subscribers       []string
	Projects          []string
	CommitMessage     string // message of the first diff's commit; defaults to Title
	Status            string // defaults to StatusNeedsReview
	Patch             string // raw text of the first diff; defaults to a generated patch (see GeneratePatch)
}

func (r *Revision) clone() Revision {
	c := *r
	c.Reviewers = slices.Clone(r.Reviewers)
	c.Subscribers = slices.Clone(r.Subscribers)
	c.Projects = slices.Clone(r.Projects)
	return c
}

func (x *Transaction) clone() Transaction {
	c := *x
	if x.Comment != nil {
		cc := *x.Comment
		c.Comment = &cc
	}
	c.Fields = maps.Clone(x.Fields)
	return c
}

// now returns the clock reading in epoch seconds. Callers hold s.mu.
func (s *Server) now() int64 { return s.clock().Unix() }

// newPHID returns a fresh PHID of the given type ("USER", "DREV", "XACT-DREV"...).
func (s *Server) newPHID(typ string) string {
	s.phidSeq++
	n := 20
	if strings.HasPrefix(typ, "XACT-") {
		n = 14
	}
	body := strconv.FormatInt(int64(s.phidSeq)*7919+1000003, 36)
	if len(body) < n {
		body = strings.Repeat("0", n-len(body)) + body
	}
	return "PHID-" + typ + "-" + body
}

// AddUser creates a user with a fresh API token.
func (s *Server) AddUser(username string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &User{
		ID:       len(s.users) + 1,
		PHID:     s.newPHID("USER"),
		Username: username,
		RealName: strings.ToUpper(username[:min(1, len(username))]) + username[min(1, len(username)):],
		Created:  s.now(),
	}
	u.Token = fmt.Sprintf("api-%028d", u.ID*104729)
	s.users = append(s.users, u)
	return *u
}

// AddProject creates a project.
func (s *Server) AddProject(name string) Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &Project{
		ID:      len(s.projects) + 1,
		PHID:    s.newPHID("PROJ"),
		Name:    name,
		Slug:    strings.ReplaceAll(strings.ToLower(name), " ", "_"),
		Created: s.now(),
	}
	s.projects = append(s.projects, p)
	return *p
}

// AddRepository creates a repository.
func (s *Server) AddRepository(name, callsign string) Repository {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Repository{ID: len(s.repos) + 1, PHID: s.newPHID("REPO"), Name: name, Callsign: callsign}
	s.repos = append(s.repos, r)
	return *r
}

// CreateRevision creates a revision with a first diff and a "create"
// transaction authored by spec.AuthorPHID, all dated now.
func (s *Server) CreateRevision(spec RevisionSpec) (Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userByPHID(spec.AuthorPHID) == nil {
		return Revision{}, fmt.Errorf("%w: author %q", ErrNotFound, spec.AuthorPHID)
	}
	now := s.now()
	r := &Revision{
		ID:             len(s.revisions) + 1,
		PHID:           s.newPHID("DREV"),
		Title:          spec.Title,
		Summary:        spec.Summary,
		Status:         orDefault(spec.Status, StatusNeedsReview),
		AuthorPHID:     spec.AuthorPHID,
		RepositoryPHID: spec.RepositoryPHID,
		DateCreated:    now,
		DateModified:   now,
		Subscribers:    slices.Clone(spec.Subscribers),
		Projects:       slices.Clone(spec.Projects),
	}
	for _, p := range spec.Reviewers {
		r.Reviewers = append(r.Reviewers, Reviewer{PHID: p, Status: "added"})
	}
	for _, p := range spec.BlockingReviewers {
		r.Reviewers = append(r.Reviewers, Reviewer{PHID: p, Status: "added", IsBlocking: true})
	}
	s.revisions = append(s.revisions, r)
	msg := orDefault(spec.CommitMessage, spec.Title)
	d := s.addDiff(r.RepositoryPHID, spec.AuthorPHID, msg, orDefault(spec.Patch, GeneratePatch(msg)))
	s.addXact(r, spec.AuthorPHID, "create", "", nil)
	s.attachDiff(r, d, spec.AuthorPHID)
	return r.clone(), nil
}

// orDefault returns v, or def when v is empty.
func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// addDiff creates a diff not yet attached to any revision, with one commit
// carrying msg.
func (s *Server) addDiff(repoPHID, author, msg, raw string) *Diff {
	d := s.addRawDiff(repoPHID, author, raw)
	d.CommitMessage = msg
	d.CommitID = fmt.Sprintf("%040x", uint64(d.ID)*0x9e3779b97f4a7c15)
	return d
}

// addRawDiff creates a diff without commits, not attached to any revision.
func (s *Server) addRawDiff(repoPHID, author, raw string) *Diff {
	now := s.now()
	d := &Diff{
		ID:             len(s.diffs) + 1,
		PHID:           s.newPHID("DIFF"),
		AuthorPHID:     author,
		RepositoryPHID: repoPHID,
		DateCreated:    now,
		DateModified:   now,
		Raw:            raw,
	}
	s.diffs = append(s.diffs, d)
	return d
}

// attachDiff makes d the current diff of r with an "update" transaction
// {old, new} by author, as Phorge's update transaction does: the revision
// takes the diff's repository and, when it already had a diff and was
// needs-revision, changes-planned or abandoned, goes back to needs-review.
func (s *Server) attachDiff(r *Revision, d *Diff, author string) *Transaction {
	x := s.addXact(r, author, "update", "", map[string]any{"old": nullable(r.DiffPHID), "new": d.PHID})
	if r.DiffPHID != "" {
		switch r.Status {
		case StatusNeedsRevision, StatusChangesPlanned, StatusAbandoned:
			r.Status = StatusNeedsReview
		}
	}
	r.DiffPHID = d.PHID
	r.RepositoryPHID = d.RepositoryPHID
	d.RevisionPHID = r.PHID
	d.DateModified = x.DateCreated
	return x
}

// GeneratePatch returns the deterministic raw diff used when a hook is not
// given one: a git-style unified diff creating a file README whose lines are
// those of msg.
func GeneratePatch(msg string) string {
	lines := strings.Split(strings.TrimSuffix(msg, "\n"), "\n")
	var b strings.Builder
	fmt.Fprintf(&b, "diff --git a/README b/README\nnew file mode 100644\n--- /dev/null\n+++ b/README\n@@ -0,0 +1,%d @@\n", len(lines))
	for _, l := range lines {
		b.WriteString("+" + l + "\n")
	}
	return b.String()
}

// addXact appends a transaction to r and bumps r's dateModified. A non-empty
// comment attaches a version-1 comment.
func (s *Server) addXact(r *Revision, author, typ, comment string, fields map[string]any) *Transaction {
	now := s.now()
	s.xactSeq++
	x := &Transaction{
		ID:           s.xactSeq,
		PHID:         s.newPHID("XACT-DREV"),
		Type:         typ,
		AuthorPHID:   author,
		ObjectPHID:   r.PHID,
		DateCreated:  now,
		DateModified: now,
		Fields:       fields,
	}
	if x.Fields == nil {
		x.Fields = map[string]any{}
	}
	if comment != "" {
		s.commentSeq++
		x.Comment = &Comment{
			ID: s.commentSeq, PHID: s.newPHID("XCMT"), Version: 1, AuthorPHID: author,
			DateCreated: now, DateModified: now, Raw: comment,
		}
	}
	s.xacts = append(s.xacts, x)
	r.DateModified = now
	return x
}

// Revision returns a snapshot of the revision named by PHID, "D123" or "123".
func (s *Server) Revision(ref string) (Revision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.revisionByRef(ref)
	if r == nil {
		return Revision{}, false
	}
	return r.clone(), true
}

// UpdateDiff attaches a new diff to a revision (changing its diffPHID), adds
// an "update" transaction and bumps dateModified. The diff's raw text is
// GeneratePatch of commitMessage (or of the title when it is empty). Like
// Phorge, a revision that needs revision, has changes planned or is
// abandoned goes back to needs-review.
func (s *Server) UpdateDiff(revPHID, authorPHID, commitMessage string) (Diff, error) {
	return s.UpdateDiffPatch(revPHID, authorPHID, commitMessage, "")
}

// UpdateDiffPatch is UpdateDiff with the diff's raw text (as returned by
// differential.getrawdiff); an empty patch means a generated one.
func (s *Server) UpdateDiffPatch(revPHID, authorPHID, commitMessage, patch string) (Diff, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.revisionByRef(revPHID)
	if r == nil {
		return Diff{}, ErrNotFound
	}
	if patch == "" {
		patch = GeneratePatch(orDefault(commitMessage, r.Title))
	}
	d := s.addDiff(r.RepositoryPHID, authorPHID, commitMessage, patch)
	s.attachDiff(r, d, authorPHID)
	return *d, nil
}

// Diff returns a snapshot of the diff with the given PHID.
func (s *Server) Diff(phid string) (Diff, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.diffByPHID(phid); d != nil {
		return *d, true
	}
	return Diff{}, false
}

// Revisions returns snapshots of all revisions, ordered by id.
func (s *Server) Revisions() []Revision {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Revision, 0, len(s.revisions))
	for _, r := range s.revisions {
		out = append(out, r.clone())
	}
	return out
}

// SetTitle retitles a revision as a person would in the web UI: a "title"
// transaction by actorPHID with fields {old, new}, bumping dateModified. An
// empty title is refused, as Phorge does.
func (s *Server) SetTitle(revPHID, actorPHID, title string) (Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.revisionByRef(revPHID)
	if r == nil {
		return Transaction{}, ErrNotFound
	}
	if strings.TrimSpace(title) == "" {
		return Transaction{}, errors.New("conduitfake: revisions must have a title")
	}
	x := s.addXact(r, actorPHID, "title", "", map[string]any{"old": r.Title, "new": title})
	r.Title = title
	return x.clone(), nil
}

// AddComment adds a "comment" transaction by authorPHID and bumps dateModified.
func (s *Server) AddComment(revPHID, authorPHID, text string) (Transaction, error) {
	return s.AddTransaction(revPHID, authorPHID, "comment", text, nil)
}

// AddTransaction adds an arbitrary transaction (optionally with a comment)
// and bumps the revision's dateModified. It does not otherwise change the
// revision; use SetStatus for status changes.
func (s *Server) AddTransaction(revPHID, authorPHID, typ, comment string, fields map[string]any) (Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.revisionByRef(revPHID)
	if r == nil {
		return Transaction{}, ErrNotFound
	}
	return s.addXact(r, authorPHID, typ, comment, maps.Clone(fields)).clone(), nil
}

// SetStatus changes a revision's status, recording a "status" transaction
// (or "accept"/"reject" when actorPHID is a reviewer accepting/requesting
// changes, which also updates that reviewer's status).
func (s *Server) SetStatus(revPHID, actorPHID, status string) (Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.revisionByRef(revPHID)
	if r == nil {
		return Transaction{}, ErrNotFound
	}
	if _, ok := statusNames[status]; !ok {
		return Transaction{}, fmt.Errorf("conduitfake: unknown status %q", status)
	}
	typ := "status"
	for i := range r.Reviewers {
		if r.Reviewers[i].PHID != actorPHID {
			continue
		}
		switch status {
		case StatusAccepted:
			typ, r.Reviewers[i].Status = "accept", "accepted"
		case StatusNeedsRevision:
			typ, r.Reviewers[i].Status = "reject", "rejected"
		}
	}
	old := r.Status
	r.Status = status
	return s.addXact(r, actorPHID, typ, "", map[string]any{"old": old, "new": status}).clone(), nil
}

// setReviewer sets a reviewer's status, adding them as a reviewer first
// if they are not one (as Phorge does for an accept or reject).
func (s *Server) setReviewer(r *Revision, phid, status string) {
	for i := range r.Reviewers {
		if r.Reviewers[i].PHID == phid {
			r.Reviewers[i].Status = status
			return
		}
	}
	r.Reviewers = append(r.Reviewers, Reviewer{PHID: phid, Status: status})
}

// EditComment replaces the text of a transaction's comment, incrementing its
// version and setting the comment's (and transaction's) dateModified to now.
// Like Phorge, editing a comment does NOT bump the revision's dateModified;
// call Touch to simulate that.
func (s *Server) EditComment(xactPHID, text string) (Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.xacts {
		if x.PHID != xactPHID {
			continue
		}
		if x.Comment == nil {
			return Transaction{}, fmt.Errorf("conduitfake: transaction %s has no comment", xactPHID)
		}
		now := s.now()
		s.commentSeq++
		x.Comment.ID = s.commentSeq
		x.Comment.PHID = s.newPHID("XCMT")
		x.Comment.Version++
		x.Comment.Raw = text
		x.Comment.DateModified = now
		x.DateModified = now
		return x.clone(), nil
	}
	return Transaction{}, ErrNotFound
}

// RemoveComment marks a transaction's comment as removed (content emptied).
func (s *Server) RemoveComment(xactPHID string) (Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.xacts {
		if x.PHID == xactPHID && x.Comment != nil {
			x.Comment.Removed = true
			x.Comment.Raw = ""
			x.Comment.Version++
			x.Comment.DateModified = s.now()
			return x.clone(), nil
		}
	}
	return Transaction{}, ErrNotFound
}

// Touch sets a revision's dateModified to now without adding a transaction.
func (s *Server) Touch(revPHID string) error {
	return s.SetDateModified(revPHID, -1)
}

// SetDateModified forces a revision's dateModified (epoch seconds; a
// negative value means now). Useful to put many revisions on one second.
func (s *Server) SetDateModified(revPHID string, epoch int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.revisionByRef(revPHID)
	if r == nil {
		return ErrNotFound
	}
	if epoch < 0 {
		epoch = s.now()
	}
	r.DateModified = epoch
	return nil
}

// Transactions returns snapshots of a revision's transactions, oldest first.
func (s *Server) Transactions(revPHID string) []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Transaction
	for _, x := range s.xacts {
		if x.ObjectPHID == revPHID {
			out = append(out, x.clone())
		}
	}
	return out
}

// Lag makes revision searches hide revisions whose dateModified is newer
// than now-d, like a lagging search index. Zero disables the lag.
func (s *Server) Lag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = d
}

// FailNext makes the next n API calls (any method) answer the given Conduit
// error instead of being handled.
func (s *Server) FailNext(n int, errorCode, errorInfo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode, s.failInfo = n, errorCode, errorInfo
}

// DisableMethod makes method answer ERR-CONDUIT-CALL as if it did not exist,
// simulating an older server.
func (s *Server) DisableMethod(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disabled[method] = true
}

// EnableMethod undoes DisableMethod.
func (s *Server) EnableMethod(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.disabled, method)
}

// Requests returns the number of API requests received so far.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RequestsFor returns the number of API requests received for method,
// including failed and unknown ones.
func (s *Server) RequestsFor(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perMethod[method]
}

func (s *Server) userByPHID(phid string) *User {
	for _, u := range s.users {
		if u.PHID == phid {
			return u
		}
	}
	return nil
}

func (s *Server) userByToken(tok string) *User {
	for _, u := range s.users {
		if u.Token == tok {
			return u
		}
	}
	return nil
}

func (s *Server) diffByPHID(phid string) *Diff {
	for _, d := range s.diffs {
		if d.PHID == phid {
			return d
		}
	}
	return nil
}

func (s *Server) repoByPHID(phid string) *Repository {
	for _, r := range s.repos {
		if r.PHID == phid {
			return r
		}
	}
	return nil
}

// revisionByRef resolves a PHID, "D123" or "123".
func (s *Server) revisionByRef(ref string) *Revision {
	if strings.HasPrefix(ref, "PHID-") {
		for _, r := range s.revisions {
			if r.PHID == ref {
				return r
			}
		}
		return nil
	}
	id, err := strconv.Atoi(strings.TrimPrefix(ref, "D"))
	if err != nil || id < 1 || id > len(s.revisions) {
		return nil
	}
	return s.revisions[id-1]
}
