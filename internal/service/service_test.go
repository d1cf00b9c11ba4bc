package service_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
)

// recorder is the engine: what it was told.
type recorder struct {
	reloads []int64
	wakes   int
}

func (r *recorder) Reload(id int64)    { r.reloads = append(r.reloads, id) }
func (r *recorder) Wake()              { r.wakes++ }
func (r *recorder) ReloadSystem(int64) {}

func TestCreateConnection(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			other := store.Team{Name: "other"}
			if err := st.Identity().CreateTeam(ctx, &other); err != nil {
				t.Fatal(err)
			}
			mine, theirs := store.System{Name: "mine", Kind: "sql"}, store.System{Name: "theirs", Kind: "sql", TeamID: other.ID}
			mine2 := store.System{Name: "mine2", Kind: "sql"}
			for _, s := range []*store.System{&mine, &theirs, &mine2} {
				if err := st.CreateSystem(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			eng := &recorder{}
			svc := service.New(st, eng, nil)
			base := service.NewConnection{Name: "c", TeamID: store.DefaultTeamID, SystemAID: mine.ID, SystemBID: mine2.ID}

			refused := []struct {
				name string
				edit func(*service.NewConnection)
				want error
			}{
				{"another team's system", func(n *service.NewConnection) { n.SystemBID = theirs.ID }, service.ErrForbidden},
				{"missing system", func(n *service.NewConnection) { n.SystemBID = 999 }, service.ErrInvalid},
				{"no name", func(n *service.NewConnection) { n.Name = " " }, service.ErrInvalid},
				{"bad policy", func(n *service.NewConnection) { n.ConflictPolicy = `{"default":"loudest"}` }, service.ErrInvalid},
				{"bad options", func(n *service.NewConnection) { n.Options = `{"on_unmatch":"explode"}` }, service.ErrInvalid},
			}
			for _, tc := range refused {
				in := base
				tc.edit(&in)
				if _, err := svc.CreateConnection(ctx, "tester", in); !errors.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
				}
			}
			bad := base
			bad.Scripts = map[store.Side]map[store.ScriptKind]string{store.SideA: {store.KindOutgoing: "replica.title = ;"}}
			var se *scripting.Error
			if _, err := svc.CreateConnection(ctx, "tester", bad); !errors.As(err, &se) {
				t.Errorf("a script that does not compile: %v", err)
			}
			if conns, _ := st.ListConnections(ctx); len(conns) != 0 || len(eng.reloads) != 0 {
				t.Fatalf("refused creates left %d connection(s), reloads %v", len(conns), eng.reloads)
			}

			good := base
			good.ConflictPolicy = `{"default":"manual"}`
			good.Rules = map[store.Side][]scripting.Rule{store.SideB: {{Expr: `fields.title != ""`, Message: "needs a title"}}}
			conn, err := svc.CreateConnection(ctx, "tester", good)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(eng.reloads, []int64{conn.ID}) {
				t.Fatalf("reloads %v", eng.reloads)
			}
			rules, err := st.CurrentRules(ctx, conn.ID)
			if err != nil || rules[store.SideB].Version != 1 {
				t.Fatalf("rules %+v (%v)", rules, err)
			}
			audit, err := st.ListAudit(ctx, conn.ID, 10)
			if err != nil || len(audit) != 1 || audit[0].Action != "connection.create" || audit[0].Actor != "tester" ||
				audit[0].TeamID == nil || *audit[0].TeamID != store.DefaultTeamID {
				t.Fatalf("audit %+v (%v)", audit, err)
			}
		})
	}
}
