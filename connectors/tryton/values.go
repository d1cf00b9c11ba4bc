package tryton

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Tryton's JSON-RPC marks what JSON has no type for with "__class__":
// datetime (UTC, naive), date, Decimal.

func intOf(v any) int64 {
	switch x := v.(type) {
	case json.Number:
		n, _ := x.Int64()
		return n
	case float64:
		return int64(x)
	case int64:
		return x
	case int:
		return int64(x)
	}
	return 0
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// nested reads field of a many2one read with the "rel.field" syntax, which
// Tryton answers as {"rel.": {"id": .., "field": ..}} (null when unset).
func nested(v any, field string) string {
	if m, ok := v.(map[string]any); ok {
		return str(m[field])
	}
	return ""
}

func timeOf(v any) time.Time {
	m, ok := v.(map[string]any)
	if !ok || m["__class__"] != "datetime" {
		return time.Time{}
	}
	return time.Date(int(intOf(m["year"])), time.Month(intOf(m["month"])), int(intOf(m["day"])),
		int(intOf(m["hour"])), int(intOf(m["minute"])), int(intOf(m["second"])), int(intOf(m["microsecond"]))*1000, time.UTC)
}

func dateOf(v any) string {
	m, ok := v.(map[string]any)
	if !ok || m["__class__"] != "date" {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", intOf(m["year"]), intOf(m["month"]), intOf(m["day"]))
}

// number reads a Decimal (or a plain number) as float64: amounts are shown,
// not computed with.
func number(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x["__class__"] == "Decimal" {
			f, err := strconv.ParseFloat(str(x["decimal"]), 64)
			if err == nil {
				return f
			}
		}
	case json.Number:
		f, err := x.Float64()
		if err == nil {
			return f
		}
	case float64:
		return x
	}
	return nil
}

func wireTime(t time.Time) map[string]any {
	t = t.UTC()
	return map[string]any{"__class__": "datetime", "year": t.Year(), "month": int(t.Month()), "day": t.Day(),
		"hour": t.Hour(), "minute": t.Minute(), "second": t.Second(), "microsecond": t.Nanosecond() / 1000}
}

func wireDate(s string) (map[string]any, error) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("want YYYY-MM-DD, got %q", s)
	}
	return map[string]any{"__class__": "date", "year": t.Year(), "month": int(t.Month()), "day": t.Day()}, nil
}

func wireDecimal(v any) (map[string]any, error) {
	var s string
	switch x := v.(type) {
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		s = strconv.FormatInt(x, 10)
	case int:
		s = strconv.Itoa(x)
	case json.Number:
		s = x.String()
	case string:
		if _, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return nil, fmt.Errorf("want a number, got %q", x)
		}
		s = strings.TrimSpace(x)
	default:
		return nil, fmt.Errorf("want a number, got %T", v)
	}
	return map[string]any{"__class__": "Decimal", "decimal": s}, nil
}

// stamp is the record's change time: write_date, or create_date for a
// record never written since.
func stamp(r map[string]any) time.Time {
	if t := timeOf(r["write_date"]); !t.IsZero() {
		return t
	}
	return timeOf(r["create_date"])
}

// text is a field value written to a Char field: strings as they are,
// numbers in decimal, nil as "".
func text(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

func list(v any) []map[string]any {
	xs, _ := v.([]any)
	out := make([]map[string]any, 0, len(xs))
	for _, x := range xs {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// truthy reads a Boolean as trytond answers it: true/false, or 1/0 from
// search_read on its SQLite backend (which hands the column as stored).
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case json.Number:
		return x.String() != "0"
	case float64:
		return x != 0
	case int64:
		return x != 0
	}
	return false
}
