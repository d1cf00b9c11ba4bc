package server

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
)

// listTeams: org admins see every team (as admin), others their own. With
// ?all=1 the directory the app names teams from: for an org admin every
// team's id and name; for everyone else their own teams and the teams
// owning a template they can see, with the role empty where they are not
// members (issue 24: no other team's name). A team admin gets every team
// only when the org admin turned on the team directory (org settings), to
// share templates by name; without it they share by team id.
func (s *srv) listTeams(c *gin.Context) error {
	p := principalOf(c)
	ctx := c.Request.Context()
	teams, err := s.st.Identity().ListTeams(ctx)
	if err != nil {
		return err
	}
	named := map[int64]bool{}
	if c.Query("all") == "1" {
		every := p.User.OrgAdmin
		if !every && adminOfAny(p) {
			o, err := s.st.OrgSettings(ctx)
			if err != nil {
				return err
			}
			every = o.TeamDirectory
		}
		if every {
			for _, t := range teams {
				named[t.ID] = true
			}
		} else {
			visible, err := s.st.Templates().VisibleTemplates(ctx, memberTeams(p), false)
			if err != nil {
				return err
			}
			for _, t := range visible {
				named[t.TeamID] = true
			}
		}
	}
	out := []teamRoleOut{}
	for _, t := range teams {
		if r := p.Role(t.ID); r != "" || named[t.ID] {
			out = append(out, teamRoleOut{ID: t.ID, Name: t.Name, Role: r})
		}
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// teamRoutes declares the teams' and users' routes, each once: method,
// path, access rule, handler, OpenAPI operation.
func (s *srv) teamRoutes(api gin.IRoutes) {
	s.handle(api, "GET", "/teams", signedIn(), s.listTeams,
		op{summary: "One's teams and roles (?all=1: every team by name)", tag: "teams", out: []teamRoleOut{}, query: []string{"all"}})
	s.handle(api, "POST", "/teams", orgAdmin(), s.createTeam,
		op{summary: "Create a team (org admin)", tag: "teams", in: createTeamIn{}, out: store.Team{}, status: 201})
	s.handle(api, "GET", "/teams/:id/members", teamRole("team", "id", store.RoleAdmin), s.listMembers,
		op{summary: "A team's members (team admin)", tag: "teams", out: []memberOut{}})
	s.handle(api, "PUT", "/teams/:id/members/:user", teamRole("team", "id", store.RoleAdmin), s.setMember,
		op{summary: "Give a user a role in a team (team admin)", tag: "teams", in: setMemberIn{}, out: memberOut{}})
	s.handle(api, "DELETE", "/teams/:id/members/:user", teamRole("team", "id", store.RoleAdmin), s.removeMember,
		op{summary: "Remove a user from a team (team admin; not the last admin)", tag: "teams"})
	s.handle(api, "GET", "/users", signedIn(), s.listUsers, // org admins; team admins get a directory
		op{summary: "Users (org admin); a directory for team admins", tag: "teams", out: []store.User{}})
	s.handle(api, "POST", "/users", orgAdmin(), s.createUser,
		op{summary: "Create a user (org admin)", tag: "teams", in: createUserIn{}, out: store.User{}, status: 201})
	s.handle(api, "PUT", "/users/:id", orgAdmin(), s.updateUser,
		op{summary: "Change a user's name, org admin flag or disabled flag, or clear their sign-in delay (org admin)", tag: "teams", in: updateUserIn{}, out: store.User{}})
}

// createTeamIn is the body of createTeam.
type createTeamIn struct {
	Name string `json:"name"`
}

func (s *srv) createTeam(c *gin.Context) error {
	var in createTeamIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	t, err := s.svc.CreateTeam(c.Request.Context(), principalOf(c).Actor(), in.Name)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, t)
	return nil
}

type memberOut struct {
	UserID int64      `json:"user_id"`
	Email  string     `json:"email"`
	Name   string     `json:"name"`
	Role   store.Role `json:"role"`
}

func (s *srv) listMembers(c *gin.Context) error {
	ctx := c.Request.Context()
	team, _ := idParam(c, "id") // checked by the rule
	ms, err := s.st.Identity().TeamMembers(ctx, team)
	if err != nil {
		return err
	}
	out := make([]memberOut, 0, len(ms))
	for _, m := range ms {
		u, err := s.st.Identity().GetUser(ctx, m.UserID)
		if err != nil {
			return err
		}
		out = append(out, memberOut{UserID: u.ID, Email: u.Email, Name: u.Name, Role: m.Role})
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func userParam(c *gin.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("user"), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("user must be a positive integer, got %q", c.Param("user"))
	}
	return id, nil
}

// setMemberIn is the body of setMember.
type setMemberIn struct {
	Role store.Role `json:"role"`
}

func (s *srv) setMember(c *gin.Context) error {
	ctx := c.Request.Context()
	team, _ := idParam(c, "id")
	user, err := userParam(c)
	if err != nil {
		return err
	}
	var in setMemberIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	u, err := s.svc.SetMember(ctx, principalOf(c).Actor(), team, user, in.Role)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, memberOut{UserID: u.ID, Email: u.Email, Name: u.Name, Role: in.Role})
	return nil
}

func (s *srv) removeMember(c *gin.Context) error {
	team, _ := idParam(c, "id")
	user, err := userParam(c)
	if err != nil {
		return err
	}
	if err := s.svc.RemoveMember(c.Request.Context(), principalOf(c).Actor(), team, user); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// directoryEntry is what a team admin sees of people: enough to add them
// to the team, nothing about their other teams or flags.
type directoryEntry struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

func (s *srv) listUsers(c *gin.Context) error {
	p := principalOf(c)
	admins := p.Teams(store.RoleAdmin)
	if admins != nil && len(admins) == 0 {
		return forbidden("the user list needs the admin role in a team")
	}
	us, err := s.st.Identity().ListUsers(c.Request.Context())
	if err != nil {
		return err
	}
	if p.User.OrgAdmin {
		c.JSON(http.StatusOK, us)
		return nil
	}
	out := make([]directoryEntry, 0, len(us))
	for _, u := range us {
		if !u.Disabled {
			out = append(out, directoryEntry{ID: u.ID, Email: u.Email, Name: u.Name})
		}
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// createUserIn is the body of createUser.
type createUserIn struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
	OrgAdmin bool   `json:"org_admin"`
}

func (s *srv) createUser(c *gin.Context) error {
	var in createUserIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	u, err := s.svc.CreateUser(c.Request.Context(), principalOf(c).Actor(),
		service.NewUser{Email: in.Email, Name: in.Name, Password: in.Password, OrgAdmin: in.OrgAdmin})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, u)
	return nil
}

// updateUserIn is the body of updateUser.
type updateUserIn struct {
	Name     *string `json:"name"`
	OrgAdmin *bool   `json:"org_admin"`
	Disabled *bool   `json:"disabled"`
	// UnlockSignIn clears the account's sign-in delay (throttle.go), for
	// an owner kept waiting by someone guessing at the account.
	UnlockSignIn bool `json:"unlock_sign_in,omitempty"`
}

// updateUser changes a user's name, org admin flag or disabled flag.
// Disabling signs the user out everywhere; tokens stop working at once
// because every request loads the user.
func (s *srv) updateUser(c *gin.Context) error {
	ctx := c.Request.Context()
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in updateUserIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	edit := service.UserEdit{Name: in.Name, OrgAdmin: in.OrgAdmin, Disabled: in.Disabled}
	if in.UnlockSignIn {
		edit.Also = append(edit.Also, "sign-in unlocked")
	}
	p := principalOf(c)
	u, err := s.svc.UpdateUser(ctx, p.Actor(), p.User.ID, id, edit)
	if err != nil {
		return err
	}
	if in.UnlockSignIn {
		s.accounts.reset(normEmail(u.Email))
	}
	c.JSON(http.StatusOK, u)
	return nil
}

// adminOfAny reports whether p is an admin of at least one team.
func adminOfAny(p *principal) bool {
	for _, id := range memberTeams(p) {
		if p.Role(id) == store.RoleAdmin {
			return true
		}
	}
	return false
}
