// Command trim cuts GitHub's published OpenAPI description down to the
// operations that githubfake implements.
//
// It reads generated/api.github.com.json from the npm package
// @octokit/openapi, keeps only the operations listed in [operations] plus every
// component they reference (transitively), applies the fix-ups described in
// [fixup], and writes the result as indented JSON.
//
// Usage (from the githubfake package directory):
//
//	cd /tmp && npm pack @octokit/openapi@23.0.2 && tar xzf octokit-openapi-23.0.2.tgz
//	go run ./testdata/trim -in /tmp/package/generated/api.github.com.json \
//		-out testdata/api.github.com.trimmed.json
//
// The directory is named testdata so that "go build ./..." and "go vet ./..."
// skip it; it is run only by hand when the spec is refreshed.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
)

// operations lists the path → methods that the fake serves.
var operations = map[string][]string{
	"/repos/{owner}/{repo}":                                {"get"},
	"/repos/{owner}/{repo}/issues":                         {"get", "post"},
	"/repos/{owner}/{repo}/issues/{issue_number}":          {"get", "patch"},
	"/repos/{owner}/{repo}/issues/comments":                {"get"},
	"/repos/{owner}/{repo}/issues/{issue_number}/comments": {"get", "post"},
	"/repos/{owner}/{repo}/issues/comments/{comment_id}":   {"get", "patch"},
	"/rate_limit": {"get"},
	"/user":       {"get"},
}

func main() {
	in := flag.String("in", "", "path of @octokit/openapi's generated/api.github.com.json")
	out := flag.String("out", "api.github.com.trimmed.json", "path of the trimmed spec to write")
	flag.Parse()
	if *in == "" {
		log.Fatal("trim: -in is required")
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	var full map[string]any
	if err := json.Unmarshal(raw, &full); err != nil {
		log.Fatalf("trim: parse %s: %v", *in, err)
	}
	trimmed, err := trim(full)
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(trimmed); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// trim returns a new document holding only the wanted operations and the
// components they reach.
func trim(full map[string]any) (map[string]any, error) {
	paths, _ := full["paths"].(map[string]any)
	keptPaths := map[string]any{}
	for path, methods := range operations {
		item, ok := paths[path].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("trim: path %s not in spec", path)
		}
		kept := map[string]any{}
		for key, v := range item {
			// Path-level fields such as shared parameters stay.
			if !isMethod(key) {
				kept[key] = v
			}
		}
		for _, m := range methods {
			op, ok := item[m]
			if !ok {
				return nil, fmt.Errorf("trim: %s %s not in spec", m, path)
			}
			kept[m] = op
		}
		keptPaths[path] = kept
	}

	doc := map[string]any{
		"openapi": full["openapi"],
		"info":    full["info"],
		"servers": full["servers"],
		"paths":   keptPaths,
	}
	fixup(doc)

	// Follow references until no new component is reached.
	comps, _ := full["components"].(map[string]any)
	keptComps := map[string]map[string]any{}
	queue := collectRefs(doc["paths"], nil)
	seen := map[string]bool{}
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		if seen[ref] {
			continue
		}
		seen[ref] = true
		kind, name, ok := splitRef(ref)
		if !ok {
			return nil, fmt.Errorf("trim: unsupported reference %q", ref)
		}
		group, _ := comps[kind].(map[string]any)
		v, ok := group[name]
		if !ok {
			return nil, fmt.Errorf("trim: dangling reference %q", ref)
		}
		v = fixupValue(v)
		if keptComps[kind] == nil {
			keptComps[kind] = map[string]any{}
		}
		keptComps[kind][name] = v
		queue = collectRefs(v, queue)
	}
	out := map[string]any{}
	for k, v := range keptComps {
		out[k] = v
	}
	doc["components"] = out
	return doc, nil
}

func isMethod(s string) bool {
	switch s {
	case "get", "put", "post", "delete", "options", "head", "patch", "trace":
		return true
	}
	return false
}

func splitRef(ref string) (kind, name string, ok bool) {
	rest, ok := strings.CutPrefix(ref, "#/components/")
	if !ok {
		return "", "", false
	}
	kind, name, ok = strings.Cut(rest, "/")
	return kind, name, ok
}

// collectRefs appends every "$ref" found under v to acc, in a stable order.
func collectRefs(v any, acc []string) []string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := x[k].(string); ok && k == "$ref" {
				acc = append(acc, s)
				continue
			}
			acc = collectRefs(x[k], acc)
		}
	case []any:
		for _, e := range x {
			acc = collectRefs(e, acc)
		}
	}
	return acc
}

// fixup applies [fixupValue] to the operations of doc in place.
func fixup(doc map[string]any) {
	doc["paths"] = fixupValue(doc["paths"])
}

// fixupValue returns v with the changes that make the description smaller and
// loadable by kin-openapi:
//
//   - "examples" (media-type and parameter examples, which reference
//     components/examples) and schema "example" values are removed. They are
//     documentation only, make up much of the file, and kin-openapi validates
//     them when loading, which the fake has no use for.
//
// The map under a "properties" key is a set of property names, so a property
// that happens to be called "example" or "examples" is kept.
func fixupValue(v any) any {
	return fixupIn(v, false)
}

func fixupIn(v any, isPropertyMap bool) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !isPropertyMap && (k == "examples" || k == "example") {
				continue
			}
			out[k] = fixupIn(e, !isPropertyMap && k == "properties")
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fixupIn(e, false)
		}
		return out
	}
	return v
}
