package foreign

import (
	"strings"
	"testing"
)

func TestRedactAddr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"rt:http://root:s3cret@rt.example/?queue=General", "rt:http://xxxxx@rt.example/?queue=General"},
		{"phab:https://token@phab.example/", "phab:https://xxxxx@phab.example/"},
		{"github:owner/repo?api=http://u:p@127.0.0.1:8080/", "github:owner/repo?api=http://xxxxx@127.0.0.1:8080/"},
		{"rt:http://rt.example/?queue=General", "rt:http://rt.example/?queue=General"},
		{"not even a url: //a:b@ and //c:d@", "not even a url: //xxxxx@ and //xxxxx@"},
	} {
		got := RedactAddr(c.in)
		if got != c.want {
			t.Errorf("RedactAddr(%q) = %q, want %q", c.in, got, c.want)
		}
		for _, secret := range []string{"s3cret", "token@", "u:p", "a:b", "c:d"} {
			if strings.Contains(got, secret) {
				t.Errorf("RedactAddr(%q) = %q: still holds %q", c.in, got, secret)
			}
		}
	}
}
