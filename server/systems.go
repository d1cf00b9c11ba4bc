package server

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/peerlink"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
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

// settings normalises the settings given: omitted is {} on create and
// unchanged (nil) on update. What they must be is the service's to say.
func (in *systemIn) settings(create bool) {
	if t := strings.TrimSpace(string(in.Settings)); t == "" || t == "null" {
		in.Settings = nil
		if create {
			in.Settings = json.RawMessage("{}")
		}
	}
}

// secretNames lists the secrets given, sorted (nil: none given).
func (in *systemIn) secretNames() []string {
	if in.Secrets == nil {
		return nil
	}
	names := make([]string, 0, len(*in.Secrets))
	for k := range *in.Secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
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

// systemRoutes declares the systems' routes, each once: method, path,
// access rule, handler, OpenAPI operation. Systems hold credentials: team
// admins change them.
func (s *srv) systemRoutes(api gin.IRoutes) {
	s.handle(api, "GET", "/systems", signedIn(), s.listSystems,
		op{summary: "Systems of one's teams", tag: "systems", out: []systemOut{}})
	s.handle(api, "POST", "/systems", signedIn(), s.createSystem, // team admin of the body's team
		op{summary: "Create a system (team admin); secrets are write-only", tag: "systems", in: systemIn{}, out: systemOut{}, status: 201})
	s.handle(api, "GET", "/systems/:id", teamRole("system", "id", store.RoleViewer), s.getSystem,
		op{summary: "A system (secret names, never values)", tag: "systems", out: systemOut{}})
	s.handle(api, "PUT", "/systems/:id", teamRole("system", "id", store.RoleAdmin), s.updateSystem,
		op{summary: "Change a system; fields left out keep their value", tag: "systems", in: systemIn{}, out: systemOut{}})
	s.handle(api, "DELETE", "/systems/:id", teamRole("system", "id", store.RoleAdmin), s.deleteSystem,
		op{summary: "Delete a system no connection uses", tag: "systems"})
	s.handle(api, "GET", "/systems/:id/schema", teamRole("system", "id", store.RoleViewer), s.systemSchema,
		op{summary: "The fields of the system's entities", tag: "systems", out: connectors.Schema{}})
	s.handle(api, "GET", "/systems/:id/deliveries", teamRole("system", "id", store.RoleViewer), s.listDeliveries,
		op{summary: "The system's webhook deliveries, newest first", tag: "webhooks", out: []store.WebhookDelivery{}, query: []string{"limit"}})
	// Reads the remote system: not for viewers.
	s.handle(api, "POST", "/systems/:id/test", teamRole("system", "id", store.RoleEditor), s.testSystem,
		op{summary: "Check that Duplex can reach and read the system", tag: "systems", out: systemTestOut{}})
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
	if in.Kind == peerlink.Kind {
		return badRequest("systems of kind %q stand for a peer deployment and are made by POST /api/peer-links", in.Kind)
	}
	in.settings(true)
	sys := store.System{Name: in.Name, Kind: in.Kind, TeamID: in.TeamID, Settings: string(in.Settings), PollIntervalMS: 2000}
	in.apply(&sys)
	if in.Secrets != nil {
		sealed, err := s.box.SealMap(*in.Secrets)
		if err != nil {
			return err
		}
		sys.Secrets = sealed
	}
	if err := s.svc.CreateSystem(c.Request.Context(), principalOf(c).Actor(), &sys, in.secretNames()); err != nil {
		return err
	}
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
	sys := rowOf[store.System](c) // loaded by the access rule
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
	in.settings(false)
	ctx := c.Request.Context()
	before := rowOf[store.System](c) // loaded by the access rule
	sys := before
	if in.Kind != "" {
		sys.Kind = in.Kind
	}
	if in.TeamID != 0 {
		sys.TeamID = in.TeamID
	}
	if in.Name != "" {
		sys.Name = in.Name
	}
	if in.Settings != nil {
		sys.Settings = string(in.Settings)
	}
	in.apply(&sys)
	var changes []string
	if in.Secrets != nil {
		if sys.Secrets, err = s.box.SealMap(*in.Secrets); err != nil {
			return err
		}
		old, err := s.box.OpenMap(before.Secrets)
		if err != nil {
			return fmt.Errorf("system %d secrets: %w", id, err)
		}
		changes = service.SecretChanges(slices.Sorted(maps.Keys(old)), in.secretNames())
	}
	sys, err = s.svc.UpdateSystem(ctx, principalOf(c).Actor(), before, sys, in.secretNames(), changes)
	if err != nil {
		return err
	}
	return s.respondSystem(c, http.StatusOK, sys)
}

func (s *srv) deleteSystem(c *gin.Context) error {
	sys := rowOf[store.System](c) // loaded by the access rule
	if err := s.svc.DeleteSystem(c.Request.Context(), principalOf(c).Actor(), sys); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (s *srv) systemSchema(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	schema, err := s.eng.Schema(c.Request.Context(), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, schema)
	return nil
}
