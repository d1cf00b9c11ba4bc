package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/credential"
	"github.com/duplexsync/duplex/server"
)

// firstRun decides how the first admin comes to be, when no user exists:
// from DUPLEX_ADMIN_EMAIL and DUPLEX_ADMIN_PASSWORD (the password never on
// the command line, where `ps` shows it), or else through a one-time setup
// link that is logged.
func firstRun(ctx context.Context, st *store.Store, logger *slog.Logger, email, password string) (server.AuthOptions, error) {
	var o server.AuthOptions
	n, err := st.Identity().CountUsers(ctx)
	if err != nil || n > 0 {
		return o, err
	}
	if email != "" {
		if password == "" {
			return o, errors.New("DUPLEX_ADMIN_EMAIL is set but DUPLEX_ADMIN_PASSWORD is not")
		}
		u, err := addUser(ctx, st, email, "", password, true)
		if err != nil {
			return o, err
		}
		if err := st.Identity().SetMembership(ctx, store.DefaultTeamID, u.ID, store.RoleAdmin); err != nil {
			return o, err
		}
		_ = st.AddAudit(ctx, &store.AuditEntry{Actor: "duplex serve", Action: "user.setup", Detail: "first admin " + u.Email})
		logger.Info("created the first admin from DUPLEX_ADMIN_EMAIL", "email", u.Email)
		return o, nil
	}
	tok, err := credential.NewToken("")
	if err != nil {
		return o, err
	}
	o.SetupToken = tok
	return o, nil
}

func addUser(ctx context.Context, st *store.Store, email, name, password string, orgAdmin bool) (store.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if err := credential.CheckPassword(password); err != nil {
		return store.User{}, fmt.Errorf("admin password: %w", err)
	}
	hash, err := credential.HashPassword(password, credential.Default)
	if err != nil {
		return store.User{}, err
	}
	u := store.User{Email: email, Name: name, PasswordHash: hash, OrgAdmin: orgAdmin}
	return u, st.Identity().CreateUser(ctx, &u)
}

// demoUser is the demo's org admin. Its password is random and never shown:
// the browser signs in automatically (loopback only) and curl uses the API
// token printed in the banner.
const demoEmail = "demo@duplex.local"

func demoAccess(ctx context.Context, st *store.Store) (server.AuthOptions, string, error) {
	var o server.AuthOptions
	u, err := st.Identity().UserByEmail(ctx, demoEmail)
	if errors.Is(err, store.ErrNotFound) {
		pw, err := credential.NewToken("")
		if err != nil {
			return o, "", err
		}
		if u, err = addUser(ctx, st, demoEmail, "Demo admin", pw, true); err != nil {
			return o, "", err
		}
		if err := st.Identity().SetMembership(ctx, store.DefaultTeamID, u.ID, store.RoleAdmin); err != nil {
			return o, "", err
		}
	} else if err != nil {
		return o, "", err
	}
	if err := endDemoTokens(ctx, st, u.ID); err != nil {
		return o, "", err
	}
	tok, err := credential.NewToken("dpx_")
	if err != nil {
		return o, "", err
	}
	t := store.APIToken{UserID: u.ID, Name: demoTokenName, Hash: credential.HashToken(tok), Prefix: tok[:10]}
	if err := st.Identity().CreateAPIToken(ctx, &t); err != nil {
		return o, "", err
	}
	o.AutoLoginUser = u.ID
	return o, tok, nil
}
