package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

type authEnv struct {
	t  *testing.T
	st *store.Store
	h  http.Handler
}

func newAuthEnv(t *testing.T, o server.AuthOptions) *authEnv {
	t.Helper()
	st := testdb.SQLite(t)
	box, err := secret.LoadOrCreate(t.TempDir() + "/key")
	if err != nil {
		t.Fatal(err)
	}
	lib, _ := scripts.Builtin()
	o.Password = cheap
	h := server.New(server.Options{Store: st, Engine: &fakeEngine{}, Secrets: box, Templates: lib,
		Logger: slog.New(slog.DiscardHandler), Auth: o})
	return &authEnv{t: t, st: st, h: h}
}

// req is one request; cookie, csrf, bearer and remote are optional.
type req struct {
	method, path, body string
	cookie, csrf       string
	bearer             string
	remote             string
}

func (e *authEnv) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	hr.Header.Set("Content-Type", "application/json")
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: "duplex_session", Value: r.cookie})
	}
	if r.csrf != "" {
		hr.Header.Set("X-CSRF-Token", r.csrf)
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	return rec
}

type meBody struct {
	User struct {
		ID       int64
		Email    string
		OrgAdmin bool `json:"org_admin"`
	}
	Teams []struct {
		ID   int64
		Role string
	}
	CSRF string `json:"csrf_token"`
	Via  string
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%d %q: %v", rec.Code, rec.Body.String(), err)
	}
	return v
}

func code(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct{ Code string }
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	return e.Code
}

func sessionCookie(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == "duplex_session" {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", rec.Header())
	return nil
}

// Sign-in sets an HttpOnly cookie; writes made with it need the CSRF token;
// sign-out ends the session.
func TestSessionAndCSRF(t *testing.T) {
	e := newAuthEnv(t, server.AuthOptions{})
	userToken(t, e.st, "ann@test", false, map[int64]store.Role{1: store.RoleEditor})

	rec := e.do(req{method: "POST", path: "/api/auth/login", body: `{"email":" Ann@Test ","password":"password-ann@test"}`})
	if rec.Code != 200 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	me := decode[meBody](t, rec)
	ck := sessionCookie(t, rec)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || me.CSRF == "" || me.User.Email != "ann@test" ||
		len(me.Teams) != 1 || me.Teams[0].Role != "editor" || me.Via != "session" {
		t.Fatalf("cookie %+v, me %+v", ck, me)
	}
	// The cookie's token is not what the store keeps.
	var n int64
	e.st.DB().Model(&store.Session{}).Where("id = ?", ck.Value).Count(&n)
	if n != 0 {
		t.Fatal("the session table holds the raw cookie token")
	}

	if rec := e.do(req{method: "GET", path: "/api/me", cookie: ck.Value}); rec.Code != 200 {
		t.Fatalf("me with cookie: %d", rec.Code)
	}
	// A write with the cookie but no or a wrong CSRF header is refused and does nothing.
	for _, csrf := range []string{"", "wrong", me.CSRF + "x"} {
		rec := e.do(req{method: "POST", path: "/api/me/tokens", body: `{"name":"x"}`, cookie: ck.Value, csrf: csrf})
		if rec.Code != 403 || code(t, rec) != "csrf_failed" {
			t.Fatalf("csrf %q: %d %s", csrf, rec.Code, rec.Body)
		}
	}
	if ts, _ := e.st.Identity().ListAPITokens(context.Background(), me.User.ID); len(ts) != 1 { // only userToken's
		t.Fatalf("a refused write created a token: %d tokens", len(ts))
	}
	if rec := e.do(req{method: "POST", path: "/api/me/tokens", body: `{"name":"x"}`, cookie: ck.Value, csrf: me.CSRF}); rec.Code != 201 {
		t.Fatalf("write with csrf: %d %s", rec.Code, rec.Body)
	}
	// Sign-out: the cookie no longer works.
	if rec := e.do(req{method: "POST", path: "/api/auth/logout", body: `{}`, cookie: ck.Value, csrf: me.CSRF}); rec.Code != 204 {
		t.Fatalf("logout: %d", rec.Code)
	}
	if rec := e.do(req{method: "GET", path: "/api/me", cookie: ck.Value}); rec.Code != 401 || code(t, rec) != "unauthenticated" {
		t.Fatalf("me after logout: %d %s", rec.Code, rec.Body)
	}
}

// TestWrongPasswordAndThrottle: the address that failed Max times is
// refused; the account is not locked: attempts on it from other addresses
// wait a growing delay, the owner's right password is accepted from a new
// address once it has passed, and an org admin can clear the delay.
func TestWrongPasswordAndThrottle(t *testing.T) {
	// A clock the test steps: the delays are exact, whatever the load.
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	sleep := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	e := newAuthEnv(t, server.AuthOptions{Throttle: server.ThrottleOptions{Max: 3, Window: 5 * time.Second,
		BaseDelay: 500 * time.Millisecond, MaxDelay: 2 * time.Second, Now: now}})
	userToken(t, e.st, "bob@test", false, nil)
	login := func(pw, remote string) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/api/auth/login", body: `{"email":"bob@test","password":"` + pw + `"}`, remote: remote})
	}
	throttled := func(rec *httptest.ResponseRecorder) bool {
		return rec.Code == 429 && code(t, rec) == "rate_limited" && rec.Header().Get("Retry-After") != ""
	}
	// An unknown email and a wrong password answer the same.
	unknown := e.do(req{method: "POST", path: "/api/auth/login", body: `{"email":"nobody@test","password":"x"}`, remote: "10.0.0.9:1"})
	if unknown.Code != 401 || code(t, unknown) != "invalid_credentials" {
		t.Fatalf("unknown email: %d %s", unknown.Code, unknown.Body)
	}
	for i := 0; i < 3; i++ {
		if rec := login("wrong", "10.0.0.1:1"); rec.Code != 401 || code(t, rec) != "invalid_credentials" {
			t.Fatalf("attempt %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	// The attacker's address is refused, even with the right password.
	if rec := login("password-bob@test", "10.0.0.1:1"); !throttled(rec) {
		t.Fatalf("the failing address: %d %s", rec.Code, rec.Body)
	}
	// Another address, at once: the account's delay (not checked, not counted).
	if rec := login("password-bob@test", "10.0.0.2:1"); !throttled(rec) {
		t.Fatalf("within the account's delay: %d %s", rec.Code, rec.Body)
	}
	// An attacker on fresh addresses gets one guess per delay, and each
	// wrong guess doubles it (up to MaxDelay).
	sleep(600 * time.Millisecond)
	if rec := login("wrong", "10.0.0.3:1"); rec.Code != 401 {
		t.Fatalf("a guess after the delay: %d %s", rec.Code, rec.Body)
	}
	if rec := login("wrong", "10.0.0.4:1"); !throttled(rec) { // within the doubled 1 s
		t.Fatalf("a guess within the doubled delay: %d %s", rec.Code, rec.Body)
	}
	// The attacker hammers on within the delay from ever new addresses:
	// each is answered 429 unchecked and uncounted, so the delay the owner
	// waits does not grow.
	for i := 0; i < 50; i++ {
		sleep(10 * time.Millisecond)
		if rec := login("wrong", "10.0.2."+strconv.Itoa(i)+":1"); !throttled(rec) {
			t.Fatalf("hammering attempt %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	// The owner, from a new address, once the delay has passed: signed in.
	sleep(600 * time.Millisecond)
	if rec := login("password-bob@test", "10.0.0.2:1"); rec.Code != 200 {
		t.Fatalf("the owner after the delay: %d %s", rec.Code, rec.Body)
	}
	// The success cleared the account; the attacker's address stays refused.
	if rec := login("password-bob@test", "10.0.0.5:1"); rec.Code != 200 {
		t.Fatalf("after a success: %d %s", rec.Code, rec.Body)
	}
	if rec := login("password-bob@test", "10.0.0.1:1"); !throttled(rec) {
		t.Fatalf("the failing address after the owner's success: %d", rec.Code)
	}

	// An org admin clears an account's delay.
	org := userToken(t, e.st, "org@test", true, nil)
	for i, remote := range []string{"10.0.1.1:1", "10.0.1.2:1", "10.0.1.3:1"} {
		if rec := login("wrong", remote); rec.Code != 401 {
			t.Fatalf("failure %d: %d", i, rec.Code)
		}
	}
	if rec := login("password-bob@test", "10.0.1.9:1"); !throttled(rec) {
		t.Fatalf("delayed again: %d", rec.Code)
	}
	u, err := e.st.Identity().UserByEmail(context.Background(), "bob@test")
	if err != nil {
		t.Fatal(err)
	}
	if rec := e.do(req{method: "PUT", path: "/api/users/" + itoa(u.ID), body: `{"unlock_sign_in":true}`, bearer: org}); rec.Code != 200 {
		t.Fatalf("unlock: %d %s", rec.Code, rec.Body)
	}
	if rec := login("password-bob@test", "10.0.1.9:1"); rec.Code != 200 {
		t.Fatalf("after the unlock: %d %s", rec.Code, rec.Body)
	}
}

func TestAPITokens(t *testing.T) {
	e := newAuthEnv(t, server.AuthOptions{})
	ctx := context.Background()
	tok := userToken(t, e.st, "cy@test", false, map[int64]store.Role{1: store.RoleViewer})

	// A token made through the API is shown once, works, and is stored hashed.
	rec := e.do(req{method: "POST", path: "/api/me/tokens", body: `{"name":"ci","expires_in_days":30}`, bearer: tok})
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	made := decode[struct {
		ID        int64
		Token     string
		Prefix    string
		ExpiresAt *time.Time `json:"expires_at"`
	}](t, rec)
	if !strings.HasPrefix(made.Token, "dpx_") || !strings.HasPrefix(made.Token, made.Prefix) || made.ExpiresAt == nil {
		t.Fatalf("made %+v", made)
	}
	list := e.do(req{method: "GET", path: "/api/me/tokens", bearer: made.Token})
	if list.Code != 200 || strings.Contains(list.Body.String(), made.Token) || !strings.Contains(list.Body.String(), `"ci"`) {
		t.Fatalf("list: %d %s", list.Code, list.Body)
	}
	var rows []store.APIToken
	e.st.DB().Find(&rows)
	for _, r := range rows {
		if r.Hash == made.Token || r.Hash == tok {
			t.Fatal("a raw token is stored")
		}
	}
	// Bearer writes need no CSRF header (browsers never attach them).
	if rec := e.do(req{method: "PUT", path: "/api/me/password", body: `{"current":"wrong","new":"long enough password"}`, bearer: made.Token}); rec.Code != 400 {
		t.Fatalf("bearer write: %d %s", rec.Code, rec.Body)
	}
	// Revoked: refused at once.
	if rec := e.do(req{method: "DELETE", path: "/api/me/tokens/" + itoa(made.ID), bearer: tok}); rec.Code != 204 {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(req{method: "GET", path: "/api/me", bearer: made.Token}); rec.Code != 401 {
		t.Fatalf("revoked token: %d", rec.Code)
	}
	// Expired: refused.
	e.st.DB().Model(&store.APIToken{}).Where("name = ?", "test").Update("expires_at", time.Now().Add(-time.Minute))
	if rec := e.do(req{method: "GET", path: "/api/me", bearer: tok}); rec.Code != 401 {
		t.Fatalf("expired token: %d", rec.Code)
	}
	// A disabled user's tokens stop working.
	fresh := userToken(t, e.st, "dee@test", false, nil)
	u, _ := e.st.Identity().UserByEmail(ctx, "dee@test")
	u.Disabled = true
	_ = e.st.Identity().UpdateUser(ctx, &u)
	if rec := e.do(req{method: "GET", path: "/api/me", bearer: fresh}); rec.Code != 401 {
		t.Fatalf("disabled user's token: %d", rec.Code)
	}
	// Malformed headers are plain 401s.
	for _, h := range []string{"dpx_nope", "Basic abc"} {
		hr := httptest.NewRequest("GET", "/api/me", nil)
		hr.Header.Set("Authorization", h)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, hr)
		if rec.Code != 401 {
			t.Fatalf("Authorization %q: %d", h, rec.Code)
		}
	}
}

func TestFirstRunSetup(t *testing.T) {
	e := newAuthEnv(t, server.AuthOptions{SetupToken: "setup-secret"})
	rec := e.do(req{method: "GET", path: "/api/me"})
	var un struct {
		Code          string
		SetupRequired bool `json:"setup_required"`
		AutoLogin     bool `json:"auto_login"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &un)
	if rec.Code != 401 || !un.SetupRequired || un.AutoLogin {
		t.Fatalf("before setup: %d %+v", rec.Code, un)
	}
	body := `{"token":"%s","email":"first@test","name":"First","password":"long enough password"}`
	if rec := e.do(req{method: "POST", path: "/api/setup", body: strings.Replace(body, "%s", "guess", 1)}); rec.Code != 403 {
		t.Fatalf("wrong setup token: %d %s", rec.Code, rec.Body)
	}
	rec = e.do(req{method: "POST", path: "/api/setup", body: strings.Replace(body, "%s", "setup-secret", 1)})
	if rec.Code != 200 {
		t.Fatalf("setup: %d %s", rec.Code, rec.Body)
	}
	me := decode[meBody](t, rec)
	if !me.User.OrgAdmin || len(me.Teams) != 1 || me.Teams[0].Role != "admin" {
		t.Fatalf("first admin: %+v", me)
	}
	sessionCookie(t, rec)
	// Setup is closed once a user exists, even with the right token.
	if rec := e.do(req{method: "POST", path: "/api/setup", body: strings.Replace(strings.Replace(body, "%s", "setup-secret", 1), "first@", "second@", 1)}); rec.Code != 403 {
		t.Fatalf("second setup: %d %s", rec.Code, rec.Body)
	}
	if n, _ := e.st.Identity().CountUsers(context.Background()); n != 1 {
		t.Fatalf("%d users", n)
	}
}

func TestAutoLoginOnlyOnLoopback(t *testing.T) {
	closed := newAuthEnv(t, server.AuthOptions{})
	if rec := closed.do(req{method: "POST", path: "/api/auth/auto", body: `{}`, remote: "127.0.0.1:5000"}); rec.Code != 404 {
		t.Fatalf("auto sign-in without the demo: %d", rec.Code)
	}
	e := newAuthEnv(t, server.AuthOptions{})
	userToken(t, e.st, "demo@test", true, nil)
	u, _ := e.st.Identity().UserByEmail(context.Background(), "demo@test")
	e = &authEnv{t: t, st: e.st, h: server.New(server.Options{Store: e.st, Engine: &fakeEngine{}, Secrets: mustBox(t),
		Logger: slog.New(slog.DiscardHandler), Auth: server.AuthOptions{AutoLoginUser: u.ID}})}
	for _, remote := range []string{"192.0.2.7:5000", "[2001:db8::1]:5000"} {
		if rec := e.do(req{method: "POST", path: "/api/auth/auto", body: `{}`, remote: remote}); rec.Code != 404 {
			t.Fatalf("auto sign-in from %s: %d", remote, rec.Code)
		}
	}
	// DNS rebinding: a page of evil.example resolved to 127.0.0.1 reaches the
	// demo from the visitor's own browser, with its own name in Host.
	rebound := httptest.NewRequest("POST", "http://evil.example:8080/api/auth/auto", strings.NewReader(`{}`))
	rebound.RemoteAddr = "127.0.0.1:5000"
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, rebound)
	if rec.Code != 404 {
		t.Fatalf("auto sign-in with Host evil.example: %d", rec.Code)
	}
	un := e.do(req{method: "GET", path: "http://127.0.0.1:8080/api/me", remote: "127.0.0.1:5000"})
	if !strings.Contains(un.Body.String(), `"auto_login":true`) {
		t.Fatalf("401 on loopback does not offer auto sign-in: %s", un.Body)
	}
	for _, remote := range []string{"127.0.0.1:5000", "[::1]:5000"} {
		rec := e.do(req{method: "POST", path: "http://localhost:8080/api/auth/auto", body: `{}`, remote: remote})
		if rec.Code != 200 || decode[meBody](t, rec).User.Email != "demo@test" {
			t.Fatalf("auto sign-in from %s: %d %s", remote, rec.Code, rec.Body)
		}
		sessionCookie(t, rec)
	}
}

func mustBox(t *testing.T) *secret.Box {
	b, err := secret.LoadOrCreate(t.TempDir() + "/key")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Team admins get a directory (id, email, name) to add members from; the
// flags of other people stay with org admins.
func TestUserDirectory(t *testing.T) {
	e := newAuthEnv(t, server.AuthOptions{})
	admin := userToken(t, e.st, "ta@test", false, map[int64]store.Role{1: store.RoleAdmin})
	editor := userToken(t, e.st, "ed@test", false, map[int64]store.Role{1: store.RoleEditor})
	org := userToken(t, e.st, "org@test", true, nil)
	rec := e.do(req{method: "GET", path: "/api/users", bearer: admin})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"email":"org@test"`) || strings.Contains(rec.Body.String(), "org_admin") {
		t.Fatalf("team admin's directory: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(req{method: "GET", path: "/api/users", bearer: org}); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"org_admin":true`) {
		t.Fatalf("org admin's list: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(req{method: "GET", path: "/api/users", bearer: editor}); rec.Code != 403 {
		t.Fatalf("editor: %d", rec.Code)
	}
}

// GET /api/teams lists one's teams; ?all=1 adds, with no role, the teams
// owning a template one can see (shared with one's team), never another
// team's name otherwise (issue 24); an org admin's names every team, a team
// admin's only when the org admin turned the team directory on.
func TestTeamDirectory(t *testing.T) {
	e := newAuthEnv(t, server.AuthOptions{})
	ctx := context.Background()
	beta, gamma := store.Team{Name: "beta"}, store.Team{Name: "gamma-secret-project"}
	_ = e.st.Identity().CreateTeam(ctx, &beta)
	_ = e.st.Identity().CreateTeam(ctx, &gamma)
	tpl := store.TeamTemplate{TeamID: beta.ID, Name: "esc"}
	if _, err := e.st.Templates().CreateTemplate(ctx, &tpl, "{}", "ann", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Templates().SetTemplateSharing(ctx, tpl.ID, store.VisibilityShared, []int64{1}); err != nil {
		t.Fatal(err)
	}
	gt := store.TeamTemplate{TeamID: gamma.ID, Name: "hidden"}
	if _, err := e.st.Templates().CreateTemplate(ctx, &gt, "{}", "gus", ""); err != nil {
		t.Fatal(err)
	}
	type teamOut struct {
		ID   int64
		Name string
		Role string
	}
	tok := userToken(t, e.st, "v@test", false, map[int64]store.Role{1: store.RoleViewer})
	otherAdmin := userToken(t, e.st, "ta@test", false, map[int64]store.Role{beta.ID: store.RoleAdmin})
	org := userToken(t, e.st, "org@test", true, nil)
	mine := decode[[]teamOut](t, e.do(req{method: "GET", path: "/api/teams", bearer: tok}))
	rec := e.do(req{method: "GET", path: "/api/teams?all=1", bearer: tok})
	all := decode[[]teamOut](t, rec)
	if len(mine) != 1 || mine[0].Role != "viewer" || len(all) != 2 || all[1].Name != "beta" || all[1].Role != "" ||
		strings.Contains(rec.Body.String(), "gamma") {
		t.Fatalf("mine %+v, all %+v", mine, all)
	}
	// A team admin (of another team) gets no other team's name by default
	// (the team directory is off): beta, and default, which owns nothing
	// beta can see, stays unnamed; gamma too.
	rec = e.do(req{method: "GET", path: "/api/teams?all=1", bearer: otherAdmin})
	if got := decode[[]teamOut](t, rec); len(got) != 1 || got[0].Name != "beta" || strings.Contains(rec.Body.String(), "gamma") {
		t.Fatalf("beta's admin, directory off: %s", rec.Body)
	}
	// They still share a template with a team they cannot name, by its id,
	// and the answer names no team.
	rec = e.do(req{method: "PUT", path: "/api/team-templates/" + itoa(tpl.ID) + "/sharing", bearer: otherAdmin,
		body: `{"visibility":"shared","teams":[1,` + itoa(gamma.ID) + `]}`})
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "gamma") || strings.Contains(rec.Body.String(), `"default"`) {
		t.Fatalf("share by id: %d %s", rec.Code, rec.Body)
	}
	if got := decode[[]teamOut](t, e.do(req{method: "GET", path: "/api/teams?all=1", bearer: org})); len(got) != 3 {
		t.Fatalf("org admin: %+v", got)
	}
	// Only an org admin turns the directory on (audited); then a team
	// admin names every team, the role empty where not a member, and an
	// editor or viewer still only what they could before.
	if rec := e.do(req{method: "PUT", path: "/api/org-settings", body: `{"team_directory":true}`, bearer: otherAdmin}); rec.Code != 403 {
		t.Fatalf("a team admin sets the directory: %d", rec.Code)
	}
	if rec := e.do(req{method: "PUT", path: "/api/org-settings", body: `{"team_directory":true}`, bearer: org}); rec.Code != 200 ||
		!strings.Contains(rec.Body.String(), `"team_directory":true`) {
		t.Fatalf("org admin sets the directory: %d %s", rec.Code, rec.Body)
	}
	rec = e.do(req{method: "GET", path: "/api/teams?all=1", bearer: otherAdmin})
	if got := decode[[]teamOut](t, rec); len(got) != 3 || got[0].Role != "" || !strings.Contains(rec.Body.String(), "gamma") {
		t.Fatalf("beta's admin, directory on: %s", rec.Body)
	}
	if rec := e.do(req{method: "GET", path: "/api/teams?all=1", bearer: tok}); strings.Contains(rec.Body.String(), "gamma") {
		t.Fatalf("a viewer with the directory on: %s", rec.Body)
	}
	entries, err := e.st.ListAuditFor(ctx, store.AuditFilter{Action: "org_settings.set", Limit: 10})
	if err != nil || len(entries) != 1 || !strings.Contains(entries[0].Detail, "team_directory true") {
		t.Fatalf("audit: %+v %v", entries, err)
	}
}

// Sign-in and sign-out are audited (identity.session.start/end) with the
// session's row in one transaction: an org admin reads who signed in and
// how, and when the audit log refuses the entry no session is opened and
// no cookie set.
func TestSessionsAudited(t *testing.T) {
	e := newAuthEnv(t, server.AuthOptions{})
	ctx := context.Background()
	userToken(t, e.st, "ann@test", false, map[int64]store.Role{1: store.RoleEditor})
	rec := e.do(req{method: "POST", path: "/api/auth/login", body: `{"email":"ann@test","password":"password-ann@test"}`})
	if rec.Code != 200 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	me, ck := decode[meBody](t, rec), sessionCookie(t, rec)
	if rec := e.do(req{method: "POST", path: "/api/auth/logout", body: `{}`, cookie: ck.Value, csrf: me.CSRF}); rec.Code != 204 {
		t.Fatalf("logout: %d", rec.Code)
	}
	entries, err := e.st.ListAudit(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range entries {
		if strings.HasPrefix(a.Action, "identity.session.") {
			got[a.Action] = a.Actor + " | " + a.Detail
		}
	}
	if got["identity.session.start"] != "ann@test | ann@test: signed in (password)" || got["identity.session.end"] != "ann@test | ann@test: signed out" {
		t.Fatalf("session entries: %v", got)
	}

	testdb.RefuseAudits(t, e.st, "identity.session.start")
	var before int64
	e.st.DB().Model(&store.Session{}).Count(&before)
	rec = e.do(req{method: "POST", path: "/api/auth/login", body: `{"email":"ann@test","password":"password-ann@test"}`})
	if rec.Code != 500 || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("login with its audit refused: %d %s, cookies %v", rec.Code, rec.Body, rec.Result().Cookies())
	}
	var after int64
	e.st.DB().Model(&store.Session{}).Count(&after)
	if after != before {
		t.Fatalf("sessions %d → %d after a sign-in whose audit failed", before, after)
	}
}
