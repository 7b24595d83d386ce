package cli_test

import (
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/prophet-sync/prophet/foreign/github/githubfake"
)

type githubKey struct{}

// cmdGitHubFake: githubfake VAR — a fake GitHub (foreign/github/githubfake)
// for the script, with repository acme/demo holding two issues; $VAR is its
// API URL, $PROPHET_GITHUB_TOKEN a token it takes (also in $GOOD_TOKEN).
func cmdGitHubFake(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: githubfake VAR")
	}
	srv := githubfake.New(githubfake.Options{})
	ts.Defer(srv.Close)
	srv.AddToken("ghp_script", "script-bot")
	srv.AddRepo("acme", "demo")
	for _, title := range []string{"first issue", "second issue"} {
		if _, err := srv.CreateIssue("acme", "demo", "octocat", githubfake.Issue{Title: title}); err != nil {
			ts.Fatalf("%v", err)
		}
	}
	ts.Setenv(args[0], srv.URL())
	ts.Setenv("PROPHET_GITHUB_TOKEN", "ghp_script")
	ts.Setenv("GOOD_TOKEN", "ghp_script")
	ts.Value(githubKey{}).(*githubHolder).srv = srv
}

// githubHolder keeps a script's fake GitHub (setup puts one in each
// script's values).
type githubHolder struct{ srv *githubfake.Server }

// cmdGitHubExhaust: githubexhaust — the fake's primary rate limit is used
// up until an hour from now.
func cmdGitHubExhaust(ts *testscript.TestScript, neg bool, args []string) {
	srv := ts.Value(githubKey{}).(*githubHolder).srv
	if neg || srv == nil {
		ts.Fatalf("usage: githubexhaust, after githubfake")
	}
	ts.Check(srv.SetRateLimit("ghp_script", 0, time.Now().Add(time.Hour)))
}
