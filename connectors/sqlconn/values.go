package sqlconn

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// timeLayouts are tried in order when a time arrives as text. Parsing
// accepts a fraction of a second after the seconds even where the layout
// has none.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
}

// parseTime reads a time written as text; times without a zone are UTC.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// positionOf reads a scanned updated or created value: the text to keep in
// a cursor, whether the column compares as text (SQLite, or a text column
// elsewhere) rather than as a timestamp, and the time it stands for.
func positionOf(v any) (at string, text bool, t time.Time) {
	switch x := v.(type) {
	case time.Time:
		t = x.UTC()
		return t.Format(time.RFC3339Nano), false, t
	case []byte:
		t, _ = parseTime(string(x))
		return string(x), true, t
	case string:
		t, _ = parseTime(x)
		return x, true, t
	case nil:
		return "", true, time.Time{}
	default:
		s := fmt.Sprint(x)
		t, _ = parseTime(s)
		return s, true, t
	}
}

func textOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	default:
		return fmt.Sprint(x)
	}
}

// readValue turns a scanned column into the field's Go value. A value that
// does not fit the declared type comes back as text rather than being lost.
func readValue(typ connectors.FieldType, v any) any {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	if v == nil {
		return nil
	}
	switch typ {
	case connectors.TypeNumber:
		return readNumber(v)
	case connectors.TypeBool:
		return readBool(v)
	case connectors.TypeTime:
		if t, ok := v.(time.Time); ok {
			return t.UTC().Format(time.RFC3339Nano)
		}
		s := textOf(v)
		if t, ok := parseTime(s); ok {
			return t.Format(time.RFC3339Nano)
		}
		return s
	case connectors.TypeList:
		return splitList(readString(v))
	default:
		return readString(v)
	}
}

func readString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}

func readNumber(v any) any {
	switch x := v.(type) {
	case int64, float64:
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return float64(x)
	case uint32:
		return int64(x)
	case float32:
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return f
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	}
	s := strings.TrimSpace(textOf(v))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return textOf(v)
}

func readBool(v any) any {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	case int32:
		return x != 0
	case float64:
		return x != 0
	}
	s := strings.TrimSpace(textOf(v))
	if b, err := strconv.ParseBool(s); err == nil {
		return b
	}
	return s
}

// splitList reads a comma-separated list: items trimmed, empty ones dropped.
func splitList(s string) []any {
	out := []any{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var errType = errors.New("wrong value type")

// writeValue turns a field value from the engine into the argument to store.
// nil stores NULL.
func (d dialect) writeValue(typ connectors.FieldType, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case connectors.TypeNumber:
		return writeNumber(v)
	case connectors.TypeBool:
		return writeBool(v)
	case connectors.TypeTime:
		return d.writeTime(v)
	case connectors.TypeList:
		return writeList(v)
	default:
		return writeString(v)
	}
}

func writeString(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	}
	return nil, fmt.Errorf("%w: a string field takes text, not %T", errType, v)
}

func writeNumber(v any) (any, error) {
	var f float64
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case float32:
		f = float64(x)
	case float64:
		f = x
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		var err error
		if f, err = x.Float64(); err != nil {
			return nil, fmt.Errorf("%w: %q is not a number", errType, x)
		}
	case string:
		s := strings.TrimSpace(x)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		var err error
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return nil, fmt.Errorf("%w: %q is not a number", errType, x)
		}
	default:
		return nil, fmt.Errorf("%w: a number field takes a number, not %T", errType, v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%w: %v is not a storable number", errType, f)
	}
	// JSON numbers arrive as float64: whole ones go out as integers so that
	// integer columns take them in every database.
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f), nil
	}
	return f, nil
}

func writeBool(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, nil
		}
	case float64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case int:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case int64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	}
	return nil, fmt.Errorf("%w: a bool field takes true or false, not %v", errType, v)
}

func (d dialect) writeTime(v any) (any, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		if strings.TrimSpace(x) == "" {
			return nil, nil
		}
		var ok bool
		if t, ok = parseTime(x); !ok {
			return nil, fmt.Errorf("%w: %q is not a time (want RFC 3339)", errType, x)
		}
	default:
		return nil, fmt.Errorf("%w: a time field takes an RFC 3339 string, not %T", errType, v)
	}
	t = t.UTC()
	if d == sqlite {
		// Full precision: a time written and read back compares equal.
		return t.Format(time.RFC3339Nano), nil
	}
	return t, nil
}

// writeList stores a list as comma-separated text, as a person would type
// it in any client. Items are trimmed and empty ones dropped; an item with a
// comma in it cannot be stored.
func writeList(v any) (any, error) {
	var items []string
	add := func(s string) error {
		s = strings.TrimSpace(s)
		if strings.Contains(s, ",") {
			return fmt.Errorf("%w: list item %q contains a comma", errType, s)
		}
		if s != "" {
			items = append(items, s)
		}
		return nil
	}
	switch x := v.(type) {
	case string:
		for _, s := range strings.Split(x, ",") {
			_ = add(s)
		}
	case []string:
		for _, s := range x {
			if err := add(s); err != nil {
				return nil, err
			}
		}
	case []any:
		for _, e := range x {
			var s string
			switch y := e.(type) {
			case string:
				s = y
			case float64, int, int64, bool, json.Number:
				s = fmt.Sprint(y)
			default:
				return nil, fmt.Errorf("%w: list item %v (%T) is not text", errType, e, e)
			}
			if err := add(s); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%w: a list field takes a list of strings, not %T", errType, v)
	}
	return strings.Join(items, ","), nil
}
