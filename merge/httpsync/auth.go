package httpsync

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// Scope is what a bearer token allows.
type Scope uint8

const (
	// ScopeRead allows every GET and the streamed reads (info, tickets,
	// changesets, resolutions, snapshot): pull and clone.
	ScopeRead Scope = iota + 1
	// ScopeWrite allows what ScopeRead does and POST /v1/push.
	ScopeWrite
)

func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	}
	return fmt.Sprintf("Scope(%d)", uint8(s))
}

// ParseScope is the inverse of Scope.String.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "read":
		return ScopeRead, nil
	case "write":
		return ScopeWrite, nil
	}
	return 0, fmt.Errorf("scope %q: want read or write", s)
}

// TokenPrefix starts every token NewToken makes.
const TokenPrefix = "pt_"

// NewToken makes a new bearer token: TokenPrefix and 32 random bytes
// (crypto/rand), base64url without padding.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashToken is what is stored of a token: its SHA-256.
func HashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// TokenHash is one stored token: its hash and scope.
type TokenHash struct {
	Hash  [32]byte
	Scope Scope
}

// TokenSet is the tokens a server takes, by hash. Its Check is a
// HandlerOptions.Auth.
type TokenSet struct{ tokens []TokenHash }

// NewTokenSet takes the tokens of ts.
func NewTokenSet(ts []TokenHash) *TokenSet {
	return &TokenSet{tokens: append([]TokenHash(nil), ts...)}
}

// Len is how many tokens the set holds.
func (s *TokenSet) Len() int { return len(s.tokens) }

// constantTimeCompare is subtle.ConstantTimeCompare; a variable so that a
// test can see that every stored hash is compared.
var constantTimeCompare = subtle.ConstantTimeCompare

// Check reports whether token is one of the set's, and its scope. It
// compares token's hash with every stored hash in constant time and does
// not stop at a match, so its timing tells nothing of which token matched,
// or how much of one.
func (s *TokenSet) Check(token string) (Scope, bool) {
	h := HashToken(token)
	var scope int
	for _, t := range s.tokens {
		eq := constantTimeCompare(h[:], t.Hash[:])
		scope = subtle.ConstantTimeSelect(eq, int(t.Scope), scope)
	}
	return Scope(scope), scope != 0
}

// bearer is the token of an "Authorization: Bearer TOKEN" header, or "".
func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(a[7:])
}

// authorize checks the request's token when the handler has an Auth: a
// missing or unknown token is a 401, a read token on a push a 403. It
// reports whether the request may go on.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	if h.o.Auth == nil || !(strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/metrics") {
		return true
	}
	tok := bearer(r) // "" without one: Auth decides (TokenSet refuses it)
	scope, ok := h.o.Auth(tok)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="prophet"`)
		msg := "no valid bearer token: this server takes only requests with Authorization: Bearer TOKEN, a token made by prophet token add"
		if tok == "" {
			msg = "no bearer token: this server takes only requests with Authorization: Bearer TOKEN, a token made by prophet token add"
		}
		h.failWith(w, r, http.StatusUnauthorized, errorJSON{Error: msg, Code: "unauthorized"})
		return false
	}
	if r.URL.Path == "/v1/push" && scope < ScopeWrite {
		w.Header().Set("WWW-Authenticate", `Bearer realm="prophet", error="insufficient_scope", scope="write"`)
		h.failWith(w, r, http.StatusForbidden, errorJSON{Error: "this token can only read; pushing needs a token with write scope", Code: "forbidden"})
		return false
	}
	return true
}
