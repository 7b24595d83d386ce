package httpsync

import "testing"

// Check compares the token's hash with every stored hash, through the
// constant-time compare, whichever matches: it never stops early.
func TestCheckComparesAllInConstantTime(t *testing.T) {
	var hs []TokenHash
	var toks []string
	for range 5 {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
		hs = append(hs, TokenHash{Hash: HashToken(tok), Scope: ScopeWrite})
	}
	s := NewTokenSet(hs)
	calls := 0
	orig := constantTimeCompare
	constantTimeCompare = func(x, y []byte) int { calls++; return orig(x, y) }
	defer func() { constantTimeCompare = orig }()
	for _, tok := range []string{toks[0], toks[4], "pt_unknown"} {
		calls = 0
		s.Check(tok)
		if calls != len(hs) {
			t.Errorf("Check(%s…) compared %d hashes in constant time, want all %d", tok[:6], calls, len(hs))
		}
	}
}
