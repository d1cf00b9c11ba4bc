package confdir

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// KindChecker is the pure check of a system's kind, settings and secret
// names (connectors.Registry.Validate): no store, no network.
type KindChecker interface {
	Validate(kind string, settings json.RawMessage, secretNames []string) error
}

// CheckSystems checks every system file of f against kinds; a problem points
// at the refused key in its file (the kind, a settings key, a secret name).
// nil kinds checks nothing.
func CheckSystems(f *Folder, kinds KindChecker) []Problem {
	if kinds == nil {
		return nil
	}
	var probs []Problem
	for _, tn := range sortedKeys(f.Teams) {
		for _, sn := range sortedKeys(f.Teams[tn].Systems) {
			s := f.Teams[tn].Systems[sn]
			if s.Kind == "" {
				continue // Read reported it
			}
			err := kinds.Validate(s.Kind, s.Settings, s.Secrets)
			if err == nil {
				continue
			}
			rel := systemPath(tn, sn)
			p := Problem{File: rel, Msg: err.Error()}
			if b, rerr := os.ReadFile(filepath.Join(f.Dir, filepath.FromSlash(rel))); rerr == nil {
				if off := keyOffset(b, err); off >= 0 {
					p.Line, p.Column = position(b, int64(off))
				}
			}
			probs = append(probs, p)
		}
	}
	return probs
}

// keyOffset finds where the key an error names is written: "kind", a key
// under "settings" (the last part of a nested path) or under "secrets";
// -1 when it cannot tell.
func keyOffset(b []byte, err error) int {
	var ke *connectors.KindError
	var se *connectors.SettingError
	var sec *connectors.SecretError
	var section, key string
	switch {
	case errors.As(err, &ke):
		key = "kind"
	case errors.As(err, &se):
		section, key = "settings", se.Field
		if i := strings.LastIndexByte(key, '.'); i >= 0 {
			key = key[i+1:]
		}
	case errors.As(err, &sec):
		section, key = "secrets", sec.Name
	default:
		return -1
	}
	from := 0
	if section != "" {
		i := bytes.Index(b, []byte(`"`+section+`"`))
		if i < 0 {
			return -1
		}
		from = i
		if key == "" {
			return i
		}
	}
	j := bytes.Index(b[from:], []byte(`"`+key+`"`))
	if j < 0 {
		return from
	}
	return from + j
}
