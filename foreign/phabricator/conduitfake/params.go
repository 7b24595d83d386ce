package conduitfake

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// params holds decoded method parameters (numbers as json.Number).
type params map[string]any

func (p params) str(key string) (string, error) {
	switch v := p[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	default:
		return "", coreErr("Parameter %q must be a string.", key)
	}
}

// int returns an integer parameter; ok is false when it is absent or null.
func (p params) int(key string) (n int64, ok bool, err error) {
	switch v := p[key].(type) {
	case nil:
		return 0, false, nil
	case json.Number:
		n, err = v.Int64()
	case string:
		n, err = strconv.ParseInt(v, 10, 64)
	default:
		err = fmt.Errorf("bad type")
	}
	if err != nil {
		return 0, false, coreErr("Parameter %q must be an integer.", key)
	}
	return n, true, nil
}

func (p params) strList(key string) ([]string, bool, error) {
	v, present := p[key]
	if !present || v == nil {
		return nil, false, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, false, coreErr("Parameter %q must be a list of strings.", key)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, false, coreErr("Parameter %q must be a list of strings.", key)
		}
		out = append(out, s)
	}
	return out, true, nil
}

func (p params) intList(key string) ([]int, bool, error) {
	v, present := p[key]
	if !present || v == nil {
		return nil, false, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, false, coreErr("Parameter %q must be a list of integers.", key)
	}
	out := make([]int, 0, len(list))
	for _, e := range list {
		var s string
		switch e := e.(type) {
		case json.Number:
			s = e.String()
		case string:
			s = e
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, false, coreErr("Parameter %q must be a list of integers.", key)
		}
		out = append(out, n)
	}
	return out, true, nil
}

// obj returns a nested object parameter; an absent value or an empty JSON
// list (how PHP clients encode an empty map) yields an empty object.
func (p params) obj(key string) (params, error) {
	switch v := p[key].(type) {
	case nil:
		return params{}, nil
	case map[string]any:
		return params(v), nil
	case []any:
		if len(v) == 0 {
			return params{}, nil
		}
	}
	return nil, coreErr("Parameter %q must be a map.", key)
}

// searchArgs holds the common arguments of *.search methods.
type searchArgs struct {
	constraints params
	attach      map[string]bool
	limit       int
	after       string
	order       any // as given, echoed in cursor.order
}

const maxLimit = 100

func parseSearchArgs(p params, constraints, attachments []string) (searchArgs, error) {
	var a searchArgs
	var err error
	if a.constraints, err = p.obj("constraints"); err != nil {
		return a, err
	}
	for k := range a.constraints {
		if !contains(constraints, k) {
			return a, coreErr("Constraint %q is not a valid constraint for this query. Valid constraints are: %s.", k, strings.Join(constraints, ", "))
		}
	}
	att, err := p.obj("attachments")
	if err != nil {
		return a, err
	}
	a.attach = map[string]bool{}
	for k, v := range att {
		if !contains(attachments, k) {
			return a, coreErr("Attachment %q is not a valid attachment for this query.", k)
		}
		if b, _ := v.(bool); b || v == json.Number("1") {
			a.attach[k] = true
		}
	}
	n, ok, err := p.int("limit")
	if err != nil {
		return a, err
	}
	a.limit = maxLimit
	if ok && n > 0 {
		if n > maxLimit {
			return a, coreErr("Maximum page size for Conduit API method calls is %d, but this call specified %d.", maxLimit, n)
		}
		a.limit = int(n)
	}
	if a.after, err = p.str("after"); err != nil {
		return a, err
	}
	if p["before"] != nil {
		return a, coreErr("conduitfake: the \"before\" cursor is not supported.")
	}
	a.order = p["order"]
	return a, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// set builds a membership set; a nil slice means "no constraint".
func set(list []string) map[string]bool {
	if list == nil {
		return nil
	}
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}
