package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

func names(ts []store.TeamTemplate) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

func TestTeamTemplates(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			teams := map[string]*store.Team{"a": {Name: "team-a"}, "b": {Name: "team-b"}, "c": {Name: "team-c"}}
			for _, tm := range teams {
				if err := st.Identity().CreateTeam(ctx, tm); err != nil {
					t.Fatal(err)
				}
			}
			ta, tb, tc := teams["a"].ID, teams["b"].ID, teams["c"].ID

			tpl := store.TeamTemplate{TeamID: ta, Name: "esc", Title: "Escalation"}
			v1, err := st.Templates().CreateTemplate(ctx, &tpl, `{"v":1}`, "ann", "first")
			if err != nil || v1.Version != 1 || tpl.Visibility != store.VisibilityPrivate || tpl.Latest != 1 {
				t.Fatalf("create: %+v %+v %v", tpl, v1, err)
			}
			if _, err := st.Templates().CreateTemplate(ctx, &store.TeamTemplate{TeamID: ta, Name: "esc"}, "{}", "ann", ""); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("same name twice in a team: %v", err)
			}
			if _, err := st.Templates().CreateTemplate(ctx, &store.TeamTemplate{TeamID: tc, Name: "esc"}, "{}", "cy", ""); err != nil {
				t.Fatalf("same name in another team: %v", err)
			}
			v2, err := st.Templates().PublishTemplateVersion(ctx, tpl.ID, "Escalation 2", "d", `{"v":2}`, "ann", "second")
			if err != nil || v2.Version != 2 {
				t.Fatalf("publish: %+v %v", v2, err)
			}
			got, err := st.Templates().GetTemplate(ctx, tpl.ID)
			if err != nil || got.Latest != 2 || got.Title != "Escalation 2" {
				t.Fatalf("get: %+v %v", got, err)
			}
			if latest, err := st.Templates().GetTemplateVersion(ctx, tpl.ID, 0); err != nil || latest.Body != `{"v":2}` {
				t.Fatalf("latest: %+v %v", latest, err)
			}
			if old, err := st.Templates().GetTemplateVersion(ctx, tpl.ID, 1); err != nil || old.Body != `{"v":1}` {
				t.Fatalf("v1: %+v %v", old, err)
			}
			if _, err := st.Templates().GetTemplateVersion(ctx, tpl.ID, 3); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("v3: %v", err)
			}
			vs, err := st.Templates().TemplateVersions(ctx, tpl.ID)
			if err != nil || len(vs) != 2 || vs[0].Version != 2 || vs[0].Note != "second" {
				t.Fatalf("versions: %+v %v", vs, err)
			}

			// Private: only the owner sees it.
			if ls, _ := st.Templates().VisibleTemplates(ctx, []int64{tb}, false); len(ls) != 0 {
				t.Fatalf("b sees a private template: %v", names(ls))
			}
			if err := st.Templates().SetTemplateSharing(ctx, tpl.ID, store.VisibilityShared, []int64{tb, tb}); err != nil {
				t.Fatal(err)
			}
			if ls, _ := st.Templates().VisibleTemplates(ctx, []int64{tb}, false); len(ls) != 1 || ls[0].ID != tpl.ID || ls[0].Latest != 2 {
				t.Fatalf("b after sharing: %+v", ls)
			}
			if ls, _ := st.Templates().VisibleTemplates(ctx, nil, false); len(ls) != 0 {
				t.Fatalf("no team sees: %v", names(ls))
			}
			if ls, _ := st.Templates().VisibleTemplates(ctx, nil, true); len(ls) != 2 {
				t.Fatalf("all: %v", names(ls))
			}
			if sh, _ := st.Templates().TemplateShares(ctx, tpl.ID); len(sh) != 1 || sh[0] != tb {
				t.Fatalf("shares %v", sh)
			}
			if err := st.Templates().SetTemplateSharing(ctx, tpl.ID, store.VisibilityShared, []int64{999}); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("share with a missing team: %v", err)
			}
			if sh, _ := st.Templates().TemplateShares(ctx, tpl.ID); len(sh) != 1 {
				t.Fatalf("failed sharing changed the shares: %v", sh)
			}
			// Team c's own template, and a's once it is org-wide.
			if ls, _ := st.Templates().VisibleTemplates(ctx, []int64{tc}, false); len(ls) != 1 {
				t.Fatalf("c: %v", names(ls))
			}
			if err := st.Templates().SetTemplateSharing(ctx, tpl.ID, store.VisibilityOrg, nil); err != nil {
				t.Fatal(err)
			}
			if ls, _ := st.Templates().VisibleTemplates(ctx, []int64{tc}, false); len(ls) != 2 {
				t.Fatalf("c with org-wide: %v", names(ls))
			}

			// A fork of version 1 is b's own, private, and leaves a's as it was.
			fork, fv, err := st.Templates().ForkTemplate(ctx, tpl.ID, 1, tb, "my-esc", "bob")
			if err != nil || fork.TeamID != tb || fv.Version != 1 || fv.Body != `{"v":1}` ||
				*fork.ForkedFromID != tpl.ID || *fork.ForkedFromVersion != 1 || fork.Visibility != store.VisibilityPrivate {
				t.Fatalf("fork: %+v %+v %v", fork, fv, err)
			}
			if _, err := st.Templates().PublishTemplateVersion(ctx, fork.ID, "Mine", "", `{"v":"b"}`, "bob", ""); err != nil {
				t.Fatal(err)
			}
			if orig, _ := st.Templates().GetTemplate(ctx, tpl.ID); orig.Latest != 2 || orig.Title != "Escalation 2" {
				t.Fatalf("fork changed the original: %+v", orig)
			}
			if _, _, err := st.Templates().ForkTemplate(ctx, tpl.ID, 0, tb, "my-esc", "bob"); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("fork onto an existing name: %v", err)
			}
		})
	}
}
