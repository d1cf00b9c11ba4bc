package server_test

import (
	"context"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/credential"
)

// cheap keeps argon2id fast in tests; the hash format is the same.
var cheap = credential.Params{Memory: 1024, Time: 1, Threads: 1}

// testActor is what audit entries and script versions record for requests
// made with rootToken's token.
const testActor = "root@test (token test)"

// rootToken creates an org admin (admin of the default team) and returns an
// API token for it: the existing API tests act as that user.
func rootToken(t *testing.T, st *store.Store) string {
	t.Helper()
	return userToken(t, st, "root@test", true, map[int64]store.Role{store.DefaultTeamID: store.RoleAdmin})
}

// userToken creates a user with the given roles and returns a token named "test".
func userToken(t *testing.T, st *store.Store, email string, orgAdmin bool, roles map[int64]store.Role) string {
	t.Helper()
	ctx := context.Background()
	hash, err := credential.HashPassword("password-"+email, cheap)
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{Email: email, PasswordHash: hash, OrgAdmin: orgAdmin}
	if err := st.Identity().CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	for team, r := range roles {
		if err := st.Identity().SetMembership(ctx, team, u.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := credential.NewToken("dpx_")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Identity().CreateAPIToken(ctx, &store.APIToken{UserID: u.ID, Name: "test", Hash: credential.HashToken(tok), Prefix: tok[:10]}); err != nil {
		t.Fatal(err)
	}
	return tok
}
