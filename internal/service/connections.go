package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/duplexsync/duplex/internal/plural"
	"strings"

	"github.com/duplexsync/duplex/connectors/peerlink"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// NewConnection is a connection to create. Scripts are its sources (from a
// rendered template or written blank); a kind left out is empty.
type NewConnection struct {
	Name                 string
	TeamID               int64
	SystemAID, SystemBID int64
	Active               bool
	Scripts              map[store.Side]map[store.ScriptKind]string
	Rules                map[store.Side][]scripting.Rule // saved as version 1 of each side that has any
	// Template names the built-in it was made from ("" for none).
	Template string
	// TemplateID, TemplateVersion and TemplateParams link a team template.
	TemplateID      int64
	TemplateVersion int
	TemplateParams  map[string]any
	// TemplateParamsJSON, when set, is stored as the parameters verbatim
	// instead of TemplateParams ("" for none): apply keeps its folder's text,
	// which later plans compare with the stored one.
	TemplateParamsJSON *string
	// Kinds are the connector kinds the template's sides fit (empty: any);
	// a system of another kind is refused as a *scripts.KindMismatchError.
	Kinds scripts.SideKinds
	// ConflictPolicy and Options are JSON text ("" for unset), stored as
	// given once they parse: apply compares the stored text with its folder's.
	ConflictPolicy string
	Options        string
	// Detail replaces the audit entry's detail (apply names the systems).
	Detail string
}

// CreateConnection validates in, checks that both systems are the team's,
// and creates the connection, its scripts and rules and its audit entry in
// one transaction.
func (s *Service) CreateConnection(ctx context.Context, actor string, in NewConnection) (store.Connection, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || in.SystemAID == 0 || in.SystemBID == 0 {
		return store.Connection{}, invalid("name, system_a_id and system_b_id are required")
	}
	if in.TeamID == 0 {
		return store.Connection{}, invalid("the connection's team is required")
	}
	conn := store.Connection{Name: in.Name, SystemAID: in.SystemAID, SystemBID: in.SystemBID, Active: in.Active,
		Template: in.Template, TeamID: in.TeamID, TemplateID: in.TemplateID, TemplateVersion: in.TemplateVersion}
	if err := CheckPolicy(in.ConflictPolicy); err != nil {
		return conn, err
	}
	if err := CheckOptions(in.Options); err != nil {
		return conn, err
	}
	conn.ConflictPolicy, conn.Options = in.ConflictPolicy, in.Options
	switch {
	case in.TemplateID != 0 && in.TemplateParamsJSON != nil:
		conn.TemplateParams = *in.TemplateParamsJSON
	case in.TemplateID != 0:
		params := in.TemplateParams
		if params == nil {
			params = map[string]any{}
		}
		enc, err := json.Marshal(params)
		if err != nil {
			return conn, fmt.Errorf("encode params: %w", err)
		}
		conn.TemplateParams = string(enc)
	}
	// Checked before the transaction: the engine's trigger check reads the
	// store, whose one SQLite connection the transaction would hold.
	if err := ownSystems(ctx, s.st, in.TeamID, in.SystemAID, in.SystemBID); err != nil {
		return conn, err
	}
	if in.TemplateID != 0 {
		if err := s.checkLink(ctx, in.TeamID, in.TemplateID, in.TemplateVersion); err != nil {
			return conn, err
		}
	}
	name := in.Template
	if name == "" {
		name = fmt.Sprint(in.TemplateID)
	}
	if err := fitKinds(ctx, s.st, name, in.Kinds, in.SystemAID, in.SystemBID); err != nil {
		return conn, err
	}
	if err := s.checkScripts(ctx, conn, in.Scripts); err != nil {
		return conn, err
	}
	rules := map[store.Side]string{}
	for side, list := range in.Rules {
		if len(list) == 0 {
			continue
		}
		doc, err := s.rulesDoc(ctx, conn, side, list)
		if err != nil {
			return conn, err
		}
		rules[side] = doc
	}
	detail := in.Detail
	if detail == "" {
		detail = fmt.Sprintf("connection %q (template %q)", conn.Name, conn.Template)
		if conn.TemplateID != 0 {
			detail = fmt.Sprintf("connection %q (team template %d version %d)", conn.Name, conn.TemplateID, conn.TemplateVersion)
		}
	}
	_, err := s.change(ctx, actor, "connection.create", func(tx *store.Store) (int64, string, error) {
		if err := tx.CreateConnection(ctx, &conn, in.Scripts, actor); err != nil {
			return 0, "", err
		}
		for _, side := range []store.Side{store.SideA, store.SideB} {
			if rules[side] == "" {
				continue
			}
			if _, err := tx.SaveScript(ctx, conn.ID, side, store.KindRules, rules[side], actor); err != nil {
				return 0, "", err
			}
		}
		return conn.ID, detail, nil
	})
	return conn, err
}

// fitKinds refuses a system whose kind its side of the template does not
// fit: the template's scripts read fields only those kinds have.
func fitKinds(ctx context.Context, tx *store.Store, name string, kinds scripts.SideKinds, systemA, systemB int64) error {
	for i, id := range []int64{systemA, systemB} {
		side := []string{"a", "b"}[i]
		if len(kinds.Of(side)) == 0 {
			continue
		}
		sys, err := tx.GetSystem(ctx, id)
		if err != nil {
			return fmt.Errorf("system %d: %w", id, err)
		}
		if err := kinds.Check(name, side, sys.Kind); err != nil {
			return err
		}
	}
	return nil
}

// ownSystems refuses a system that does not exist (a reference in the input)
// or belongs to another team: a team wires only its own systems, whose
// credentials are its admins'.
func ownSystems(ctx context.Context, tx *store.Store, team int64, ids ...int64) error {
	for _, id := range ids {
		sys, err := tx.GetSystem(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("system %d does not exist", id)
		} else if err != nil {
			return fmt.Errorf("system %d: %w", id, err)
		}
		if sys.TeamID != team {
			return fmt.Errorf("%w: system %d belongs to another team", ErrForbidden, id)
		}
	}
	return nil
}

// SaveScript validates src and saves it as the next version of one script.
func (s *Service) SaveScript(ctx context.Context, actor string, conn store.Connection, side store.Side, kind store.ScriptKind, src string) (store.ScriptVersion, error) {
	if err := s.ownSide(ctx, conn, side); err != nil {
		return store.ScriptVersion{}, err
	}
	if err := s.CheckScript(ctx, conn, side, kind, src); err != nil {
		return store.ScriptVersion{}, err
	}
	var v store.ScriptVersion
	_, err := s.change(ctx, actor, "script.save", func(tx *store.Store) (int64, string, error) {
		var err error
		v, err = tx.SaveScript(ctx, conn.ID, side, kind, src, actor)
		return conn.ID, fmt.Sprintf("%s.%s version %d", side, kind, v.Version), err
	})
	return v, err
}

// ownSide refuses a change to the scripts of a peer link's peer side: they
// run on the other deployment, which writes its own (docs/peers.md).
func (s *Service) ownSide(ctx context.Context, conn store.Connection, side store.Side) error {
	sys, err := s.st.GetSystem(ctx, conn.SystemID(side))
	if err != nil {
		return err
	}
	if sys.Kind == peerlink.Kind {
		return invalid("side %s of connection %q is a peer deployment: its scripts are written and run there", side, conn.Name)
	}
	return nil
}

// SaveRules compiles a side's validation rules and saves them as their next
// version.
func (s *Service) SaveRules(ctx context.Context, actor string, conn store.Connection, side store.Side, rules []scripting.Rule) (store.ScriptVersion, error) {
	if err := s.ownSide(ctx, conn, side); err != nil {
		return store.ScriptVersion{}, err
	}
	doc, err := s.rulesDoc(ctx, conn, side, rules)
	if err != nil {
		return store.ScriptVersion{}, err
	}
	var v store.ScriptVersion
	_, err = s.change(ctx, actor, "rules.save", func(tx *store.Store) (int64, string, error) {
		var err error
		v, err = tx.SaveScript(ctx, conn.ID, side, store.KindRules, doc, actor)
		return conn.ID, fmt.Sprintf("%s.rules version %d (%s)", side, v.Version, plural.Of(int64(len(rules)), "rule")), err
	})
	return v, err
}

// SetPolicy sets the conflict policy.
func (s *Service) SetPolicy(ctx context.Context, actor string, connID int64, enc string) error {
	if err := CheckPolicy(enc); err != nil {
		return err
	}
	_, err := s.change(ctx, actor, "connection.conflict_policy", func(tx *store.Store) (int64, string, error) {
		return connID, enc, tx.SetConflictPolicy(ctx, connID, enc)
	})
	return err
}

// SetOptions sets the lifecycle options.
func (s *Service) SetOptions(ctx context.Context, actor string, connID int64, enc string) error {
	if err := CheckOptions(enc); err != nil {
		return err
	}
	_, err := s.change(ctx, actor, "connection.options", func(tx *store.Store) (int64, string, error) {
		return connID, enc, tx.SetOptions(ctx, connID, enc)
	})
	return err
}

// SetActive activates or pauses a connection.
func (s *Service) SetActive(ctx context.Context, actor string, connID int64, active bool) error {
	action := "connection.pause"
	if active {
		action = "connection.activate"
	}
	_, err := s.change(ctx, actor, action, func(tx *store.Store) (int64, string, error) {
		return connID, "", tx.SetActive(ctx, connID, active)
	})
	return err
}

// CheckScript compiles one script or trigger as the engine will; a compile
// error is a *scripting.Error with its line and column.
func (s *Service) CheckScript(ctx context.Context, conn store.Connection, side store.Side, kind store.ScriptKind, src string) error {
	if kind != store.KindTrigger {
		name := fmt.Sprintf("%s.%s.js", side, kind)
		if s.check == nil { // offline (apply from a folder): the command's own process, which ends soon
			_, err := scripting.CompileWithin(name, scripting.Kind(kind), src, scripting.DefaultCompileDeadline)
			return err
		}
		return s.check.CheckScript(ctx, conn, name, scripting.Kind(kind), src)
	}
	if s.check == nil {
		return scripting.CheckTrigger(src)
	}
	return s.check.ValidateTrigger(ctx, conn.SystemID(side), src)
}

func (s *Service) checkScripts(ctx context.Context, conn store.Connection, src map[store.Side]map[store.ScriptKind]string) error {
	for _, side := range []store.Side{store.SideA, store.SideB} {
		for _, kind := range store.ScriptKinds {
			code, given := src[side][kind]
			if !given { // saved empty, as a connection made blank starts
				continue
			}
			if err := s.CheckScript(ctx, conn, side, kind, code); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckRules compiles rules as the engine will; a unique rule needs a
// connector that can look entities up by a field.
func (s *Service) CheckRules(ctx context.Context, conn store.Connection, side store.Side, rules []scripting.Rule) error {
	if _, err := scripting.CompileRules(rules); err != nil {
		return err
	}
	if s.check == nil {
		return nil
	}
	for i, r := range rules {
		if r.Kind != "unique" {
			continue
		}
		ok, err := s.check.CanFind(ctx, conn.SystemID(side))
		if err != nil {
			return err
		}
		if !ok {
			return &scripting.Error{Script: fmt.Sprintf("rule %d", i+1), Kind: scripting.ErrorCompile, Rule: i + 1,
				Message: fmt.Sprintf("a unique rule needs a lookup in side %s's system, and its connector cannot look entities up by a field", side)}
		}
		return nil
	}
	return nil
}

func (s *Service) rulesDoc(ctx context.Context, conn store.Connection, side store.Side, rules []scripting.Rule) (string, error) {
	if rules == nil {
		rules = []scripting.Rule{}
	}
	for i := range rules {
		if rules[i].Kind == "" && rules[i].Expr != "" {
			rules[i].Kind = "expr"
		}
	}
	if err := s.CheckRules(ctx, conn, side, rules); err != nil {
		return "", err
	}
	doc, err := json.MarshalIndent(rules, "", "  ")
	return string(doc), err
}

// CheckPolicy refuses a conflict policy (JSON; "" is side a wins) the
// engine would not parse.
func CheckPolicy(enc string) error {
	if enc == "" {
		return nil
	}
	if _, err := engine.ParsePolicy(enc); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// CheckOptions refuses options (JSON; "" for none) that do not parse
// (ErrInvalid) or ask for more than the sandbox allows
// (engine.CheckLifecycle's error).
func CheckOptions(enc string) error {
	if enc == "" {
		return nil
	}
	o, err := engine.ParseLifecycle(enc)
	if err != nil {
		return invalid("%v", err)
	}
	return engine.CheckLifecycle(o)
}

// Upgrade is a connection's move to another version of its team template:
// the scripts that version renders to and the parameters used.
type Upgrade struct {
	Scripts    map[store.Side]map[store.ScriptKind]string
	TemplateID int64
	Version    int
	Params     map[string]any
	Detail     string // the audit entry's, naming the template and versions
	// Kinds are what the version's sides fit: a version that no longer
	// fits the connection's systems is refused like a create.
	Kinds scripts.SideKinds
}

// UpgradeTemplate checks the rendered scripts and saves them as new
// versions, with the template version and parameters.
func (s *Service) UpgradeTemplate(ctx context.Context, actor string, conn store.Connection, up Upgrade) error {
	if err := fitKinds(ctx, s.st, fmt.Sprint(up.TemplateID), up.Kinds, conn.SystemAID, conn.SystemBID); err != nil {
		return err
	}
	if err := s.checkScripts(ctx, conn, up.Scripts); err != nil {
		return err
	}
	enc, err := json.Marshal(up.Params)
	if err != nil {
		return fmt.Errorf("encode params: %w", err)
	}
	_, err = s.change(ctx, actor, "template.upgrade", func(tx *store.Store) (int64, string, error) {
		return conn.ID, up.Detail, tx.UpgradeConnection(ctx, conn.ID, up.Scripts, up.TemplateID, up.Version, string(enc), actor)
	})
	return err
}

// checkLink refuses a team-template link the connection's team could not
// follow: the template must exist, be visible to the team (its own, shared
// with it, or org-wide) and have the version.
func (s *Service) checkLink(ctx context.Context, team, templateID int64, version int) error {
	if version < 1 {
		return invalid("a team template link needs a version (1 or more)")
	}
	if _, _, _, err := s.TemplateFor(ctx, team, templateID, version); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return invalid("team template %d version %d: not found or not visible to team %d", templateID, version, team)
		}
		return err
	}
	return nil
}

// TemplateLink is what a connection follows: a built-in template by name,
// and a team template's version with its parameters (TemplateID 0: none).
type TemplateLink struct {
	Template   string
	TemplateID int64
	Version    int
	// Params is the parameters' JSON text, stored as given.
	Params string
	// Detail is the audit entry's, naming the link's change.
	Detail string
}

// SetTemplateLink records what conn follows without changing its scripts
// (`duplex apply` carries the link in its folder; the API changes it only
// by creating or upgrading). A team template must be one conn's team sees.
func (s *Service) SetTemplateLink(ctx context.Context, actor string, conn store.Connection, l TemplateLink) error {
	// A link kept as it is stays even if its template is no longer shared
	// with the team (the upgrade path says so); a new one must be followed.
	if l.TemplateID != 0 && (l.TemplateID != conn.TemplateID || l.Version != conn.TemplateVersion) {
		if err := s.checkLink(ctx, conn.TeamID, l.TemplateID, l.Version); err != nil {
			return err
		}
	}
	detail := l.Detail
	if detail == "" {
		detail = fmt.Sprintf("connection %q: template %q, team template %d version %d", conn.Name, l.Template, l.TemplateID, l.Version)
	}
	_, err := s.change(ctx, actor, "connection.template", func(tx *store.Store) (int64, string, error) {
		if l.Template != conn.Template {
			if err := tx.SetConnectionTemplate(ctx, conn.ID, l.Template); err != nil {
				return 0, "", err
			}
		}
		if l.TemplateID != conn.TemplateID || l.Version != conn.TemplateVersion || l.Params != conn.TemplateParams {
			if err := tx.SetConnectionTeamTemplate(ctx, conn.ID, l.TemplateID, l.Version, l.Params); err != nil {
				return 0, "", err
			}
		}
		return conn.ID, detail, nil
	})
	return err
}

// DeleteConnection deletes conn with its scripts, twins and events (the
// store's cascade), audited under its team in the same transaction.
func (s *Service) DeleteConnection(ctx context.Context, actor string, conn store.Connection) error {
	id := conn.ID
	err := s.record(ctx, actor, "connection.delete", conn.TeamID, &id, func(tx *store.Store) (string, error) {
		return fmt.Sprintf("connection %q", conn.Name), tx.DeleteConnection(ctx, id)
	})
	if err == nil && s.eng != nil {
		s.eng.Reload(id) // the engine drops a connection it no longer finds
	}
	return err
}
