package githubfake

import "net/http"

// SetMutate installs a hook that rewrites response bodies before they are
// validated and sent, so tests can check that validation catches a wrong
// response.
func (s *Server) SetMutate(f func(r *http.Request, body []byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mutate = f
}
