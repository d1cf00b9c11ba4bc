package scripting

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dop251/goja"
)

const (
	maxDepth    = 64      // nesting of objects/arrays, both ways; also stops Go cycles
	maxArrayLen = 1 << 20 // stops `a[1e9] = 1` exporting a billion nulls
	// DefaultMaxOutputBytes caps the size of a script's output (replica or
	// entity), counted as its JSON would be: string bytes, keys, 8 bytes a
	// number, 2 a container. A test run returned 52 MB before.
	DefaultMaxOutputBytes = 8 << 20
)

// ErrOutputTooLarge is wrapped by the error of a run whose output is over
// Options.MaxOutputBytes.
var ErrOutputTooLarge = errors.New("script output too large")

// pathError is a conversion error with the path where it happened.
type pathError struct {
	path     []string // innermost last
	msg      string
	tooLarge bool // the output size limit, not a bad value
}

func (e *pathError) Error() string {
	if e.tooLarge {
		return strings.Join(e.path, ".")
	}
	return strings.Join(e.path, ".") + ": " + e.msg
}

func at(key string, err error) error {
	if pe, ok := err.(*pathError); ok {
		pe.path = slices.Insert(pe.path, 0, key)
		return pe
	}
	return err
}

// input converts a Go map into a native JS object (never a host-backed
// one, which would behave unlike JS objects and expose Go's maps). A nil
// map becomes null if nullable, else {}.
//
// With readOnly, properties are created non-writable and every object and
// array is queued in sb.sealing for one seal call (preventExtensions on
// objects, freeze on arrays) before the script runs: the effect of a deep
// Object.freeze, which measured ~10x slower (~50µs for the bench entity,
// more than the script itself).
func (sb *sandbox) input(m map[string]any, name string, nullable, readOnly bool) (goja.Value, error) {
	if m == nil && nullable {
		return goja.Null(), nil
	}
	v, err := sb.object(m, 0, readOnly)
	if err != nil {
		return nil, fmt.Errorf("scripting: input %w", at(name, err))
	}
	return v, nil
}

func (sb *sandbox) toJS(v any, depth int, ro bool) (goja.Value, error) {
	if depth > maxDepth {
		return nil, &pathError{msg: fmt.Sprintf("nested deeper than %d levels (cyclic?)", maxDepth)}
	}
	switch x := v.(type) {
	case nil:
		return goja.Null(), nil
	case string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return sb.vm.ToValue(x), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return sb.vm.ToValue(i), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, &pathError{msg: "invalid json.Number " + x.String()}
		}
		return sb.vm.ToValue(f), nil
	case time.Time:
		return sb.vm.ToValue(x.UTC().Format(time.RFC3339Nano)), nil
	case map[string]any:
		return sb.object(x, depth, ro)
	case []any:
		vals := make([]any, len(x))
		for i, e := range x {
			jv, err := sb.toJS(e, depth+1, ro)
			if err != nil {
				return nil, at(strconv.Itoa(i), err)
			}
			vals[i] = jv
		}
		return sb.array(vals, ro)
	case []string:
		vals := make([]any, len(x))
		for i, e := range x {
			vals[i] = sb.vm.ToValue(e)
		}
		return sb.array(vals, ro)
	}
	return sb.reflectToJS(reflect.ValueOf(v), depth, ro)
}

// array makes a JS array of vals. Read-only, its elements and length are
// defined non-writable and non-configurable here and seal makes it
// non-extensible: frozen, as Object.freeze would leave it, without freeze's
// walk over the array's keys (the costlier part of a run's inputs).
func (sb *sandbox) array(vals []any, ro bool) (*goja.Object, error) {
	a := sb.vm.NewArray(vals...)
	if !ro {
		return a, nil
	}
	for i, v := range vals {
		if err := a.DefineDataProperty(strconv.Itoa(i), v.(goja.Value), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE); err != nil {
			return nil, &pathError{msg: err.Error()}
		}
	}
	if err := a.DefineDataProperty("length", sb.vm.ToValue(len(vals)), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE); err != nil {
		return nil, &pathError{msg: err.Error()}
	}
	sb.sealing = append(sb.sealing, a)
	return a, nil
}

func (sb *sandbox) object(m map[string]any, depth int, ro bool) (*goja.Object, error) {
	// Sorted keys so that scripts see the same key order on every run.
	var small [32]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	obj := sb.vm.NewObject()
	flag := goja.FLAG_TRUE
	if ro {
		flag = goja.FLAG_FALSE
		sb.sealing = append(sb.sealing, obj)
	}
	for _, k := range keys {
		jv, err := sb.toJS(m[k], depth+1, ro)
		if err != nil {
			return nil, at(k, err)
		}
		// Define, not Set: "__proto__" stays a plain key, and inherited
		// read-only properties of the frozen Object.prototype do not refuse it.
		if err := obj.DefineDataProperty(k, jv, flag, flag, goja.FLAG_TRUE); err != nil {
			return nil, at(k, &pathError{msg: err.Error()})
		}
	}
	return obj, nil
}

// reflectToJS handles other maps with string keys and slices, e.g.
// map[string]string or []map[string]any.
func (sb *sandbox) reflectToJS(rv reflect.Value, depth int, ro bool) (goja.Value, error) {
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			return goja.Null(), nil
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return sb.object(m, depth, ro)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return goja.Null(), nil
		}
		vals := make([]any, rv.Len())
		for i := range vals {
			jv, err := sb.toJS(rv.Index(i).Interface(), depth+1, ro)
			if err != nil {
				return nil, at(strconv.Itoa(i), err)
			}
			vals[i] = jv
		}
		return sb.array(vals, ro)
	}
	if !rv.IsValid() {
		return goja.Null(), nil
	}
	return nil, &pathError{msg: fmt.Sprintf("unsupported Go type %s", rv.Type())}
}

// exportRoot converts the script's output object to plain Go values. It may
// run JS (getters, proxy traps), so it runs under Try; an uncatchable
// interrupt still panics through to exec.
func (sb *sandbox) exportRoot(obj *goja.Object, name string) (m map[string]any, err error) {
	sb.outLeft = sb.outMax
	if ex := sb.vm.Try(func() {
		var v any
		var stack [maxDepth]*goja.Object
		v, err = sb.export(obj, 0, stack[:0])
		m, _ = v.(map[string]any)
	}); ex != nil {
		return nil, ex
	}
	if pe, ok := err.(*pathError); ok {
		if pe.tooLarge {
			msg := fmt.Sprintf("%s over the output size limit of %d MiB (at %s)", name, sb.outMax>>20, at(name, pe).Error())
			return nil, &Error{Kind: ErrorRuntime, Message: "RangeError: " + msg, err: fmt.Errorf("%w: %s", ErrOutputTooLarge, msg)}
		}
		return nil, &Error{Kind: ErrorRuntime, Message: "TypeError: " + at(name, pe).Error(), err: err}
	}
	return m, err
}

// spend counts n bytes of output; false once over the limit.
func (sb *sandbox) spend(n int) bool {
	sb.outLeft -= int64(n)
	return sb.outLeft >= 0
}

// export converts a JS value to map[string]any, []any, string, int64
// (integral numbers), float64, bool or nil. Functions, cycles and exotic
// objects (Map, Set, ...) are refused; shared references are fine.
func (sb *sandbox) export(v goja.Value, depth int, stack []*goja.Object) (any, error) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, nil
	}
	if _, ok := v.(*goja.Symbol); ok {
		return nil, &pathError{msg: "cannot export a Symbol"}
	}
	obj, ok := v.(*goja.Object)
	if !ok {
		// ev is returned as it is where it can be: returning x would box
		// the value into an interface a second time (an allocation per
		// string of every script's output).
		switch ev := v.Export(); x := ev.(type) {
		case string:
			if !sb.spend(len(x) + 2) {
				return nil, &pathError{tooLarge: true}
			}
			return ev, nil
		case bool:
			sb.spend(5)
			return ev, nil
		case int64:
			sb.spend(8)
			return ev, nil
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, &pathError{msg: jsNumber(x) + " is not a valid value (JSON has no NaN or Infinity); use null, a number or a string"}
			}
			sb.spend(8)
			return normNumber(x), nil
		case *big.Int:
			return nil, &pathError{msg: "cannot export a BigInt; use a number or a string"}
		default:
			return nil, &pathError{msg: fmt.Sprintf("cannot export %s", v.String())}
		}
	}
	if _, isFn := goja.AssertFunction(obj); isFn {
		return nil, &pathError{msg: "cannot export a function"}
	}
	if slices.Contains(stack, obj) {
		return nil, &pathError{msg: "cannot export a cyclic structure"}
	}
	if depth >= maxDepth {
		return nil, &pathError{msg: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
	}
	stack = append(stack, obj)
	if !sb.spend(2) {
		return nil, &pathError{tooLarge: true}
	}
	switch cls := obj.ClassName(); cls {
	case "Array":
		n := obj.Get("length").ToInteger()
		if n > maxArrayLen {
			return nil, &pathError{msg: fmt.Sprintf("array longer than %d", maxArrayLen)}
		}
		out := make([]any, n)
		for i := range out {
			k := strconv.Itoa(i)
			e, err := sb.export(obj.Get(k), depth+1, stack)
			if err != nil {
				return nil, at(k, err)
			}
			out[i] = e
		}
		return out, nil
	case "Date":
		t, ok := obj.Export().(time.Time)
		if !ok || t.IsZero() {
			return nil, nil
		}
		return t.UTC().Format(time.RFC3339Nano), nil
	case "Object":
		switch obj.ExportType() {
		case plainType, proxyType:
		default: // Map, Set, typed arrays, Promise, ...
			return nil, &pathError{msg: fmt.Sprintf("cannot export %s; use a plain object or array", obj.String())}
		}
		keys := obj.Keys()
		out := make(map[string]any, len(keys))
		for _, k := range keys {
			if !sb.spend(len(k) + 4) {
				return nil, at(k, &pathError{tooLarge: true})
			}
			e, err := sb.export(obj.Get(k), depth+1, stack)
			if err != nil {
				return nil, at(k, err)
			}
			out[k] = e
		}
		return out, nil
	default:
		return nil, &pathError{msg: fmt.Sprintf("cannot export a %s object; use a plain object or array", cls)}
	}
}

var (
	plainType = reflect.TypeFor[map[string]any]()
	proxyType = reflect.TypeFor[goja.Proxy]()
)

// jsNumber names NaN and the infinities as scripts write them.
func jsNumber(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return "NaN"
}

// normNumber returns integral numbers as int64 and others as float64.
func normNumber(f float64) any {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f)
	}
	return f
}
