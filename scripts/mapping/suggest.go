package mapping

import (
	"strings"
	"unicode"
)

// FieldInfo is what Suggest needs of a schema's field (connectors.FieldSpec).
type FieldInfo struct {
	Name     string
	Type     string
	ReadOnly bool
}

// synonyms are names trackers and desks use for the same thing; a pair by
// the same (normalised) name always wins over one by a synonym.
var synonyms = [][]string{
	{"title", "subject", "summary", "shortdescription", "name"},
	{"description", "body", "details", "text"},
	{"status", "state"},
	{"priority", "severity", "urgency"},
	{"assignee", "assignedto", "owner"},
	{"labels", "tags"},
	{"due", "duedate", "deadline"},
}

// Suggest pairs target fields with source fields by name and type: the same
// name first, then the same name once case, spaces, dashes and underscores
// are ignored, then a known synonym (title ~ subject ~ summary). Read-only
// target fields are skipped, and so are pairs whose types differ (when both
// name one). Comments cross when both sides have them. Targets that keep
// lists a mapping already has are left out, so a suggestion only adds rows.
func Suggest(source, target []FieldInfo, sourceComments, targetComments bool, have Mapping) Mapping {
	out := have
	out.Rows = append([]Row{}, have.Rows...)
	taken := map[string]bool{}
	for _, r := range have.Rows {
		taken[r.Target] = true
	}
	bySame := map[string]FieldInfo{}
	byNorm := map[string]FieldInfo{}
	for _, f := range source {
		if reservedSources[f.Name] {
			continue
		}
		bySame[f.Name] = f
		if _, ok := byNorm[norm(f.Name)]; !ok {
			byNorm[norm(f.Name)] = f
		}
	}
	fits := func(s, t FieldInfo) bool { return s.Type == "" || t.Type == "" || s.Type == t.Type }
	for _, t := range target {
		if t.ReadOnly || taken[t.Name] || reservedTargets[t.Name] || checkName(t.Name) != nil {
			continue
		}
		var pick *FieldInfo
		if s, ok := bySame[t.Name]; ok && fits(s, t) {
			pick = &s
		} else if s, ok := byNorm[norm(t.Name)]; ok && fits(s, t) {
			pick = &s
		} else {
			for _, alt := range synonymsOf(norm(t.Name)) {
				if s, ok := byNorm[alt]; ok && fits(s, t) {
					pick = &s
					break
				}
			}
		}
		if pick == nil || checkName(pick.Name) != nil {
			continue
		}
		taken[t.Name] = true
		out.Rows = append(out.Rows, Row{Target: t.Name, Kind: Field, Source: pick.Name})
	}
	if sourceComments && targetComments && !have.Comments.Sync {
		out.Comments.Sync = true
	}
	return out
}

func synonymsOf(n string) []string {
	for _, group := range synonyms {
		for _, w := range group {
			if w == n {
				var out []string
				for _, o := range group {
					if o != n {
						out = append(out, o)
					}
				}
				return out
			}
		}
	}
	return nil
}

func norm(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
