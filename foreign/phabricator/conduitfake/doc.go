// Package conduitfake is a stateful, in-memory fake of the Phabricator/Phorge
// Conduit API for tests. It uses only the standard library.
//
// # Protocol
//
// Requests are POST /api/METHOD with form fields. Parameters are read from
// the "params" field, a JSON object whose "__conduit__" member may carry the
// API token ({"__conduit__":{"token":"api-..."}}); a plain "api.token" form
// field is accepted too. Without "params", every other form field (except
// "output" and "api.token") becomes a top-level string parameter; nested
// PHP-style fields such as constraints[phids][0] are not decoded.
//
// Every answer is HTTP 200 with a JSON body
//
//	{"result": ..., "error_code": null | "ERR-...", "error_info": null | "..."}
//
// and a Date header (http.TimeFormat, UTC) read from Options.Clock, so a
// client can learn the server's wall clock even under a ManualClock.
//
// Errors: a missing or unknown token gives ERR-INVALID-AUTH; an unknown (or
// disabled) method gives ERR-CONDUIT-CALL with the info
// `Conduit method "x.y" does not exist.`; invalid parameters, unknown
// constraints or attachments, and limits above 100 give ERR-CONDUIT-CORE.
//
// # Methods
//
//   - conduit.ping: returns a fixed string.
//   - user.whoami: the token's user (phid, userName, realName, roles, ...).
//   - user.search: constraints ids, phids, usernames.
//   - project.search: constraints ids, phids, slugs, name; attachment members
//     (always empty).
//   - diffusion.repository.search: constraints ids, phids, callsigns;
//     fields name, vcs, callsign, status, ...
//   - differential.revision.search: constraints ids, phids, responsiblePHIDs
//     (author or reviewer), authorPHIDs, reviewerPHIDs, repositoryPHIDs,
//     statuses, createdStart/createdEnd and modifiedStart/modifiedEnd (epoch
//     seconds, inclusive); orders "newest" (default, id descending), "oldest"
//     and "updated" (dateModified descending, then id descending);
//     attachments reviewers, subscribers and projects. Fields: title, uri,
//     authorPHID, status {value, name, closed, color.ansi}, repositoryPHID,
//     diffPHID, summary, testPlan, isDraft, holdAsDraft, dateCreated,
//     dateModified, policy.
//   - differential.diff.search: constraints ids, phids, revisionPHIDs;
//     attachment commits (one commit per hook-made diff with identifier,
//     author and message; an empty list for diffs made by
//     differential.createrawdiff). Fields: revisionPHID (null while the
//     diff is not attached to a revision), authorPHID, repositoryPHID, refs,
//     dateCreated, dateModified, policy.
//   - differential.createrawdiff: diff (required, non-empty raw diff text),
//     repositoryPHID (optional, must exist), viewPolicy (ignored). Creates a
//     diff by the caller, attached to no revision and without commits, and
//     returns {id, phid, uri} with uri "<base URL>/differential/diff/ID/".
//   - differential.getrawdiff: diffID (required) → the diff's raw text as a
//     string: what createrawdiff was given, or for hook-made diffs
//     RevisionSpec.Patch / the UpdateDiffPatch patch or else GeneratePatch
//     of the commit message (a diff creating README). An unknown id gives
//     ERR-CONDUIT-CORE "Diff not found." (real Phorge answers ERR_NOT_FOUND).
//   - transaction.search: objectIdentifier (revision PHID, "D123" or "123"),
//     constraints phids and authorPHIDs, limit, after. Results are newest
//     first (id descending). Each has id, phid (PHID-XACT-DREV-...), type,
//     authorPHID, objectPHID, dateCreated, dateModified, groupID, comments and
//     fields. comments holds only the current version of the comment; its id
//     and phid change with every edit while version increments, as Phorge
//     stores one row per comment version.
//   - differential.revision.edit: objectIdentifier plus transactions of type
//     comment, summary, testPlan, title or update, or the review actions
//     (value true) accept and reject (a reviewer's, not the author's: they
//     set the caller's reviewer status too) and request-review,
//     plan-changes, abandon, reclaim (from abandoned only) and close (the
//     author's), each setting the status it stands for. Each creates one
//     transaction by the caller and bumps the revision's dateModified;
//     comments are applied after the other transactions, as in Phorge. The
//     result is {object: {id, phid}, transactions: [{phid}, ...]}. "update"
//     takes the PHID of a diff not attached to any revision and makes it the
//     current diff (an "update" transaction {old, new}; the revision takes
//     the diff's repository and, if it needed revision, had changes planned
//     or was abandoned, goes back to needs-review). Without objectIdentifier
//     a revision is created: it needs an update transaction and a non-empty
//     title; its author is the caller, its status needs-review, its
//     repositoryPHID the diff's, and its transactions are "create" followed
//     by the requested ones (the "create" PHID is included in the result).
//     Everything is validated before anything changes; validation failures
//     are one ERR-CONDUIT-CORE whose info is "Validation errors:" followed
//     by one "  - ..." line per error, with Phorge's messages ("You must
//     specify an initial diff when creating a revision.", "Specified diff
//     (...) does not exist.", "... because the diff is already attached to
//     another revision.", "Revisions must have a title.").
//
// Search results have the standard shape {data, maps, query: {queryKey},
// cursor: {limit, after, before, order}} (transaction.search omits maps,
// query and cursor.order). limit defaults to 100. For id orders the "after"
// cursor is the last id, like Phorge. For the "updated" order it is
// "dateModified:id" of the last result, so paging is stable even when a page
// boundary falls inside a run of equal timestamps or the boundary object is
// modified between pages; a bare id is also accepted and resolved through
// the object's current dateModified, as Phorge does. The "before" cursor is
// not supported.
//
// # Test hooks
//
// State is built with AddUser, AddProject, AddRepository and CreateRevision
// (which also creates the first diff plus "create" and "update"
// transactions) and changed with UpdateDiff, UpdateDiffPatch, AddComment,
// AddTransaction, SetStatus, SetTitle, EditComment, RemoveComment, Touch and
// SetDateModified. It is read with Revision, Revisions, Diff and
// Transactions. Time
// comes from Options.Clock with second resolution (see ManualClock); many
// objects created while the clock stands still share one dateModified.
// Editing a comment does not bump the revision's dateModified (as in
// Phorge); use Touch if a test needs that.
//
// Failure injection: Lag hides revisions modified within the last d from
// differential.revision.search (a lagging search index; they appear later
// with their original dateModified). FailNext answers the next n calls with
// a given Conduit error. DisableMethod makes a method look nonexistent, as
// on an older server. Requests and RequestsFor count calls.
package conduitfake
