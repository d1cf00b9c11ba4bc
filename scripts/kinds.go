package scripts

import (
	"fmt"
	"slices"
	"strings"
)

// SideKinds are the connector kinds a template's sides fit (template.json's
// kinds_a and kinds_b): a system of another kind would run scripts written
// for fields it does not have. An empty list fits any kind.
type SideKinds struct {
	A []string `json:"kinds_a,omitempty"`
	B []string `json:"kinds_b,omitempty"`
}

// Of is the list of side "a" or "b".
func (k SideKinds) Of(side string) []string {
	if side == "b" {
		return k.B
	}
	return k.A
}

// Fits says whether a system of kind may be side's system.
func (k SideKinds) Fits(side, kind string) bool {
	want := k.Of(side)
	return len(want) == 0 || slices.Contains(want, kind)
}

// Check refuses, as a *KindMismatchError, a system of kind on a side whose
// list does not name it.
func (k SideKinds) Check(template, side, kind string) error {
	if k.Fits(side, kind) {
		return nil
	}
	return &KindMismatchError{Template: template, Side: side, Want: k.Of(side), Got: kind}
}

// validate refuses an empty or repeated kind name in either list.
func (k SideKinds) validate() error {
	for _, side := range []string{"a", "b"} {
		seen := map[string]bool{}
		for _, kind := range k.Of(side) {
			if strings.TrimSpace(kind) == "" || seen[kind] {
				return fmt.Errorf("kinds_%s: %q is empty or named twice: %w", side, kind, ErrInvalid)
			}
			seen[kind] = true
		}
	}
	return nil
}

// KindMismatchError is a system whose kind the template's side does not fit.
type KindMismatchError struct {
	Template string
	Side     string   // "a" or "b"
	Want     []string // the kinds the side fits
	Got      string   // the chosen system's kind
}

func (e *KindMismatchError) Error() string {
	return fmt.Sprintf("template %s: side %s needs a system of kind %s, got %s",
		e.Template, e.Side, strings.Join(e.Want, " or "), e.Got)
}
