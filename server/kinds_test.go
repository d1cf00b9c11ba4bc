package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/kinds"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/server"
)

// TestSystemConfigRefused: a system with an unknown kind, setting key or
// secret name, or a setting of the wrong type, is refused with 422, a stable
// code and the field, and nothing is stored; the kinds are listed.
func TestSystemConfigRefused(t *testing.T) {
	st := testdb.SQLite(t)
	box, err := secret.LoadOrCreate(t.TempDir() + "/key")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kinds.Registry()
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(server.Options{Store: st, Engine: &fakeEngine{}, Secrets: box, Connectors: reg,
		Logger: slog.New(slog.DiscardHandler), Auth: server.AuthOptions{Password: cheap}})
	tok := rootToken(t, st)
	do := func(method, path, body string) (int, map[string]any) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		if rec.Body.Len() > 0 && rec.Body.Bytes()[0] == '{' {
			_ = json.Unmarshal(rec.Body.Bytes(), &out)
		}
		return rec.Code, out
	}
	good := `"settings":{"url":"http://127.0.0.1:3100","project":"p"},"secrets":{"api_key":"k"}`
	for _, tc := range []struct{ body, code, field string }{
		{`{"name":"a","kind":"redmnie",` + good + `}`, server.CodeKindUnknown, "kind"},
		{`{"name":"a","kind":"redmine","settings":{"url":"http://x","project":"p","corelation_field":"k"}}`, server.CodeSettingInvalid, "settings.corelation_field"},
		{`{"name":"a","kind":"redmine","settings":{"url":"http://x"}}`, server.CodeSettingInvalid, "settings.project"},
		{`{"name":"a","kind":"redmine","settings":{"url":"http://x","project":"p","timeout_ms":"9"}}`, server.CodeSettingInvalid, "settings.timeout_ms"},
		{`{"name":"a","kind":"redmine","settings":{"url":"x","project":"p"}}`, server.CodeSettingInvalid, "settings.url"},
		{`{"name":"a","kind":"redmine","settings":{"url":"http://x","project":"p"},"secrets":{"apikey":"k"}}`, server.CodeSecretInvalid, "secrets.apikey"},
		{`{"name":"a","kind":"sql","settings":{"driver":"sqlite","table":"t","fields":[{"name":"x","colunm":"y"}]}}`, server.CodeSettingInvalid, "settings.colunm"},
	} {
		code, out := do("POST", "/api/systems", tc.body)
		if code != http.StatusUnprocessableEntity || out["code"] != tc.code || out["field"] != tc.field {
			t.Errorf("%s: %d %v, want 422 %s %s", tc.body, code, out, tc.code, tc.field)
		}
	}
	if systems, _ := st.ListSystems(context.Background()); len(systems) != 0 {
		t.Fatalf("refused systems were stored: %+v", systems)
	}
	code, out := do("POST", "/api/systems", `{"name":"a","kind":"redmine",`+good+`}`)
	if code != http.StatusCreated {
		t.Fatalf("a valid system: %d %v", code, out)
	}
	id := int64(out["id"].(float64))
	path := "/api/systems/" + jsonNumber(id)
	if code, out := do("PUT", path, `{"settings":{"url":"http://x","project":"p","trakcer":"Bug"}}`); code != 422 || out["field"] != "settings.trakcer" {
		t.Fatalf("update with a misspelled key: %d %v", code, out)
	}
	if code, _ := do("PUT", path, `{"settings":{"url":"http://x","project":"p","tracker":"Bug"}}`); code != 200 {
		t.Fatalf("valid update: %d", code)
	}

	req := httptest.NewRequest("GET", "/api/connector-kinds", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var specs []connectors.Spec
	if err := json.Unmarshal(rec.Body.Bytes(), &specs); err != nil || rec.Code != 200 {
		t.Fatalf("connector-kinds: %d %v", rec.Code, err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Kind)
	}
	if strings.Join(names, ",") != strings.Join(reg.Kinds(), ",") {
		t.Fatalf("kinds %v, want %v", names, reg.Kinds())
	}
	if s, _ := reg.Spec("redmine"); len(s.Settings) == 0 || !s.Settings[0].Required || s.Secrets[0].Name != "api_key" {
		t.Fatalf("redmine spec %+v", s)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }
