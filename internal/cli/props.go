package cli

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/prophet-sync/prophet/changeset"
)

// parseProps reads name=value arguments; an empty value means absent. A
// malformed one is a usage error that names it.
func parseProps(args []string) (map[string]string, error) {
	props := make(map[string]string, len(args))
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, usagef("bad property argument %q: want name=value (name= to unset); quote values with spaces for your shell", a)
		}
		if err := checkName("property name", name); err != nil {
			return nil, usagef("bad property argument %q: %v", a, err)
		}
		if !utf8.ValidString(value) {
			return nil, usagef("bad property argument %q: the value is not UTF-8; re-encode it", a)
		}
		if _, dup := props[name]; dup {
			return nil, usagef("property %q is given twice; give each property once", name)
		}
		props[name] = value
	}
	return props, nil
}

// checkName applies the data model's rules for type and property names, so
// the user hears about a bad one before anything is written.
func checkName(what, s string) error {
	switch {
	case s == "":
		return usagef("empty %s; give a name", what)
	case len(s) > changeset.MaxNameLen:
		return usagef("%s %.20q… is longer than %d bytes; use a shorter one", what, s, changeset.MaxNameLen)
	case !utf8.ValidString(s):
		return usagef("%s %q is not UTF-8; re-encode it", what, s)
	}
	return nil
}

// formatProp is name=value as a person would type it: the value is quoted
// (Go syntax) when it holds space, quotes, control characters or nothing.
func formatProp(name, value string) string { return name + "=" + quote(value) }

func quote(v string) string {
	if v == "" || strings.IndexFunc(v, needsQuote) >= 0 {
		return strconv.Quote(v)
	}
	return v
}

func needsQuote(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r == '\'' || r == '\\' || !unicode.IsPrint(r)
}
