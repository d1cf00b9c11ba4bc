package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A team keeps an admin: demoting or removing its last one is refused
// (the check reads inside the change's transaction), and each change that
// is made is audited with it.
func TestMembersKeepAnAdmin(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			svc := service.New(st, nil, nil)
			if _, err := svc.CreateTeam(ctx, "tester", " "); !errors.Is(err, service.ErrInvalid) {
				t.Fatalf("a team without a name: %v", err)
			}
			team, err := svc.CreateTeam(ctx, "tester", "ops")
			if err != nil {
				t.Fatal(err)
			}
			var users []store.User
			for _, email := range []string{"ann@test", "bob@test"} {
				u, err := svc.CreateUser(ctx, "tester", service.NewUser{Email: email, Password: "a long enough password"})
				if err != nil {
					t.Fatal(err)
				}
				users = append(users, u)
			}
			ann, bob := users[0].ID, users[1].ID
			if _, err := svc.SetMember(ctx, "tester", team.ID, ann, "owner"); !errors.Is(err, service.ErrInvalid) {
				t.Fatalf("an unknown role: %v", err)
			}
			if _, err := svc.SetMember(ctx, "tester", team.ID, ann, store.RoleAdmin); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.SetMember(ctx, "tester", team.ID, ann, store.RoleEditor); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("demoting the last admin: %v", err)
			}
			if err := svc.RemoveMember(ctx, "tester", team.ID, ann); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("removing the last admin: %v", err)
			}
			if _, err := svc.SetMember(ctx, "tester", team.ID, bob, store.RoleAdmin); err != nil {
				t.Fatal(err)
			}
			if err := svc.RemoveMember(ctx, "tester", team.ID, ann); err != nil {
				t.Fatalf("removing one of two admins: %v", err)
			}
			roles, err := st.Identity().Memberships(ctx, bob)
			if err != nil || roles[team.ID] != store.RoleAdmin {
				t.Fatalf("bob's roles %v (%v)", roles, err)
			}
			entries, err := st.ListAudit(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			count := map[string]int{}
			for _, e := range entries {
				count[e.Action]++
			}
			if count["team.create"] != 1 || count["user.create"] != 2 || count["member.role"] != 2 || count["member.remove"] != 1 {
				t.Fatalf("audit entries %v: one per change made, none for refused ones", count)
			}
		})
	}
}
