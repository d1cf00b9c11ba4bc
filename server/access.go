package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/credential"
	"github.com/duplexsync/duplex/internal/service"
)

// Authorisation errors, mapped in errors.go.
var (
	errUnauthenticated = errors.New("sign in first: no valid session cookie or API token")
	errForbidden       = errors.New("forbidden")
	errCSRF            = errors.New("missing or wrong X-CSRF-Token header")
)

func forbidden(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errForbidden, fmt.Sprintf(format, args...))
}

// principal is who makes a request: a user, with their roles by team.
type principal struct {
	User    store.User
	Roles   map[int64]store.Role
	Via     string // "session" or "token"
	Session *store.Session
	Token   *store.APIToken
}

// Role is p's role in a team ("" when not a member). Org admins are admins
// of every team.
func (p *principal) Role(teamID int64) store.Role {
	if p.User.OrgAdmin {
		return store.RoleAdmin
	}
	return p.Roles[teamID]
}

// Teams lists the teams where p has at least min; nil means every team (an
// org admin), which store filters read as "no filter".
func (p *principal) Teams(min store.Role) []int64 {
	if p.User.OrgAdmin {
		return nil
	}
	out := []int64{}
	for t, r := range p.Roles {
		if r.Rank() >= min.Rank() {
			out = append(out, t)
		}
	}
	return out
}

// Actor names p in audit entries: the email, and the token's name when the
// request came with one, so a leaked token's actions can be told apart.
func (p *principal) Actor() string {
	if p.Token != nil {
		return p.User.Email + " (token " + p.Token.Name + ")"
	}
	return p.User.Email
}

// caller is p as the service sees it: the audit actor and the roles its
// ownership and visibility rules read.
func (p *principal) caller() service.Caller {
	return service.Caller{Actor: p.Actor(), OrgAdmin: p.User.OrgAdmin, Roles: p.Roles}
}

// require fails unless p has at least min in the team.
func (p *principal) require(teamID int64, min store.Role) error {
	r := p.Role(teamID)
	if r == "" {
		return forbidden("you are not a member of team %d", teamID)
	}
	if r.Rank() < min.Rank() {
		return forbidden("this needs the %s role in team %d; you are %s", min, teamID, r)
	}
	return nil
}

const principalKey = "duplex.principal"

// principalOf is the request's principal; only routes with a rule other
// than public reach handlers, so it is set there.
func principalOf(c *gin.Context) *principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(*principal)
	return pr
}

// rule is one route's access rule. Every route is registered through route
// with a rule; the role-matrix test calls every route as every role.
type rule struct {
	kind  ruleKind
	res   string // for teamRole: "system", "connection", "twin", "event" or "team"
	param string // the path parameter holding its id
	min   store.Role
}

type ruleKind int

const (
	rulePublic   ruleKind = iota + 1 // no sign-in (health, webhooks with signatures, sign-in itself)
	ruleSignedIn                     // any user; the handler filters by team
	ruleOrgAdmin                     // org admins only
	ruleTeamRole                     // at least min in the team owning the resource in param
)

func public() rule   { return rule{kind: rulePublic} }
func signedIn() rule { return rule{kind: ruleSignedIn} }
func orgAdmin() rule { return rule{kind: ruleOrgAdmin} }
func teamRole(res, param string, min store.Role) rule {
	return rule{kind: ruleTeamRole, res: res, param: param, min: min}
}

// handle declares a route once: its method and path, its access rule, its
// handler and, beside them, its OpenAPI operation (which also feeds the
// app's generated types). It is the only way routes are registered, so a
// route cannot exist without its rule and its description.
func (s *srv) handle(g gin.IRoutes, method, path string, r rule, fn handler, o op) {
	full := path
	if rg, ok := g.(*gin.RouterGroup); ok {
		full = strings.TrimSuffix(rg.BasePath(), "/") + path
	}
	switch key := method + " " + openAPIPath(full); {
	case r.kind == 0:
		panic("server: route " + key + " has no access rule")
	case o.summary == "" || o.tag == "":
		panic("server: route " + key + " has no OpenAPI summary or tag")
	case s.ops[key].summary != "":
		panic("server: route " + key + " is declared twice")
	default:
		s.ops[key] = o
	}
	s.rules[method+" "+full] = r
	g.Handle(method, path, s.guard(r), s.h(fn))
}

// guard authenticates the request (API token or session cookie), checks the
// CSRF header for cookie-authenticated writes, and applies the rule.
func (s *srv) guard(r rule) gin.HandlerFunc {
	return func(c *gin.Context) {
		if r.kind == rulePublic {
			c.Next()
			return
		}
		p, err := s.authenticate(c)
		if err == nil {
			err = s.authorize(c, p, r)
		}
		if err != nil {
			if errors.Is(err, errUnauthenticated) {
				s.unauthenticated(c)
				return
			}
			s.fail(c, err)
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

func (s *srv) authorize(c *gin.Context, p *principal, r rule) error {
	switch r.kind {
	case ruleSignedIn:
		return nil
	case ruleOrgAdmin:
		if !p.User.OrgAdmin {
			return forbidden("this needs an org admin")
		}
		return nil
	case ruleTeamRole:
		id, err := idParam(c, r.param)
		if err != nil {
			return err
		}
		team, err := s.loadRow(c, r.res, id)
		if err != nil {
			return err
		}
		return p.require(team, r.min)
	}
	return fmt.Errorf("server: unknown rule kind %d", r.kind)
}

// rowKey holds the row a teamRole rule loaded to check its team.
const rowKey = "duplex.row"

// loadRow reads the resource a teamRole rule names and keeps it for the
// handler (rowOf), so the handler does not read it again; it returns the
// team that owns it. Twins and events are only resolved to their team.
func (s *srv) loadRow(c *gin.Context, res string, id int64) (int64, error) {
	ctx := c.Request.Context()
	switch res {
	case "team":
		t, err := s.st.Identity().GetTeam(ctx, id)
		c.Set(rowKey, t)
		return t.ID, err
	case "system":
		sys, err := s.st.GetSystem(ctx, id)
		c.Set(rowKey, sys)
		return sys.TeamID, err
	case "connection":
		conn, err := s.st.GetConnection(ctx, id)
		c.Set(rowKey, conn)
		return conn.TeamID, err
	}
	return s.st.ResourceTeam(ctx, res, id)
}

// rowOf is the row of type T the route's access rule loaded; a route whose
// rule loads none (or another type) is a programming error, caught by the
// role matrix, which calls every route.
func rowOf[T any](c *gin.Context) T {
	v, ok := c.Get(rowKey)
	row, typed := v.(T)
	if !ok || !typed {
		var zero T
		panic(fmt.Sprintf("server: %s %s: its access rule loaded no %T", c.Request.Method, c.FullPath(), zero))
	}
	return row
}

const (
	sessionCookie = "duplex_session"
	csrfHeader    = "X-CSRF-Token"
	tokenPrefix   = service.TokenPrefix
)

// authenticate finds the principal from a bearer token or the session
// cookie. A bearer token wins; it needs no CSRF check because browsers
// never attach it on their own.
func (s *srv) authenticate(c *gin.Context) (*principal, error) {
	ctx := c.Request.Context()
	if h := c.GetHeader("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !strings.HasPrefix(tok, tokenPrefix) {
			return nil, errUnauthenticated
		}
		t, err := s.st.Identity().APITokenByHash(ctx, credential.HashToken(strings.TrimSpace(tok)))
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, errUnauthenticated
			}
			return nil, err
		}
		p, err := s.loadPrincipal(ctx, t.UserID)
		if err != nil {
			return nil, err
		}
		p.Via, p.Token = "token", &t
		return p, nil
	}
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck == "" {
		return nil, errUnauthenticated
	}
	se, err := s.st.Identity().GetSession(ctx, credential.HashToken(ck))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errUnauthenticated
		}
		return nil, err
	}
	if unsafeMethod(c.Request.Method) && !credential.Equal(c.GetHeader(csrfHeader), se.CSRF) {
		return nil, errCSRF
	}
	p, err := s.loadPrincipal(ctx, se.UserID)
	if err != nil {
		return nil, err
	}
	p.Via, p.Session = "session", &se
	return p, nil
}

func (s *srv) loadPrincipal(ctx context.Context, userID int64) (*principal, error) {
	u, err := s.st.Identity().GetUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, errUnauthenticated
	}
	roles, err := s.st.Identity().Memberships(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &principal{User: u, Roles: roles}, nil
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// unauthenticated answers 401 and tells the app whether first-run setup is
// open and whether the demo's loopback sign-in is offered.
func (s *srv) unauthenticated(c *gin.Context) {
	setup := s.auth.SetupToken != "" && s.setupOpen(c.Request.Context())
	c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{
		"code": CodeUnauthenticated, "message": errUnauthenticated.Error(),
		"setup_required": setup, "auto_login": s.autoLoginAllowed(c),
	})
}

func (s *srv) setupOpen(ctx context.Context) bool {
	n, err := s.st.Identity().CountUsers(ctx)
	return err == nil && n == 0
}

// autoLoginAllowed: the demo signs in without a password, but only for a
// client on the loopback interface, so a demo bound to a public address does
// not hand out admin sessions.
func (s *srv) autoLoginAllowed(c *gin.Context) bool {
	if s.auth.AutoLoginUser == 0 {
		return false
	}
	return isLoopback(c.Request.RemoteAddr) && loopbackHost(c.Request.Host)
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// loopbackHost: the Host header must name loopback too, or a web page could
// rebind its own domain name to 127.0.0.1 and sign its script in to the demo
// from the visitor's browser (DNS rebinding).
func loopbackHost(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	return strings.EqualFold(h, "localhost") || isLoopback(h)
}

// requireTeam checks the principal's role in a team named by a request body
// or query (creating a system or a connection).
func (s *srv) requireTeam(c *gin.Context, teamID int64, min store.Role) error {
	if _, err := s.st.Identity().GetTeam(c.Request.Context(), teamID); errors.Is(err, store.ErrNotFound) {
		return badRequest("team %d does not exist", teamID)
	} else if err != nil {
		return err
	}
	return principalOf(c).require(teamID, min)
}

// defaultTeam picks the team a create goes to when the body names none: the
// user's only team where they have at least min.
func defaultTeam(p *principal, min store.Role) (int64, error) {
	var teams []int64
	for t, r := range p.Roles {
		if r.Rank() >= min.Rank() {
			teams = append(teams, t)
		}
	}
	switch {
	case len(teams) == 1:
		return teams[0], nil
	case len(teams) == 0 && p.User.OrgAdmin:
		return store.DefaultTeamID, nil
	case len(teams) == 0:
		return 0, forbidden("this needs the %s role in a team", min)
	}
	return 0, badRequest("team_id is required: you are %s in %d teams", min, len(teams))
}

func teamQuery(c *gin.Context) (int64, error) { return idQuery(c, "team_id") }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
