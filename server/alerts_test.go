package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/server"
)

// GET /api/alerts lists only the caller's teams' alerts, open ones first.
func TestAlertsFilteredByTeam(t *testing.T) {
	ctx := context.Background()
	st := testdb.SQLite(t)
	h := server.New(server.Options{Store: st, Engine: &fakeEngine{}, Logger: slog.New(slog.DiscardHandler),
		Auth: server.AuthOptions{Password: cheap}})
	beta := store.Team{Name: "beta"}
	if err := st.Identity().CreateTeam(ctx, &beta); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, a := range []store.Alert{
		{Subject: "connection:1", TeamID: 1, Name: "mine", Kind: store.AlertPaused, OpenedAt: now},
		{Subject: "system:7", TeamID: 1, Name: "mine too", Kind: store.AlertUnreachable, OpenedAt: now},
		{Subject: "connection:2", TeamID: beta.ID, Name: "theirs", Kind: store.AlertFailures, OpenedAt: now},
	} {
		if ok, err := st.Alerts().OpenAlert(ctx, &a); err != nil || !ok {
			t.Fatal(i, ok, err)
		}
		if i == 1 {
			if _, err := st.Alerts().ResolveAlert(ctx, a.ID, a.Detail, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	viewer := userToken(t, st, "viewer@test", false, map[int64]store.Role{1: store.RoleViewer})
	org := userToken(t, st, "org@test", true, nil)
	get := func(token, query string) []store.Alert {
		t.Helper()
		req := httptest.NewRequest("GET", "/api/alerts"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", query, rec.Code, rec.Body)
		}
		var out []store.Alert
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := get(viewer, ""); len(got) != 2 || got[0].Name != "mine" || got[0].State != "open" || got[1].Name != "mine too" || got[1].State != "resolved" {
		t.Fatalf("viewer of team 1: %+v", got)
	}
	if got := get(viewer, "?state=open"); len(got) != 1 || got[0].Name != "mine" {
		t.Fatalf("viewer, open only: %+v", got)
	}
	if got := get(org, "?state=open"); len(got) != 2 {
		t.Fatalf("org admin, open: %+v", got)
	}
	req := httptest.NewRequest("GET", "/api/alerts?state=bogus", nil)
	req.Header.Set("Authorization", "Bearer "+viewer)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Fatalf("bad state: %d", rec.Code)
	}
}
