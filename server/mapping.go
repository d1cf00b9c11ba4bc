package server

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/scripts/mapping"
)

// mappingRoutes declares a direction as a field mapping: viewers read it;
// saving, rendering and suggesting (which reads the systems' schemas) are
// for editors.
func (s *srv) mappingRoutes(api gin.IRoutes) {
	const viewer, editor = store.RoleViewer, store.RoleEditor
	s.handle(api, "GET", "/connections/:id/mapping/:direction", teamRole("connection", "id", viewer), s.getMapping,
		op{summary: "A direction as a field mapping; when its scripts are code, mapping null, code not_a_mapping and the reason", tag: "scripts", out: mappingOut{}})
	s.handle(api, "PUT", "/connections/:id/mapping/:direction", teamRole("connection", "id", editor), s.saveMapping,
		op{summary: "Render a mapping and save the direction's trigger and scripts as their next versions", tag: "scripts", in: mappingIn{}, out: mappingSavedOut{}})
	s.handle(api, "POST", "/connections/:id/mapping/:direction/render", teamRole("connection", "id", editor), s.renderMapping,
		op{summary: "The scripts a draft mapping makes, saving nothing (for the impact preview and test runs)", tag: "scripts", in: mappingIn{}, out: mapping.Scripts{}})
	s.handle(api, "POST", "/connections/:id/mapping/:direction/suggest", teamRole("connection", "id", editor), s.suggestMapping,
		op{summary: "Pair the target's fields with the source's by name and type from the systems' schemas", tag: "scripts", in: mappingIn{}, out: mappingOut{}})
}

// mappingOut is the mapping view of a direction: the source side's trigger
// and outgoing script and the target side's incoming script, as rows. A
// direction that is code has no mapping, the code not_a_mapping and the
// reason: an answer, not an error, since the app asks for every direction
// it shows.
type mappingOut struct {
	Direction store.Direction  `json:"direction"`
	Source    store.Side       `json:"source"`
	Target    store.Side       `json:"target"`
	Mapping   *mapping.Mapping `json:"mapping"`
	Code      string           `json:"code,omitempty"`
	Reason    string           `json:"reason,omitempty"`
}

// mappingIn is the body of the mapping writes and of suggest (where the
// mapping is optional: the rows to keep).
type mappingIn struct {
	Mapping *mapping.Mapping `json:"mapping"`
}

// mappingSavedOut is what saving a mapping answers: the view and the
// versions it saved (a script the mapping left as it was keeps its version).
type mappingSavedOut struct {
	mappingOut
	Versions service.MappingSaved `json:"versions"`
}

func (s *srv) mappingTarget(c *gin.Context) (store.Connection, store.Direction, error) {
	id, err := idParam(c, "id")
	if err != nil {
		return store.Connection{}, "", err
	}
	d := store.Direction(c.Param("direction"))
	if d != store.AToB && d != store.BToA {
		return store.Connection{}, "", badRequest("direction must be \"a_to_b\" or \"b_to_a\", got %q", d)
	}
	conn, err := s.st.GetConnection(c.Request.Context(), id)
	return conn, d, err
}

func view(d store.Direction, m *mapping.Mapping) mappingOut {
	src := d.Source()
	dst := store.SideB
	if src == store.SideB {
		dst = store.SideA
	}
	return mappingOut{Direction: d, Source: src, Target: dst, Mapping: m}
}

// getMapping answers the mapping, or no mapping with the code
// not_a_mapping and why the direction is code (edited by hand, or never
// made by the mapping editor).
func (s *srv) getMapping(c *gin.Context) error {
	conn, d, err := s.mappingTarget(c)
	if err != nil {
		return err
	}
	m, err := s.svc.Mapping(c.Request.Context(), conn, d)
	var nm *mapping.NotMapping
	if errors.As(err, &nm) {
		out := view(d, nil)
		out.Code, out.Reason = CodeNotAMapping, nm.Reason
		c.JSON(http.StatusOK, out)
		return nil
	}
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, view(d, &m))
	return nil
}

func (s *srv) bindMapping(c *gin.Context, required bool) (*mapping.Mapping, error) {
	var in mappingIn
	if err := s.bind(c, &in); err != nil {
		return nil, err
	}
	if in.Mapping == nil && required {
		return nil, badRequest("mapping is required")
	}
	return in.Mapping, nil
}

// saveMapping renders the mapping and saves the direction's scripts as
// their next versions (one transaction, one audit entry mapping.save).
// Saving over a direction that is code is allowed: the code's versions
// stay in the history, so nothing is lost.
func (s *srv) saveMapping(c *gin.Context) error {
	conn, d, err := s.mappingTarget(c)
	if err != nil {
		return err
	}
	m, err := s.bindMapping(c, true)
	if err != nil {
		return err
	}
	saved, err := s.svc.SaveMapping(c.Request.Context(), principalOf(c).Actor(), conn, d, *m)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, mappingSavedOut{mappingOut: view(d, m), Versions: saved})
	return nil
}

// renderMapping answers the scripts a draft mapping makes, saving nothing:
// the app runs the impact preview and test runs on them.
func (s *srv) renderMapping(c *gin.Context) error {
	if _, _, err := s.mappingTarget(c); err != nil {
		return err
	}
	m, err := s.bindMapping(c, true)
	if err != nil {
		return err
	}
	out, err := mapping.Render(*m)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// suggestMapping pairs the target's fields with the source's by name and
// type, from the systems' schemas (the connectors' Describe, cached by the
// engine), keeping the rows of the given mapping.
func (s *srv) suggestMapping(c *gin.Context) error {
	conn, d, err := s.mappingTarget(c)
	if err != nil {
		return err
	}
	have, err := s.bindMapping(c, false)
	if err != nil {
		return err
	}
	if have == nil {
		have = &mapping.Mapping{Rows: []mapping.Row{}}
	}
	v := view(d, nil)
	ctx := c.Request.Context()
	from, err := s.eng.Schema(ctx, conn.SystemID(v.Source))
	if err != nil {
		return err
	}
	to, err := s.eng.Schema(ctx, conn.SystemID(v.Target))
	if err != nil {
		return err
	}
	var src, dst []mapping.FieldInfo
	for _, f := range from.Fields {
		src = append(src, mapping.FieldInfo{Name: f.Name, Type: string(f.Type), ReadOnly: f.ReadOnly})
	}
	for _, f := range to.Fields {
		dst = append(dst, mapping.FieldInfo{Name: f.Name, Type: string(f.Type), ReadOnly: f.ReadOnly})
	}
	sug := mapping.Suggest(src, dst, from.Comments, to.Comments, *have)
	v.Mapping = &sug
	c.JSON(http.StatusOK, v)
	return nil
}
