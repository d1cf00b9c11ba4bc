package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/peering"
	"github.com/duplexsync/duplex/scripts/mapping"
)

// op documents one route for /api/openapi.json. The table below is written
// by hand, apart from the routing: a test compares it with the routes Gin
// registers, both ways, so a new route without a description fails.
type op struct {
	summary string
	tag     string
	in      any // a value whose type is the JSON request body; nil: none
	out     any // a value whose type is the success body; nil: none
	status  int // success status; default 200 (204 when out is nil)
	query   []string
	// raw describes a body that is not JSON ("application/gzip", "application/typescript").
	rawIn, rawOut string
}

type okOut struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

type countOut struct {
	Linked  int `json:"linked,omitempty"`
	Retried int `json:"retried,omitempty"`
}

type healthOut struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

var ops = map[string]op{
	"GET /healthz":         {summary: "Store reachability (kept for existing probes)", tag: "operations", out: healthOut{}},
	"GET /metrics":         {summary: "Prometheus metrics (org admins; a scraper sends an org admin's API token)", tag: "operations", rawOut: "text/plain"},
	"GET /livez":           {summary: "Liveness: the process serves HTTP", tag: "operations", out: healthOut{}},
	"GET /readyz":          {summary: "Readiness: store reachable, schema current, engine running (503 with reasons otherwise)", tag: "operations", out: readyOut{}},
	"POST /hooks/{system}": {summary: "Receive a signed webhook for a system", tag: "webhooks", rawIn: "application/octet-stream", out: engine.HookResult{}, status: 202},

	"GET /api/outbound-policy": {summary: "The outbound policy: what systems may reach (org admin)", tag: "teams", out: outboundOut{}},
	"PUT /api/outbound-policy": {summary: "Replace the outbound policy (org admin; audited)", tag: "teams", in: outbound.Policy{}, out: outboundOut{}},
	"GET /api/org-settings":    {summary: "The organisation's settings: whether team admins see every team's name (org admin)", tag: "teams", out: store.OrgSettings{}},
	"PUT /api/org-settings":    {summary: "Change the organisation's settings (org admin; audited)", tag: "teams", in: orgSettingsIn{}, out: store.OrgSettings{}},

	"GET /api/connector-kinds": {summary: "Every connector kind's spec: settings, secrets, capabilities", tag: "systems", out: []connectors.Spec{}},

	"GET /api/connections":      {summary: "Connections of one's teams, with event counts", tag: "connections", out: []connectionOut{}},
	"POST /api/connections":     {summary: "Create a connection from scripts, a built-in or a team template", tag: "connections", in: connectionIn{}, out: connectionOut{}, status: 201},
	"GET /api/connections/{id}": {summary: "A connection with its current scripts", tag: "connections", out: connectionOut{}},

	"PUT /api/connections/{id}/scripts/{side}/{kind}":           {summary: "Save a script or trigger as its next version", tag: "scripts", in: saveScriptIn{}, out: store.ScriptVersion{}},
	"GET /api/connections/{id}/scripts/{side}/{kind}/versions":  {summary: "Every version of a script, newest first", tag: "scripts", out: []store.ScriptVersion{}},
	"POST /api/connections/{id}/scripts/{side}/{kind}/validate": {summary: "Compile a draft without saving it", tag: "scripts", in: validateDraftIn{}, out: okOut{}},
	"GET /api/connections/{id}/rules/{side}":                    {summary: "A side's current validation rules", tag: "scripts", out: rulesOut{}},
	"PUT /api/connections/{id}/rules/{side}":                    {summary: "Save a side's validation rules as their next version", tag: "scripts", in: rulesIn{}, out: rulesOut{}},
	"GET /api/connections/{id}/rules/{side}/versions":           {summary: "Every version of a side's rules, newest first", tag: "scripts", out: []store.ScriptVersion{}},
	"POST /api/connections/{id}/rules/{side}/validate":          {summary: "Compile draft rules without saving them", tag: "scripts", in: rulesIn{}, out: okOut{}},
	"POST /api/connections/{id}/trigger-preview":                {summary: "How many entities a draft trigger matches (reads the remote)", tag: "scripts", in: triggerPreviewIn{}, out: engine.TriggerPreview{}},
	"POST /api/connections/{id}/impact":                         {summary: "Replay recent synced changes through a draft of a direction's scripts and report what would differ (writes nothing)", tag: "scripts", in: impactIn{}, out: engine.ImpactResult{}},
	"GET /api/connections/{id}/mapping/{direction}":             {summary: "A direction as a field mapping; when its scripts are code, mapping null, code not_a_mapping and the reason", tag: "scripts", out: mappingOut{}},
	"PUT /api/connections/{id}/mapping/{direction}":             {summary: "Render a mapping and save the direction's trigger and scripts as their next versions", tag: "scripts", in: mappingIn{}, out: mappingSavedOut{}},
	"POST /api/connections/{id}/mapping/{direction}/render":     {summary: "The scripts a draft mapping makes, saving nothing (for the impact preview and test runs)", tag: "scripts", in: mappingIn{}, out: mapping.Scripts{}},
	"POST /api/connections/{id}/mapping/{direction}/suggest":    {summary: "Pair the target's fields with the source's by name and type from the systems' schemas", tag: "scripts", in: mappingIn{}, out: mappingOut{}},
	"POST /api/connections/{id}/test-run":                       {summary: "Run the scripts (saved, or unsaved drafts from the body) on one entity without writing anything", tag: "scripts", in: testRunIn{}, out: testRunOut{}},

	"PUT /api/connections/{id}/conflict-policy": {summary: "Set the conflict policy", tag: "connections", in: engine.Policy{}, out: connectionOut{}},
	"POST /api/connections/{id}/activate":       {summary: "Start syncing", tag: "connections", out: connectionOut{}},
	"POST /api/connections/{id}/pause":          {summary: "Pause (changes queue until resumed)", tag: "connections", out: connectionOut{}},
	"PUT /api/connections/{id}/options":         {summary: "Set lifecycle options", tag: "connections", in: engine.Lifecycle{}, out: connectionOut{}},
	"GET /api/connections/{id}/twins":           {summary: "Linked entity pairs", tag: "twins", out: []twinOut{}, query: []string{"limit"}},
	"POST /api/connections/{id}/twins":          {summary: "Link two existing entities by hand", tag: "twins", in: linkTwinIn{}, out: twinOut{}, status: 201},
	"DELETE /api/twins/{id}":                    {summary: "Unlink a pair (both entities stay; its events stay as history, marked unlinked_pair)", tag: "twins"},
	"POST /api/connections/{id}/backfill":       {summary: "Sync what already exists on one side", tag: "connections", in: startBackfillIn{}, out: store.Backfill{}, status: 202},
	"GET /api/connections/{id}/backfills":       {summary: "Backfill jobs and their progress", tag: "connections", out: []store.Backfill{}},
	"POST /api/connections/{id}/link-existing":  {summary: "Pair entities that share a key on both sides", tag: "twins", in: linkExistingIn{}, out: countOut{}},
	"POST /api/connections/{id}/retry-failed":   {summary: "Requeue every failed event of the connection", tag: "events", out: countOut{}},

	"GET /api/events":               {summary: "Sync events of one's teams, newest first", tag: "events", out: []eventOut{}, query: []string{"connection_id", "status", "limit"}},
	"GET /api/events/{id}":          {summary: "One sync event with its log", tag: "events", out: eventOut{}},
	"POST /api/events/{id}/retry":   {summary: "Requeue a failed event", tag: "events", out: eventOut{}},
	"POST /api/events/{id}/resolve": {summary: "Choose per conflicting field: source, target or a value", tag: "events", in: map[string]engine.Resolution{}, out: eventOut{}},
	"POST /api/events/{id}/skip":    {summary: "Give up on an event, with a reason", tag: "events", in: skipEventIn{}, out: eventOut{}},

	"GET /api/alerts": {summary: "Alerts of one's teams: open ones first, then recently resolved (?state=open|resolved)", tag: "alerts", out: []store.Alert{}, query: []string{"state", "limit"}},

	"GET /api/audit":           {summary: "Audit log: one's teams as admin; everything for org admins", tag: "audit", out: []store.AuditEntry{}, query: []string{"connection_id", "action", "limit"}},
	"GET /api/script-api.d.ts": {summary: "TypeScript declarations of the script API (editor completion)", tag: "scripts", rawOut: "application/typescript"},

	"GET /api/openapi.json": {summary: "This description", tag: "operations", rawOut: "application/json"},
	// Peer links (peers.go, docs/peers.md).
	"POST /peer/v1/redeem":             {summary: "Peer endpoint: redeem an invitation (signed with the accepting side's new key; the answer is signed)", tag: "peers", in: peering.Redeem{}, out: peering.Redeemed{}},
	"POST /peer/v1/messages":           {summary: "Peer endpoint: one signed message (replica, acknowledgement, revoke); a duplicate answers 409 peer_message_duplicate", tag: "peers", in: peering.Envelope{}, out: peerAccepted{}},
	"GET /api/peer-links":              {summary: "Peer links of your teams with their status (last contact, messages waiting and taken, errors)", tag: "peers", out: []peering.View{}},
	"POST /api/peer-links":             {summary: "Invite another deployment to one connection (team admins); answers the one-time code", tag: "peers", in: peering.InviteIn{}, out: peering.Invited{}, status: 201},
	"POST /api/peer-links/accept":      {summary: "Accept another deployment's invitation code for one of your systems (team admins)", tag: "peers", in: peering.AcceptIn{}, out: peering.View{}, status: 201},
	"GET /api/peer-links/{id}":         {summary: "One peer link with its status and what the peer created", tag: "peers", out: peering.View{}},
	"POST /api/peer-links/{id}/pause":  {summary: "Pause a peer link and its connection at once (audited)", tag: "peers", out: peering.View{}},
	"POST /api/peer-links/{id}/resume": {summary: "Resume a paused peer link", tag: "peers", out: peering.View{}},
	"POST /api/peer-links/{id}/revoke": {summary: "Revoke a peer link for good, at once, and tell the peer (audited)", tag: "peers", out: peering.View{}},
}

var ginParam = regexp.MustCompile(`:(\w+)`)

// openAPIPath turns Gin's /x/:id into OpenAPI's /x/{id}.
func openAPIPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

// buildOpenAPI renders the description once, at start; rules say which
// routes need a sign-in.
func buildOpenAPI(rules map[string]rule, ops map[string]op) ([]byte, error) {
	sc := &schemas{defs: map[string]any{}}
	paths := map[string]map[string]any{}
	keys := make([]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o := ops[k]
		method, path, _ := strings.Cut(k, " ")
		item := map[string]any{"summary": o.summary, "tags": []string{o.tag},
			"operationId": strings.ToLower(method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_").Replace(path)}
		var params []any
		for _, m := range ginParam.FindAllStringSubmatch(strings.NewReplacer("{", ":", "}", "").Replace(path), -1) {
			typ := "integer"
			switch m[1] {
			case "side", "kind", "name", "direction":
				typ = "string"
			}
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": typ}})
		}
		for _, q := range o.query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if len(params) > 0 {
			item["parameters"] = params
		}
		switch {
		case o.in != nil:
			item["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(o.in))}}}
		case o.rawIn != "":
			item["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				o.rawIn: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
		}
		status := o.status
		resp := map[string]any{}
		switch {
		case o.out != nil:
			if status == 0 {
				status = http.StatusOK
			}
			resp[itoa(int64(status))] = map[string]any{"description": http.StatusText(status), "content": map[string]any{
				"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(o.out))}}}
		case o.rawOut != "":
			resp["200"] = map[string]any{"description": "OK", "content": map[string]any{
				o.rawOut: map[string]any{"schema": map[string]any{"type": "string"}}}}
		default:
			resp["204"] = map[string]any{"description": "No Content"}
		}
		resp["default"] = map[string]any{"$ref": "#/components/responses/Error"}
		item["responses"] = resp
		r, ok := rules[method+" "+strings.NewReplacer("{", ":", "}", "").Replace(path)]
		if ok && r.kind == rulePublic {
			item["security"] = []any{}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = item
	}
	sc.defs["Error"] = sc.of(reflect.TypeOf(apiError{}))
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "Duplex API", "version": "2", // 2: JSON values instead of JSON strings (CHANGELOG.md)
			"description": "Two-way sync engine. Errors are JSON {code, message}; codes are stable. Cookie-authenticated writes need the X-CSRF-Token header."},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []string{}}, map[string]any{"session": []string{}}},
		"components": map[string]any{
			"schemas": sc.defs,
			"securitySchemes": map[string]any{
				"bearer":  map[string]any{"type": "http", "scheme": "bearer", "description": "a personal API token, dpx_…"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie},
			},
			"responses": map[string]any{"Error": map[string]any{"description": "an error with a stable code",
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// schemas turns Go types into JSON Schema (the OpenAPI 3.0 dialect), named
// struct types once under components/schemas.
type schemas struct{ defs map[string]any }

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

func (sc *schemas) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{} // any JSON
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := sc.of(t.Elem())
		if _, ref := s["$ref"]; ref {
			return map[string]any{"allOf": []any{s}, "nullable": true}
		}
		s["nullable"] = true
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": sc.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": sc.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		if name != "" {
			if _, done := sc.defs[name]; !done {
				sc.defs[name] = map[string]any{} // a placeholder stops recursion
				sc.defs[name] = sc.object(t)
			}
			return map[string]any{"$ref": "#/components/schemas/" + name}
		}
		return sc.object(t)
	}
	return map[string]any{}
}

func (sc *schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	sc.fields(t, props)
	return map[string]any{"type": "object", "properties": props}
}

// fields follows encoding/json: embedded structs are inlined, "-" is
// skipped, the tag's name wins.
func (sc *schemas) fields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				sc.fields(ft, props)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = sc.of(f.Type)
	}
}

// schemaName names exported and package-local struct types after the type;
// anonymous structs stay inline.
func schemaName(t reflect.Type) string {
	if t.Name() == "" {
		return ""
	}
	pkg := t.PkgPath()
	pkg = pkg[strings.LastIndex(pkg, "/")+1:]
	n := t.Name()
	return strings.ToUpper(pkg[:1]) + pkg[1:] + strings.ToUpper(n[:1]) + n[1:]
}

func (s *srv) openAPI(c *gin.Context) error {
	c.Data(http.StatusOK, "application/json; charset=utf-8", s.spec)
	return nil
}
