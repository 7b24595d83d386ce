// Package githubfake is a stateful fake of the parts of GitHub's REST API
// (v3) that the GitHub gateway uses, for tests.
//
// A Server keeps repositories, issues (pull requests included, as the issues
// API shows them) and issue comments, and answers these operations with the
// paths, status codes, headers and JSON that GitHub uses:
//
//	GET   /repos/{owner}/{repo}
//	GET   /repos/{owner}/{repo}/issues                  state, sort, direction, since, labels, creator, per_page, page
//	POST  /repos/{owner}/{repo}/issues
//	GET   /repos/{owner}/{repo}/issues/{number}
//	PATCH /repos/{owner}/{repo}/issues/{number}
//	GET   /repos/{owner}/{repo}/issues/comments         sort, direction, since, per_page, page
//	GET   /repos/{owner}/{repo}/issues/{number}/comments since, per_page, page
//	POST  /repos/{owner}/{repo}/issues/{number}/comments
//	GET   /repos/{owner}/{repo}/issues/comments/{id}
//	PATCH /repos/{owner}/{repo}/issues/comments/{id}
//	GET   /rate_limit
//	GET   /user
//
// The same paths are also served under /api/v3, as GitHub Enterprise Server
// does, so a client made with WithEnterpriseURLs works too.
//
// # Behaviour
//
//   - Authentication: "Authorization: Bearer T" or "token T", with tokens
//     registered by AddToken. Otherwise 401 "Bad credentials".
//   - Unknown repositories, issues, comments and paths: 404 "Not Found".
//   - Lists are paginated (per_page default 30, at most 100) with a Link
//     header in GitHub's form: rel="prev", "next", "last", "first", absolute
//     URLs on the fake's host, other query parameters kept.
//   - Every 200 answer to a GET carries an ETag, a quoted hash of the body;
//     a matching If-None-Match gets 304 with no body, which does not count
//     against the rate limit.
//   - Primary rate limit per token (Options.RateLimit, default 5000, per
//     Options.RateLimitWindow, default an hour): every other authenticated
//     answer counts, except GET /rate_limit, which GitHub does not count.
//     x-ratelimit-limit, -remaining, -used, -reset and -resource (core) are
//     sent; when exhausted the answer is 403 "API rate limit exceeded for user
//     ID N." with x-ratelimit-remaining 0. Unauthenticated requests get no
//     rate-limit headers.
//   - Timestamps come from Options.Clock, in UTC with whole seconds, written
//     as 2006-01-02T15:04:05Z. A new comment bumps its issue's updated_at,
//     as on GitHub; editing a comment does not.
//   - URL fields (url, issue_url, ...) point at the fake; html_url fields
//     start with Options.HTMLBase (https://github.com).
//
// # Failure injection
//
// SecondaryLimit and SecondaryLimitStatus answer the next requests with a
// secondary rate limit (403 or 429 with retry-after); DropNextResponse
// carries out a request and then closes the connection without answering;
// SetRateLimit sets a token's remaining count and reset time. Requests and
// RequestsTo count requests.
//
// # Webhooks
//
// Changes made through the API, and through CreateIssue, EditIssue,
// AddComment and EditComment (which act as a person on GitHub would), queue
// "issues" (opened, edited, closed, reopened, labeled, unlabeled, assigned,
// unassigned) and "issue_comment" (created, edited) deliveries with GitHub's
// payload shape (action, issue, comment, changes, repository, sender) and
// headers (X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256 when
// Options.WebhookSecret is set, Content-Type application/json). Nothing is
// sent until the test calls Deliver, DeliverAll or DeliverInOrder; Pending
// lists what is queued and Redeliver posts a delivery again with the same ID
// and body. Pull requests get no "issues" deliveries (GitHub sends
// "pull_request" events for them, which the fake does not model).
//
// # OpenAPI validation
//
// With Options.Checker set to openapicheck.New()'s, every request and every
// response is checked with kin-openapi's openapi3filter against GitHub's
// OpenAPI description, embedded from
// openapicheck/testdata/api.github.com.trimmed.json (a package of its own,
// so that only tests link kin-openapi and the description). Failures
// are kept for ValidationErrors and, with a TB, reported by TB.Errorf, so they
// fail the test. Date-time fields are also checked to be in GitHub's exact
// form (UTC, whole seconds, "Z"). Status codes the description does not list
// for an operation (such as 401 or 429 on most of them) are not checked, as
// openapi3filter allows by default.
//
// The description is generated/api.github.com.json from the npm package
// @octokit/openapi version 23.0.2 (info.version 23.0.2, OpenAPI 3.0.3),
// trimmed by the program in testdata/trim to the operations above and the
// components they reference. The only change made besides the cut is that
// "examples" and schema "example" values are dropped: they are documentation,
// most of the size, and not needed for validation. kin-openapi v0.152.0 loads
// and validates the rest unchanged. To refresh it:
//
//	cd /tmp && npm pack @octokit/openapi@VERSION && tar xzf octokit-openapi-VERSION.tgz
//	cd foreign/github/githubfake/openapicheck && go run ./testdata/trim \
//		-in /tmp/package/generated/api.github.com.json \
//		-out testdata/api.github.com.trimmed.json
//
// and update the version named here.
package githubfake
