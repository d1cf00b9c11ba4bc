package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/credential"
	"github.com/duplexsync/duplex/internal/service"
)

// AuthOptions configure sign-in.
type AuthOptions struct {
	// SetupToken opens first-run setup (POST /api/setup) while no user
	// exists; empty keeps it closed.
	SetupToken string
	// AutoLoginUser, when set, lets a client on loopback sign in as this
	// user without a password (`duplex demo` only).
	AutoLoginUser int64
	// SecureCookies marks the session cookie Secure even on plain HTTP (set
	// it behind a TLS-terminating proxy); TLS requests always get it.
	SecureCookies bool
	// SessionTTL is how long a session lasts; default 12 h.
	SessionTTL time.Duration
	// Throttle bounds failed sign-ins: per client address 5 per 15
	// minutes, then refused; per account delayed, never locked
	// (throttle.go).
	Throttle ThrottleOptions
	// Password is the argon2id cost for new hashes; default credential.Default.
	Password credential.Params
}

func (o AuthOptions) withDefaults() AuthOptions {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Throttle.Max <= 0 {
		o.Throttle.Max = 5
	}
	if o.Throttle.Window <= 0 {
		o.Throttle.Window = 15 * time.Minute
	}
	if o.Throttle.BaseDelay <= 0 {
		o.Throttle.BaseDelay = time.Second
	}
	if o.Throttle.MaxDelay <= 0 {
		o.Throttle.MaxDelay = time.Minute
	}
	if o.Password.Memory == 0 {
		o.Password = credential.Default
	}
	return o
}

// ThrottleOptions: at most Max failures per client address within Window;
// after Max failures on one account, its attempts are spaced by BaseDelay
// doubling per further failure up to MaxDelay (accountDelay).
type ThrottleOptions struct {
	Max       int
	Window    time.Duration
	BaseDelay time.Duration // default 1 s
	MaxDelay  time.Duration // default 1 min
	// Now is the clock of both counters; nil: time.Now. Tests step it
	// instead of sleeping through the delays.
	Now func() time.Time
}

func (o ThrottleOptions) clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// errRateLimited carries when the client may try again.
type errRateLimited struct{ retry time.Duration }

func (e *errRateLimited) Error() string {
	return fmt.Sprintf("too many failed sign-ins: try again in %d s", int(e.retry.Seconds()+0.999))
}

var errInvalidCredentials = errors.New("wrong email or password")

// throttle counts failed sign-ins per key in memory. One process's view is
// enough to stop online guessing; several processes each allow Max (noted in
// docs/security). The map is bounded: old keys are swept when it grows.
type throttle struct {
	mu    sync.Mutex
	o     ThrottleOptions
	fails map[string][]time.Time
	now   func() time.Time
}

const throttleKeys = 10000

func newThrottle(o ThrottleOptions) *throttle {
	return &throttle{o: o, fails: map[string][]time.Time{}, now: o.clock()}
}

// check reports how long any of keys must still wait (0: may try).
func (t *throttle) check(keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range keys {
		fs := t.live(k, now)
		if len(fs) >= t.o.Max {
			if w := fs[0].Add(t.o.Window).Sub(now); w > wait {
				wait = w
			}
		}
	}
	return wait
}

func (t *throttle) fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.fails) > throttleKeys {
		for k := range t.fails {
			if len(t.live(k, now)) == 0 {
				delete(t.fails, k)
			}
		}
	}
	for _, k := range keys {
		fs := append(t.live(k, now), now)
		if len(fs) > t.o.Max {
			fs = fs[len(fs)-t.o.Max:]
		}
		t.fails[k] = fs
	}
}

func (t *throttle) reset(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.fails, k)
	}
}

// live drops failures older than the window.
func (t *throttle) live(k string, now time.Time) []time.Time {
	fs := t.fails[k]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= t.o.Window {
		i++
	}
	if i > 0 {
		fs = fs[i:]
		if len(fs) == 0 {
			delete(t.fails, k)
		} else {
			t.fails[k] = fs
		}
	}
	return fs
}

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func clientIP(c *gin.Context) string {
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if err != nil {
		return c.Request.RemoteAddr
	}
	return host
}

type teamRoleOut struct {
	ID   int64      `json:"id"`
	Name string     `json:"name"`
	Role store.Role `json:"role"` // "" in the ?all=1 directory for teams one is not in
}

type meOut struct {
	User      store.User    `json:"user"`
	Teams     []teamRoleOut `json:"teams"`
	CSRFToken string        `json:"csrf_token,omitempty"`
	Via       string        `json:"via"`
}

func (s *srv) meBody(c *gin.Context, p *principal) (meOut, error) {
	teams, err := s.st.Identity().ListTeams(c.Request.Context())
	if err != nil {
		return meOut{}, err
	}
	out := meOut{User: p.User, Teams: []teamRoleOut{}, Via: p.Via}
	for _, t := range teams {
		if r := p.Role(t.ID); r != "" {
			out.Teams = append(out.Teams, teamRoleOut{ID: t.ID, Name: t.Name, Role: r})
		}
	}
	if p.Session != nil {
		out.CSRFToken = p.Session.CSRF
	}
	return out, nil
}

// authRoutes declares sign-in's, the current user's and their tokens'
// routes, each once: method, path, access rule, handler, OpenAPI operation.
func (s *srv) authRoutes(api gin.IRoutes) {
	s.handle(api, "POST", "/auth/login", public(), s.login,
		op{summary: "Sign in with email and password (sets the session cookie)", tag: "auth", in: loginIn{}, out: meOut{}})
	s.handle(api, "POST", "/auth/auto", public(), s.autoLogin,
		op{summary: "Demo only: sign in automatically from loopback", tag: "auth", out: meOut{}})
	s.handle(api, "POST", "/setup", public(), s.setup,
		op{summary: "Create the first admin with the one-time setup token", tag: "auth", in: setupIn{}, out: meOut{}})
	s.handle(api, "POST", "/auth/logout", signedIn(), s.logout,
		op{summary: "Sign out (ends the session)", tag: "auth"})
	s.handle(api, "GET", "/me", signedIn(), s.me,
		op{summary: "The signed-in user, their teams and the CSRF token", tag: "auth", out: meOut{}})
	s.handle(api, "PUT", "/me/password", signedIn(), s.changePassword,
		op{summary: "Change one's password (other sessions end)", tag: "auth", in: changePasswordIn{}, out: meOut{}})
	s.handle(api, "GET", "/me/tokens", signedIn(), s.listTokens,
		op{summary: "One's API tokens (never their values)", tag: "auth", out: []store.APIToken{}})
	s.handle(api, "POST", "/me/tokens", signedIn(), s.createToken,
		op{summary: "Create an API token; the value is in this answer only", tag: "auth", in: createTokenIn{}, out: tokenOut{}, status: 201})
	s.handle(api, "DELETE", "/me/tokens/:id", signedIn(), s.revokeToken,
		op{summary: "Revoke one of one's API tokens", tag: "auth"})
}

func (s *srv) me(c *gin.Context) error {
	out, err := s.meBody(c, principalOf(c))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// startSession creates a session for u (audited, saying how it was
// started), sets the cookie and answers with the me body (which carries
// the CSRF token the app sends back).
func (s *srv) startSession(c *gin.Context, u store.User, how string) error {
	ctx := c.Request.Context()
	se, tok, err := s.svc.StartSession(ctx, u, s.auth.SessionTTL, how)
	if err != nil {
		return err
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true,
		Secure: s.auth.SecureCookies || c.Request.TLS != nil, SameSite: http.SameSiteLaxMode,
		MaxAge: int(s.auth.SessionTTL.Seconds()),
	})
	p, err := s.loadPrincipal(ctx, u.ID)
	if err != nil {
		return err
	}
	p.Via, p.Session = "session", &se
	out, err := s.meBody(c, p)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// loginIn is the body of login.
type loginIn struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *srv) login(c *gin.Context) error {
	var in loginIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	email := normEmail(in.Email)
	// The address is refused after Max failures; the account only waits
	// its turn (throttle.go), so guessing from many addresses is slowed
	// and its owner is not locked out.
	ip := "ip:" + clientIP(c)
	if wait := max(s.logins.check(ip), s.accounts.wait(email)); wait > 0 {
		return &errRateLimited{retry: wait}
	}
	failed := func() error {
		s.logins.fail(ip)
		s.accounts.fail(email)
		return errInvalidCredentials
	}
	if email == "" || in.Password == "" || len(in.Password) > credential.MaxPassword {
		return failed()
	}
	u, err := s.st.Identity().UserByEmail(c.Request.Context(), email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		credential.DummyVerify(in.Password) // same time as a wrong password
		return failed()
	case err != nil:
		return err
	}
	if err := credential.VerifyPassword(in.Password, u.PasswordHash); err != nil || u.Disabled {
		return failed()
	}
	s.accounts.reset(email)
	// Sign-ins are rare; sweeping expired sessions here needs no timer.
	if err := s.svc.SweepSessions(c.Request.Context()); err != nil {
		s.log.Warn("sweep expired sessions", "err", err)
	}
	return s.startSession(c, u, "password")
}

func (s *srv) logout(c *gin.Context) error {
	p := principalOf(c)
	if p.Session != nil {
		if err := s.svc.EndSession(c.Request.Context(), p.User, p.Session.ID); err != nil {
			return err
		}
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	c.Status(http.StatusNoContent)
	return nil
}

func (s *srv) autoLogin(c *gin.Context) error {
	if !s.autoLoginAllowed(c) {
		return fmt.Errorf("automatic sign-in is only offered by `duplex demo` on loopback: %w", store.ErrNotFound)
	}
	u, err := s.st.Identity().GetUser(c.Request.Context(), s.auth.AutoLoginUser)
	if err != nil {
		return err
	}
	return s.startSession(c, u, "auto")
}

// setupIn is the body of setup.
type setupIn struct {
	Token    string `json:"token"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

// setup creates the first user, an org admin and admin of the default team,
// with the one-time token printed at first start.
func (s *srv) setup(c *gin.Context) error {
	ctx := c.Request.Context()
	var in setupIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if s.auth.SetupToken == "" || !s.setupOpen(ctx) {
		return forbidden("setup is closed: an admin already exists")
	}
	if wait := s.logins.check("ip:" + clientIP(c)); wait > 0 {
		return &errRateLimited{retry: wait}
	}
	if !credential.Equal(in.Token, s.auth.SetupToken) {
		s.logins.fail("ip:" + clientIP(c))
		return forbidden("wrong setup token")
	}
	u, err := s.svc.Setup(ctx, service.NewUser{Email: in.Email, Name: in.Name, Password: in.Password})
	if err != nil {
		return err
	}
	return s.startSession(c, u, "setup")
}

// changePasswordIn is the body of changePassword.
type changePasswordIn struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

func (s *srv) changePassword(c *gin.Context) error {
	ctx := c.Request.Context()
	p := principalOf(c)
	var in changePasswordIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	keys := []string{"ip:" + clientIP(c), "email:" + p.User.Email}
	if wait := s.logins.check(keys...); wait > 0 {
		return &errRateLimited{retry: wait}
	}
	if err := credential.VerifyPassword(in.Current, p.User.PasswordHash); err != nil {
		s.logins.fail(keys...)
		return badRequest("the current password is wrong")
	}
	// Every other browser signed in as this user is signed out.
	u, err := s.svc.ChangePassword(ctx, p.Actor(), p.User, in.New)
	if err != nil {
		return err
	}
	if p.Session != nil {
		return s.startSession(c, u, "password change")
	}
	c.Status(http.StatusNoContent)
	return nil
}

type tokenOut struct {
	store.APIToken
	Token string `json:"token,omitempty"` // only in the answer that creates it
}

func (s *srv) listTokens(c *gin.Context) error {
	ts, err := s.st.Identity().ListAPITokens(c.Request.Context(), principalOf(c).User.ID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, ts)
	return nil
}

// createTokenIn is the body of createToken.
type createTokenIn struct {
	Name          string `json:"name"`
	ExpiresInDays int    `json:"expires_in_days"`
}

func (s *srv) createToken(c *gin.Context) error {
	p := principalOf(c)
	var in createTokenIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	t, tok, err := s.svc.CreateToken(c.Request.Context(), p.Actor(), p.User, in.Name, in.ExpiresInDays)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, tokenOut{APIToken: t, Token: tok})
	return nil
}

func (s *srv) revokeToken(c *gin.Context) error {
	p := principalOf(c)
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if err := s.svc.RevokeToken(c.Request.Context(), p.Actor(), p.User, id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(d.Seconds() + 0.999))
}
