package scripting

import (
	"math"
	"unicode/utf8"
)

// SplitWritable divides entity, the writable input of s (an incoming
// script's entity), into what the run is handed (kept) and the fields it
// cannot reach (moved): fields the script never names (InputReads) whose
// values the crossing into JS and back returns unchanged, so MergeBack
// puts them into the result exactly as the run would have. A field the
// script names, or a value the crossing changes (an integral float comes
// back an int64, a time a string, a map of strings a map of any), stays in
// kept. With the names unknown, kept is entity and moved nil.
//
// Why: converting a field into JS and exporting it back is most of what
// an incoming run's entity costs, and a sandbox worker's inputs cross a
// pipe; an incoming script maps a few fields of an entity that has many.
func SplitWritable(s *Script, entity map[string]any) (kept, moved map[string]any) {
	input, ok := writableInput[s.Kind()]
	if !ok || len(entity) == 0 {
		return entity, nil
	}
	names, known := s.InputReads(input)
	if !known {
		return entity, nil
	}
	n := 0
	for k, v := range entity {
		if !names[k] && unchangedByCrossing(v) {
			n++
		}
	}
	if n == 0 {
		return entity, nil
	}
	kept, moved = make(map[string]any, len(entity)-n), make(map[string]any, n)
	for k, v := range entity {
		if !names[k] && unchangedByCrossing(v) {
			moved[k] = v
		} else {
			kept[k] = v
		}
	}
	return kept, moved
}

// MergeBack puts the fields SplitWritable moved into out, a run's result.
func MergeBack(out, moved map[string]any) {
	if out == nil {
		return
	}
	for k, v := range moved {
		if _, set := out[k]; !set { // never set: the script cannot name k
			out[k] = v
		}
	}
}

// maxSafeInt is JS's Number.MAX_SAFE_INTEGER: goja holds a larger int64
// as a float, which exports as a float64.
const maxSafeInt = 1<<53 - 1

// unchangedByCrossing reports whether v comes back from toJS and export as
// the same Go value: nil, a bool, an int64 JS holds exactly, a valid UTF-8
// string, a finite float64 with a fraction.
func unchangedByCrossing(v any) bool {
	switch x := v.(type) {
	case nil, bool:
		return true
	case int64:
		return x >= -maxSafeInt && x <= maxSafeInt
	case string:
		return utf8.ValidString(x)
	case float64:
		return !math.IsInf(x, 0) && !math.IsNaN(x) && x != math.Trunc(x)
	}
	return false
}
