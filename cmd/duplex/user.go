package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/credential"
)

// runUser manages people from the command line, for the first admin of a
// scripted install and for the admin who forgot their password. Passwords
// come from DUPLEX_PASSWORD, never from flags (which `ps` shows).
func runUser(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("user: add, password or list")
	}
	fs := flag.NewFlagSet("user "+args[0], flag.ExitOnError)
	var c common
	c.register(fs, "duplex-data")
	orgAdmin := fs.Bool("org-admin", false, "make the user an org admin (add)")
	team := fs.String("team", "", "team to add the user to, created if missing (add)")
	role := fs.String("role", "editor", "role in --team: admin, editor or viewer (add)")
	_ = fs.Parse(args[1:])
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "list":
		us, err := st.Identity().ListUsers(ctx)
		if err != nil {
			return err
		}
		for _, u := range us {
			roles, err := st.Identity().Memberships(ctx, u.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%d\t%s\torg_admin=%v\tdisabled=%v\tteams=%v\n", u.ID, u.Email, u.OrgAdmin, u.Disabled, roles)
		}
		return nil
	case "add":
		if fs.NArg() != 1 {
			return errors.New("user add: give one email")
		}
		r := store.Role(*role)
		if *team != "" && !r.Valid() {
			return fmt.Errorf("user add: role must be admin, editor or viewer, got %q", *role)
		}
		u, err := addUser(ctx, st, fs.Arg(0), "", os.Getenv("DUPLEX_PASSWORD"), *orgAdmin)
		if err != nil {
			return fmt.Errorf("user add (password from DUPLEX_PASSWORD): %w", err)
		}
		if *team != "" {
			t, err := st.Identity().TeamByName(ctx, *team)
			if errors.Is(err, store.ErrNotFound) {
				t = store.Team{Name: *team}
				err = st.Identity().CreateTeam(ctx, &t)
			}
			if err != nil {
				return err
			}
			if err := st.Identity().SetMembership(ctx, t.ID, u.ID, r); err != nil {
				return err
			}
		}
		_ = st.AddAudit(ctx, &store.AuditEntry{Actor: "duplex user", Action: "user.create",
			Detail: fmt.Sprintf("%s (org admin %v, team %q as %s)", u.Email, u.OrgAdmin, *team, *role)})
		fmt.Fprintf(out, "user %d %s created\n", u.ID, u.Email)
		return nil
	case "password":
		if fs.NArg() != 1 {
			return errors.New("user password: give one email")
		}
		u, err := st.Identity().UserByEmail(ctx, strings.ToLower(strings.TrimSpace(fs.Arg(0))))
		if err != nil {
			return err
		}
		pw := os.Getenv("DUPLEX_PASSWORD")
		if err := credential.CheckPassword(pw); err != nil {
			return fmt.Errorf("user password (from DUPLEX_PASSWORD): %w", err)
		}
		if u.PasswordHash, err = credential.HashPassword(pw, credential.Default); err != nil {
			return err
		}
		u.Disabled = false
		if err := st.Identity().UpdateUser(ctx, &u); err != nil {
			return err
		}
		if err := st.Identity().DeleteUserSessions(ctx, u.ID); err != nil {
			return err
		}
		_ = st.AddAudit(ctx, &store.AuditEntry{Actor: "duplex user", Action: "user.password", Detail: u.Email})
		fmt.Fprintf(out, "password of %s set; their sessions are signed out\n", u.Email)
		return nil
	}
	return fmt.Errorf("user: unknown action %q (add, password or list)", args[0])
}
