// Package openapicheck checks a fake GitHub's requests and answers against
// GitHub's published OpenAPI description (@octokit/openapi, trimmed to the
// operations githubfake serves; testdata/trim regenerates it), with
// kin-openapi. It is a package of its own so that only tests link
// kin-openapi and the description: githubfake.Options.Checker takes it.
package openapicheck

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// trimmedSpec is GitHub's OpenAPI description cut down by testdata/trim to
// the operations this fake serves. See doc.go for its origin.
//
//go:embed testdata/api.github.com.trimmed.json
var trimmedSpec []byte

// specHost is the host of the server named in GitHub's description; requests
// are matched against routes as if they had been sent there.
const specHost = "api.github.com"

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

// loadSpec parses and checks the embedded description once per process.
func loadSpec() (routers.Router, error) {
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(trimmedSpec)
		if err != nil {
			specErr = fmt.Errorf("openapicheck: load OpenAPI description: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = fmt.Errorf("openapicheck: invalid OpenAPI description: %w", err)
			return
		}
		specRouter, specErr = legacy.NewRouter(doc)
	})
	return specRouter, specErr
}

// githubDateTime accepts timestamps as GitHub writes them: RFC 3339 in UTC
// with second resolution, such as 2011-04-14T16:00:49Z.
func githubDateTime(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return err
	}
	if got := t.UTC().Format(timeLayout); got != s {
		return fmt.Errorf("timestamp %q is not in GitHub's form (want %q)", s, got)
	}
	return nil
}

// timeLayout is how GitHub writes times.
const timeLayout = "2006-01-02T15:04:05Z"

// Checker checks requests and responses against the description.
type Checker struct {
	router routers.Router
}

// New loads the embedded description (once per process).
func New() (*Checker, error) {
	r, err := loadSpec()
	if err != nil {
		return nil, err
	}
	return &Checker{router: r}, nil
}

// checked holds what ValidateResponse needs from the matching request.
type checked struct {
	input *openapi3filter.RequestValidationInput
}

// Request validates r, whose body has already been read into body. It
// returns the matched route, for Response (nil if none), and an error
// describing any violation.
func (v *Checker) Request(r *http.Request, body []byte) (any, error) {
	req := r.Clone(context.Background())
	req.URL.Scheme = "https"
	req.URL.Host = specHost
	req.Host = specHost
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: no such operation in GitHub's description: %w", r.Method, r.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
			MultiError:          true,
			SkipSettingDefaults: true,
		},
	}
	c := &checked{input: in}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return c, fmt.Errorf("request %s %s: %w", r.Method, r.URL.RequestURI(), err)
	}
	return c, nil
}

// Response validates an answer to a request Request matched (route: what
// it returned).
func (v *Checker) Response(route any, status int, header http.Header, body []byte) error {
	c, _ := route.(*checked)
	if c == nil {
		return nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: c.input,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			MultiError: true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{
				openapi3.EnableFormatValidation(),
				openapi3.WithStringFormatValidator("date-time", openapi3.NewCallbackValidator(githubDateTime)),
			},
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		r := c.input.Request
		return fmt.Errorf("response %d to %s %s: %w", status, r.Method, r.URL.RequestURI(), err)
	}
	return nil
}
