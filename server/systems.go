package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors/peerlink"
	"github.com/duplexsync/duplex/engine/store"
)

// systemIn is what a client sends. Secrets are write-only. On update every
// field left out keeps its value, so rotating a token does not wipe the
// settings.
type systemIn struct {
	Name           string             `json:"name"`
	Kind           string             `json:"kind"`
	Settings       json.RawMessage    `json:"settings"`
	Secrets        *map[string]string `json:"secrets"`
	PollIntervalMS *int64             `json:"poll_interval_ms"`
	RatePerSecond  *float64           `json:"rate_per_second"`
	RateBurst      *int               `json:"rate_burst"`
	TeamID         int64              `json:"team_id"` // on create; default: the caller's only team
}

// systemOut never holds secret values, only their names.
type systemOut struct {
	store.System
	Settings   json.RawMessage `json:"settings"`
	SecretKeys []string        `json:"secret_keys"`
}

func (s *srv) present(sys store.System) (systemOut, error) {
	out := systemOut{System: sys, Settings: json.RawMessage(sys.Settings), SecretKeys: []string{}}
	if sys.Settings == "" { // an empty RawMessage would fail the whole answer
		out.Settings = json.RawMessage("{}")
	}
	secrets, err := s.box.OpenMap(sys.Secrets)
	if err != nil {
		return out, fmt.Errorf("system %d secrets: %w", sys.ID, err)
	}
	for k := range secrets {
		out.SecretKeys = append(out.SecretKeys, k)
	}
	sort.Strings(out.SecretKeys)
	return out, nil
}

func (in *systemIn) validate(create bool) error {
	in.Name = strings.TrimSpace(in.Name)
	if create && in.Name == "" {
		return badRequest("name is required")
	}
	if create && strings.TrimSpace(in.Kind) == "" {
		return badRequest("kind is required (for example \"sql\")")
	}
	if s := strings.TrimSpace(string(in.Settings)); s == "" || s == "null" {
		in.Settings = nil // omitted: {} on create, unchanged on update
		if create {
			in.Settings = json.RawMessage("{}")
		}
	} else if s[0] != '{' {
		return badRequest("settings must be a JSON object")
	}
	if in.PollIntervalMS != nil && (*in.PollIntervalMS < 100 || *in.PollIntervalMS > 86_400_000) {
		return badRequest("poll_interval_ms must be between 100 and 86400000")
	}
	if in.RatePerSecond != nil && *in.RatePerSecond < 0 || in.RateBurst != nil && *in.RateBurst < 0 {
		return badRequest("rate_per_second and rate_burst must not be negative (0 = unlimited)")
	}
	return nil
}

// apply copies the optional numbers onto sys.
func (in *systemIn) apply(sys *store.System) {
	if in.PollIntervalMS != nil {
		sys.PollIntervalMS = *in.PollIntervalMS
	}
	if in.RatePerSecond != nil {
		sys.RatePerSecond = *in.RatePerSecond
	}
	if in.RateBurst != nil {
		sys.RateBurst = *in.RateBurst
	}
}

func (s *srv) listSystems(c *gin.Context) error {
	systems, err := s.st.ListSystems(c.Request.Context())
	if err != nil {
		return err
	}
	who := principalOf(c)
	out := make([]systemOut, 0, len(systems))
	for _, sys := range systems {
		if who.Role(sys.TeamID) == "" {
			continue
		}
		p, err := s.present(sys)
		if err != nil {
			return err
		}
		out = append(out, p)
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *srv) createSystem(c *gin.Context) error {
	var in systemIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	// Systems hold credentials: creating one is a team admin's job.
	if in.TeamID == 0 {
		t, err := defaultTeam(principalOf(c), store.RoleAdmin)
		if err != nil {
			return err
		}
		in.TeamID = t
	}
	if err := s.requireTeam(c, in.TeamID, store.RoleAdmin); err != nil {
		return err
	}
	if err := in.validate(true); err != nil {
		return err
	}
	if in.Kind == peerlink.Kind {
		return badRequest("systems of kind %q stand for a peer deployment and are made by POST /api/peer-links", in.Kind)
	}
	sys := store.System{Name: in.Name, Kind: in.Kind, TeamID: in.TeamID, Settings: string(in.Settings), PollIntervalMS: 2000}
	in.apply(&sys)
	if in.Secrets != nil {
		sealed, err := s.box.SealMap(*in.Secrets)
		if err != nil {
			return err
		}
		sys.Secrets = sealed
	}
	// The kind and settings, then the store fence and the outbound
	// policy, before anything is saved.
	if err := s.checkConfig(sys.Kind, in.Settings, in.Secrets); err != nil {
		return err
	}
	if err := s.eng.CheckSystem(c.Request.Context(), sys); err != nil {
		return err
	}
	if err := s.st.CreateSystem(c.Request.Context(), &sys); err != nil {
		return err
	}
	s.auditAs(c, sys.TeamID, "system.create", nil, fmt.Sprintf("system %d %q (%s)", sys.ID, sys.Name, sys.Kind))
	return s.respondSystem(c, http.StatusCreated, sys)
}

func (s *srv) respondSystem(c *gin.Context, status int, sys store.System) error {
	out, err := s.present(sys)
	if err != nil {
		return err
	}
	c.JSON(status, out)
	return nil
}

func (s *srv) getSystem(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	sys, err := s.st.GetSystem(c.Request.Context(), id)
	if err != nil {
		return err
	}
	return s.respondSystem(c, http.StatusOK, sys)
}

func (s *srv) updateSystem(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in systemIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if err := in.validate(false); err != nil {
		return err
	}
	ctx := c.Request.Context()
	sys, err := s.st.GetSystem(ctx, id)
	if err != nil {
		return err
	}
	if in.Kind != "" && in.Kind != sys.Kind {
		return badRequest("kind cannot change (%s); create a new system", sys.Kind)
	}
	if in.TeamID != 0 && in.TeamID != sys.TeamID {
		return badRequest("a system cannot move to another team; create it there")
	}
	if in.Name != "" {
		sys.Name = in.Name
	}
	if in.Settings != nil {
		sys.Settings = string(in.Settings)
	}
	in.apply(&sys)
	detail := fmt.Sprintf("system %d %q", sys.ID, sys.Name)
	if in.Secrets != nil {
		if sys.Secrets, err = s.box.SealMap(*in.Secrets); err != nil {
			return err
		}
		names := make([]string, 0, len(*in.Secrets))
		for k := range *in.Secrets {
			names = append(names, k)
		}
		sort.Strings(names)
		// Names only: values never reach the audit log.
		detail += fmt.Sprintf(", secrets replaced (%s)", strings.Join(names, ", "))
	}
	if err := s.checkConfig(sys.Kind, json.RawMessage(sys.Settings), in.Secrets); err != nil {
		return err
	}
	if err := s.eng.CheckSystem(ctx, sys); err != nil {
		return err
	}
	if err := s.st.UpdateSystem(ctx, &sys); err != nil {
		return err
	}
	s.eng.ReloadSystem(id)
	s.auditAs(c, sys.TeamID, "system.update", nil, detail)
	return s.respondSystem(c, http.StatusOK, sys)
}

func (s *srv) deleteSystem(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	sys, err := s.st.GetSystem(c.Request.Context(), id)
	if err != nil {
		return err
	}
	if err := s.st.DeleteSystem(c.Request.Context(), id); err != nil {
		return err
	}
	s.eng.ReloadSystem(id)
	s.auditAs(c, sys.TeamID, "system.delete", nil, fmt.Sprintf("system %d %q", id, sys.Name))
	c.Status(http.StatusNoContent)
	return nil
}

func (s *srv) systemSchema(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if _, err := s.st.GetSystem(c.Request.Context(), id); err != nil {
		return err
	}
	schema, err := s.eng.Schema(c.Request.Context(), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, schema)
	return nil
}
