// Package azuredevops is the connector for the work items of one Azure
// DevOps project (Azure DevOps Services or Server), over the REST API
// (version 7.1) with a personal access token. Changes are found by WIQL
// polling on System.ChangedDate (with time precision) followed by batch
// reads, and pushed by service hooks whose requests carry basic
// authentication. Updates are JSON Patch documents; a state the work item
// type does not allow is refused with the type's states named. Comments
// are the work item's discussion (HTML, made plain on read and back on
// write); Azure DevOps has no internal comments, so a private one is
// refused.
//
// Correlation: a work item Duplex creates carries the tag "duplex:KEY",
// which reads leave out of the tags field and tag writes keep;
// FindCorrelated finds it with WIQL.
package azuredevops

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// apiVersion is sent with every request; the comments API is still a
// preview in 7.1.
const (
	apiVersion         = "7.1"
	commentsAPIVersion = "7.1-preview.4"
)

// Settings is an Azure DevOps system's non-secret configuration. The
// secrets are "pat" (a personal access token with Work Items read & write,
// sent as Basic with an empty user name) and "hook_password" (with the
// optional setting hook_username: the basic authentication set on the
// service hook subscriptions; without it every service hook is refused).
type Settings struct {
	// URL is the organization's address: https://dev.azure.com/ORG (or an
	// Azure DevOps Server collection, https://HOST/tfs/COLLECTION).
	URL string `json:"url" spec:"required"`
	// Project is the project whose work items sync.
	Project string `json:"project" spec:"required"`
	// WorkItemType is the type new work items get when the fields name
	// none; default "Task".
	WorkItemType string `json:"work_item_type,omitempty"`
	// AreaPath, when set, limits polling to work items under this area path.
	AreaPath string `json:"area_path,omitempty"`
	// Fields are more field reference names (such as
	// "Microsoft.VSTS.Common.Severity" or "Custom.Customer") read and
	// written under their reference name.
	Fields []string `json:"fields,omitempty"`
	// HookUsername is the user name the service hooks send; empty: any.
	HookUsername string `json:"hook_username,omitempty"`
	// TimeoutMS bounds one request; default 30000.
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

func decodeSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	return s, nil
}

// New opens an Azure DevOps connector and checks the token against the
// project (GET _apis/projects/PROJECT).
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	pat := strings.TrimSpace(cfg.Secrets["pat"])
	if pat == "" {
		return nil, fmt.Errorf("%w: azuredevops: the secret pat is required", connectors.ErrBadConfig)
	}
	enc := base64.StdEncoding.EncodeToString([]byte(":" + pat))
	c := &conn{
		s: s, hookPassword: cfg.Secrets["hook_password"], secrets: []string{enc, pat},
		proj: "/" + url.PathEscape(s.Project) + "/_apis",
		http: &httpx.Client{
			HTTP:    &http.Client{Transport: signIn{cfg.RoundTripper()}},
			Base:    s.URL,
			Header:  http.Header{"Authorization": {"Basic " + enc}},
			Timeout: time.Duration(s.TimeoutMS) * time.Millisecond,
		},
	}
	var p struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := c.do(ctx, "GET", "/_apis/projects/"+url.PathEscape(s.Project)+"?api-version="+apiVersion, nil, &p); err != nil {
		if errors.Is(err, connectors.ErrNotFound) {
			return nil, fmt.Errorf("%w: azuredevops %s: project %q not found, or the token cannot see it", connectors.ErrBadConfig, cfg.Name, s.Project)
		}
		return nil, fmt.Errorf("azuredevops %s: check project: %w", cfg.Name, err)
	}
	c.projectID, c.s.Project = p.ID, p.Name
	return c, nil
}

type conn struct {
	s            Settings
	projectID    string
	hookPassword string
	proj         string   // "/PROJECT/_apis"
	secrets      []string // credential strings never to show in an error
	http         *httpx.Client
}

// signIn turns Azure DevOps' answer to a refused token, 203 with an HTML
// sign-in page, into the 401 it means.
type signIn struct{ next http.RoundTripper }

func (t signIn) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode >= 400 {
		return compactError(resp)
	}
	if resp.StatusCode != http.StatusNonAuthoritativeInfo {
		return resp, nil
	}
	resp.Body.Close()
	resp.StatusCode, resp.Status = http.StatusUnauthorized, "401 Unauthorized"
	resp.Body = io.NopCloser(strings.NewReader(`{"message": "Azure DevOps answered 203 with a sign-in page: the personal access token was not accepted"}`))
	return resp, nil
}

// compactError rewrites an error document to the parts the connector
// reads, so that it fits in the start of the body httpx keeps (a rule
// error runs to a few kilobytes).
func compactError(resp *http.Response) (*http.Response, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, httpx.MaxBody))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var e apiError
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
		data, _ = json.Marshal(e)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	return resp, nil
}

// do sends one JSON request and reads Azure DevOps' error document
// ({"message": ..., "typeKey": ...}) into the error.
func (c *conn) do(ctx context.Context, method, path string, body, out any) error {
	return c.redact(adoError(c.http.Do(ctx, method, path, body, out)))
}

// redact hides the credentials in a message rebuilt from an answer's body
// (httpx redacts its own messages, not the body adoError reads again).
func (c *conn) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := msg
	for _, s := range c.secrets {
		red = strings.ReplaceAll(red, s, "[redacted]")
	}
	if red == msg {
		return err
	}
	return &adoErr{msg: red, err: err}
}

// apiError is Azure DevOps' error document.
type apiError struct {
	Message          string `json:"message"`
	TypeKey          string `json:"typeKey"`
	CustomProperties struct {
		FieldReferenceName string `json:"FieldReferenceName"`
	} `json:"customProperties"`
}

func parseAPIError(err error) (apiError, bool) {
	var se *httpx.StatusError
	var e apiError
	if err == nil || !errors.As(err, &se) || json.Unmarshal([]byte(se.Body), &e) != nil || e.Message == "" {
		return e, false
	}
	return e, true
}

func adoError(err error) error {
	e, ok := parseAPIError(err)
	if !ok {
		return err
	}
	var se *httpx.StatusError
	errors.As(err, &se)
	sentinel := connectors.ErrInvalid
	for _, s := range []error{connectors.ErrNotFound, connectors.ErrBadConfig, connectors.ErrUnavailable} {
		if errors.Is(err, s) {
			sentinel = s
		}
	}
	wrapped := fmt.Errorf("%w: azuredevops %s %s: HTTP %d: %s", sentinel, se.Method, stripVersion(se.Path), se.Code, e.Message)
	var ra *connectors.RetryAfterError
	if errors.As(err, &ra) {
		return &connectors.RetryAfterError{After: ra.After, Err: wrapped}
	}
	return &adoErr{msg: wrapped.Error(), err: wrapped, api: e, cause: err}
}

// adoErr keeps the parsed document for callers (state refusals) and the
// original error for errors.As (the status).
type adoErr struct {
	msg   string
	err   error
	api   apiError
	cause error
}

func (e *adoErr) Error() string { return e.msg }
func (e *adoErr) Unwrap() []error {
	if e.cause == nil {
		return []error{e.err}
	}
	return []error{e.err, e.cause}
}

func stripVersion(p string) string {
	if i := strings.Index(p, "api-version="); i > 0 {
		return strings.TrimRight(p[:i], "?&")
	}
	return p
}
