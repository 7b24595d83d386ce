package cli_test

import (
	"os"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/phabricator/conduitfake"
)

type phabKey struct{}

// phabHolder keeps a script's fake Phabricator.
type phabHolder struct{ srv *conduitfake.Server }

// cmdPhabFake: phabfake VAR — a fake Phabricator (conduitfake) for the
// script: alice put up two revisions that the token's user, bot, reviews,
// and commented on the first. $VAR is its URL, $PROPHET_PHABRICATOR_TOKEN
// (and $GOOD_TOKEN, and the file phab-token.txt) bot's token, $REV1 the
// first revision's record UUID.
func cmdPhabFake(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: phabfake VAR")
	}
	srv := conduitfake.New(conduitfake.Options{})
	url := srv.Start()
	ts.Defer(srv.Close)
	bot, alice := srv.AddUser("bot"), srv.AddUser("alice")
	var first conduitfake.Revision
	for i, title := range []string{"first revision", "second revision"} {
		rev, err := srv.CreateRevision(conduitfake.RevisionSpec{AuthorPHID: alice.PHID, Title: title, Reviewers: []string{bot.PHID}})
		ts.Check(err)
		if i == 0 {
			first = rev
		}
	}
	_, err := srv.AddComment(first.PHID, alice.PHID, "looks good to me?")
	ts.Check(err)
	ts.Setenv(args[0], url)
	ts.Setenv("PROPHET_PHABRICATOR_TOKEN", bot.Token)
	ts.Setenv("GOOD_TOKEN", bot.Token)
	ts.Check(os.WriteFile(ts.MkAbs("phab-token.txt"), []byte(bot.Token+"\n"), 0o600))
	ts.Setenv("REV1", foreign.NameUUID("phab:"+url+"/"+first.PHID).String())
	ts.Value(phabKey{}).(*phabHolder).srv = srv
}

// cmdPhabOld: phabold [undo] — the fake forgets differential.revision.search,
// as a server older than the *.search methods (undo: it knows it again).
func cmdPhabOld(ts *testscript.TestScript, neg bool, args []string) {
	srv := ts.Value(phabKey{}).(*phabHolder).srv
	if neg || srv == nil || len(args) > 1 || (len(args) == 1 && args[0] != "undo") {
		ts.Fatalf("usage: phabold [undo], after phabfake")
	}
	if len(args) == 1 {
		srv.EnableMethod("differential.revision.search")
		return
	}
	srv.DisableMethod("differential.revision.search")
}
