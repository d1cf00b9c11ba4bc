package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Spec is what a connector kind says about itself: the one description the
// settings check, the API (GET /api/connector-kinds), the app's system form
// and the reference in docs/connectors.md are built from.
type Spec struct {
	Kind    string `json:"kind"`
	Summary string `json:"summary"`
	// Settings are generated from the package's Settings struct and its doc
	// comments (connectors/internal/specgen), never written by hand.
	Settings     []Setting    `json:"settings"`
	Secrets      []Secret     `json:"secrets"`
	Capabilities Capabilities `json:"capabilities"`
}

// SettingType is the JSON type a setting takes.
type SettingType string

// The setting types.
const (
	SettingString  SettingType = "string"
	SettingInteger SettingType = "integer"
	SettingBoolean SettingType = "boolean"
	SettingList    SettingType = "list"   // a JSON array
	SettingObject  SettingType = "object" // a JSON object
)

// Setting is one key of a kind's settings. Required, Default and Enum come
// from the field's `spec` tag: `spec:"required"`, `spec:"default=30000"`,
// `spec:"enum=sqlite|postgres|mysql"`.
type Setting struct {
	Name        string      `json:"name"`
	Type        SettingType `json:"type"`
	Required    bool        `json:"required,omitempty"`
	Default     string      `json:"default,omitempty"`
	Enum        []string    `json:"enum,omitempty"`
	Description string      `json:"description,omitempty"`
}

// Secret is a key of a system's secrets (write-only values: tokens,
// passwords). Required is false where one of several ways to sign in will do
// (the description says which).
type Secret struct {
	Name        string `json:"name"`
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
}

// Capabilities say which optional interfaces the connector implements. The
// conformance suite (connectors/conntest) tests each one declared, so a spec
// cannot claim what the connector does not do.
type Capabilities struct {
	Webhooks        bool `json:"webhooks"`         // Hooked
	Attachments     bool `json:"attachments"`      // Attacher
	Correlation     bool `json:"correlation"`      // Correlating (when its setting is set)
	Find            bool `json:"find"`             // Finder
	Deletes         bool `json:"deletes"`          // Deleter
	PrivateComments bool `json:"private_comments"` // Comment.Private is kept, not refused
}

// SettingError is a refused setting: Field names the key (a dotted path
// for nested ones, "" for the whole object). It wraps ErrBadConfig.
type SettingError struct {
	Kind  string
	Field string
	Msg   string
}

func (e *SettingError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s settings: %s", e.Kind, e.Msg)
	}
	return fmt.Sprintf("%s settings: %s: %s", e.Kind, e.Field, e.Msg)
}

func (e *SettingError) Unwrap() error { return ErrBadConfig }

// SecretError is a refused secret name, wrapping ErrBadConfig.
type SecretError struct {
	Kind, Name, Msg string
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("%s secrets: %s: %s", e.Kind, e.Name, e.Msg)
}

func (e *SecretError) Unwrap() error { return ErrBadConfig }

// Setting returns the named setting of the spec.
func (s Spec) Setting(name string) (Setting, bool) {
	for _, st := range s.Settings {
		if st.Name == name {
			return st, true
		}
	}
	return Setting{}, false
}

// DecodeSettings is the strict, pure settings parse every kind shares: raw
// must be a JSON object (empty or null reads as {}) whose keys are all
// declared by the spec, each of its declared type, the required ones present
// and not empty; then it is decoded into dst (a pointer to the kind's
// Settings struct) refusing unknown keys in nested objects too. Refusals are
// *SettingError naming the key. It opens nothing.
func (s Spec) DecodeSettings(raw json.RawMessage, dst any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return &SettingError{Kind: s.Kind, Msg: "must be a JSON object: " + err.Error()}
	}
	for _, k := range sortedKeys(m) {
		st, ok := s.Setting(k)
		if !ok {
			return &SettingError{Kind: s.Kind, Field: k, Msg: s.unknownMsg(k)}
		}
		if err := st.check(m[k]); err != nil {
			return &SettingError{Kind: s.Kind, Field: k, Msg: err.Error()}
		}
	}
	for _, st := range s.Settings {
		if st.Required && isEmpty(m[st.Name]) {
			return &SettingError{Kind: s.Kind, Field: st.Name, Msg: "is required"}
		}
	}
	if dst == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return s.decodeError(err)
	}
	return nil
}

// CheckSecrets refuses secret names the spec does not declare, naming the
// first one (sorted); values are not looked at.
func (s Spec) CheckSecrets(names []string) error {
	known := map[string]bool{}
	for _, sec := range s.Secrets {
		known[sec.Name] = true
	}
	names = append([]string(nil), names...)
	sort.Strings(names)
	for _, n := range names {
		if !known[n] {
			list := make([]string, 0, len(s.Secrets))
			for _, sec := range s.Secrets {
				list = append(list, sec.Name)
			}
			return &SecretError{Kind: s.Kind, Name: n, Msg: fmt.Sprintf("unknown secret (this kind takes: %s)", orNone(list))}
		}
	}
	return nil
}

func (s Spec) unknownMsg(key string) string {
	names := make([]string, 0, len(s.Settings))
	best, bestD := "", 3 // suggest only a near miss
	for _, st := range s.Settings {
		names = append(names, st.Name)
		if d := editDistance(key, st.Name); d < bestD {
			best, bestD = st.Name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown setting (did you mean %q?)", best)
	}
	return fmt.Sprintf("unknown setting (this kind takes: %s)", orNone(names))
}

// decodeError turns encoding/json's complaint about a nested value into a
// SettingError naming its path.
func (s Spec) decodeError(err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return &SettingError{Kind: s.Kind, Field: typ.Field, Msg: fmt.Sprintf("must be %s, not %s", typ.Type, typ.Value)}
	}
	const unknown = "json: unknown field "
	if msg := err.Error(); strings.HasPrefix(msg, unknown) {
		return &SettingError{Kind: s.Kind, Field: strings.Trim(msg[len(unknown):], `"`), Msg: "unknown setting"}
	}
	return &SettingError{Kind: s.Kind, Msg: err.Error()}
}

func (st Setting) check(v json.RawMessage) error {
	if string(v) == "null" {
		return nil // null is "not set"; required is checked apart
	}
	var ok bool
	switch c := v[0]; st.Type {
	case SettingString:
		ok = c == '"'
	case SettingBoolean:
		ok = string(v) == "true" || string(v) == "false"
	case SettingInteger:
		var n json.Number // which also takes "30", hence the first byte
		if (c == '-' || c >= '0' && c <= '9') && json.Unmarshal(v, &n) == nil {
			_, err := n.Int64()
			ok = err == nil
		}
	case SettingList:
		ok = c == '['
	case SettingObject:
		ok = c == '{'
	default:
		ok = true
	}
	if !ok {
		return fmt.Errorf("must be %s %s", article(st.Type), st.Type)
	}
	if len(st.Enum) > 0 && st.Type == SettingString {
		var str string
		_ = json.Unmarshal(v, &str)
		for _, e := range st.Enum {
			if str == e {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s, not %q", strings.Join(st.Enum, ", "), str)
	}
	return nil
}

func isEmpty(v json.RawMessage) bool {
	s := string(bytes.TrimSpace(v))
	return s == "" || s == "null" || s == `""` || s == "[]" || s == "{}"
}

func article(t SettingType) string {
	if t == SettingInteger || t == SettingObject {
		return "an"
	}
	return "a"
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// editDistance is the Levenshtein distance, for "did you mean".
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// HTTPURL checks that a setting holds an http(s) address with a host and
// returns it without surrounding space or a trailing slash.
func HTTPURL(kind, field, raw string) (string, error) {
	s := strings.TrimRight(strings.TrimSpace(raw), "/")
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, &SettingError{Kind: kind, Field: field, Msg: fmt.Sprintf("must be an http(s) address, got %q", raw)}
	}
	return s, nil
}
