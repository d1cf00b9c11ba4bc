// Package sandbox runs scripts, triggers and rules in worker processes (the
// same binary, started with DUPLEX_SANDBOX_WORKER=1), each limited by the OS
// (address space, CPU time) and killed at its run's deadline, so that no
// user code can crash, stall or bloat the server: by construction, not by
// guarding built-ins one by one.
//
// The protocol: the parent writes a batch of runs as one frame on the
// worker's stdin; the worker answers each run with one frame on stdout, in
// order, so the parent always knows which run is in progress (and which one
// to blame when the worker dies). A frame is a 4-byte big-endian length and a
// chunk of one gob stream. Code is named by a hash of its source; the worker
// compiles it once and keeps it (bounded LRU); the parent sends the source
// only to a worker that has not seen it.
package sandbox

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/duplexsync/duplex/scripting"
)

// Environment of a worker process.
const (
	EnvWorker = "DUPLEX_SANDBOX_WORKER" // "1": ServeIfWorker serves and exits
	envMemory = "DUPLEX_SANDBOX_MEMORY" // address-space limit in bytes
	envCPU    = "DUPLEX_SANDBOX_CPU"    // CPU-time limit in seconds
)

// maxFrame bounds one frame either way: a result larger than this fails its
// run (in the worker, before it is sent), and the parent refuses to read a
// larger one.
const maxFrame = 64 << 20

type op uint8

const (
	opOutgoing op = iota + 1
	opIncoming
	opMatch
	opCheck
	opUnique
	opCompile // a script's Compile alone: its error, or the fields it reads
)

// code is what a worker compiles: a script (Name, Kind, Src), a trigger
// (Src, Env) or a rule list (Rules).
type code struct {
	Name  string
	Kind  scripting.Kind
	Src   string
	Env   map[string]any
	Rules []scripting.Rule
}

type request struct {
	Runs []runReq
}

type runReq struct {
	Op      op
	Key     string // hash of the code
	Code    *code  // nil: the worker should have it (else it answers Missing)
	Timeout time.Duration
	Meta    scripting.Meta
	Args    [3][]byte // the run's input maps, each encoded by encodeMap (value.go)
	Lookups []scripting.Lookup
	Found   [][]scripting.Found
	// IfMatched: run only if the run before it in the same request is a
	// trigger that matched; else answer NotRun (MatchOutgoing).
	IfMatched bool
}

type runRes struct {
	Missing    bool // the worker does not have Key: send the code
	Err        *wireErr
	Out        []byte         // the replica or entity, encoded by encodeMap (value.go)
	out        map[string]any // Out decoded, in the parent (not sent)
	Log        []string
	Skipped    bool
	SkipReason string
	Bool       bool
	Rules      []scripting.RuleResult
	NotRun     bool                // IfMatched, and the trigger before it did not match
	Reads      map[string][]string // opCompile: the script's ReadLists
	Heap       uint64              // the worker's live heap after the run
	CPU        time.Duration       // the worker's CPU time so far, on a message's last result (0 on the others)
}

type wireErr struct {
	Script, Kind, Message string
	Line, Column, Rule    int
}

func (e *wireErr) err() error {
	if e.Kind == "" { // not a script error: a conversion, an internal error
		return errors.New(e.Message)
	}
	return scripting.NewError(e.Script, e.Kind, e.Line, e.Column, e.Rule, e.Message)
}

func toWire(err error) *wireErr {
	if err == nil {
		return nil
	}
	var se *scripting.Error
	if errors.As(err, &se) {
		return &wireErr{Script: se.Script, Kind: se.Kind, Message: se.Message, Line: se.Line, Column: se.Column, Rule: se.Rule}
	}
	return &wireErr{Message: err.Error()}
}

var registerOnce sync.Once

// register names the concrete types values may have inside interfaces;
// normalize turns anything else into these.
func register() {
	registerOnce.Do(func() {
		gob.Register(map[string]any{})
		gob.Register([]any{})
		gob.Register(json.Number(""))
		gob.Register(time.Time{})
	})
}

// normalize returns m with every value of a type gob was not told about
// (see register) turned into maps, lists and scalars gob knows, keeping
// every plain value as it is (a number stays a float64 or an int, which
// typed triggers rely on); m itself when there is none (the common case,
// no copy).
func normalize(m map[string]any) map[string]any {
	if m == nil || plain(m, 0) {
		return m
	}
	out, _ := convert(m, 0).(map[string]any)
	return out
}

func convert(v any, depth int) any {
	if depth > 100 {
		return nil // deeper than any input the scripts accept (64 levels)
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = convert(e, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = convert(e, depth+1)
		}
		return out
	}
	if plain(v, 0) {
		return v
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return convert(rv.Elem().Interface(), depth+1)
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			out := make(map[string]any, rv.Len())
			for it := rv.MapRange(); it.Next(); {
				out[it.Key().String()] = convert(it.Value().Interface(), depth+1)
			}
			return out
		}
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = convert(rv.Index(i).Interface(), depth+1)
		}
		return out
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint()
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	// Structs and the rest: their JSON form, as a connector would give it.
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	var out any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&out) != nil {
		return string(b)
	}
	return out
}

func plain(v any, depth int) bool {
	if depth > 100 {
		return false
	}
	switch x := v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, json.Number, time.Time, []string:
		return true
	case map[string]any:
		for _, e := range x {
			if !plain(e, depth+1) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !plain(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// restore undoes what gob does to an empty list inside an interface (it
// decodes as a nil slice, which JSON writes as null, so a replica's
// `labels: []` would clear a list on the other side).
func restore(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch e.(type) {
			case map[string]any, []any, []string:
				x[k] = restore(e)
			}
		}
	case []any:
		if x == nil {
			return []any{}
		}
		for i, e := range x {
			switch e.(type) {
			case map[string]any, []any, []string:
				x[i] = restore(e)
			}
		}
	case []string:
		if x == nil {
			return []string{}
		}
	}
	return v
}

func restoreMap(m map[string]any) map[string]any {
	if m != nil {
		restore(m)
	}
	return m
}

// frameWriter writes each value as one frame of one gob stream.
type frameWriter struct {
	w   *bufio.Writer
	buf bytes.Buffer
	enc *gob.Encoder
}

func newFrameWriter(w io.Writer) *frameWriter {
	f := &frameWriter{w: bufio.NewWriterSize(w, 64<<10)}
	f.enc = gob.NewEncoder(&f.buf)
	return f
}

var errTooBig = errors.New("sandbox: frame over the size limit")

// encode puts v in the buffer; send writes the buffer as a frame.
func (f *frameWriter) encode(v any) error {
	f.buf.Reset()
	return f.enc.Encode(v)
}

func (f *frameWriter) send() error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(f.buf.Len()))
	if _, err := f.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := f.w.Write(f.buf.Bytes()); err != nil {
		return err
	}
	return f.w.Flush()
}

func (f *frameWriter) write(v any) error {
	if err := f.encode(v); err != nil {
		return err
	}
	if f.buf.Len() > maxFrame {
		return fmt.Errorf("%w: %d bytes", errTooBig, f.buf.Len())
	}
	return f.send()
}

// frameReader yields the payload of consecutive frames as one stream,
// refusing a frame over maxFrame before reading it.
type frameReader struct {
	r    *bufio.Reader
	left int
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.left == 0 {
		var hdr [4]byte
		if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxFrame {
			return 0, fmt.Errorf("%w: %d bytes", errTooBig, n)
		}
		f.left = int(n)
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	return n, err
}

func newDecoder(r io.Reader) *gob.Decoder {
	return gob.NewDecoder(&frameReader{r: bufio.NewReaderSize(r, 64<<10)})
}

// hello is the worker's first frame: it proves the worker started under its
// limits, and it carries a value of every type a result may hold, so that
// the gob stream has described them all before any real result; a result
// frame dropped for its size can then never take a type description with it.
func hello() runRes {
	return runRes{
		Err:   &wireErr{Kind: "hello"},
		Out:   []byte{tagNil},
		Rules: []scripting.RuleResult{{Value: map[string]any{"m": map[string]any{"a": []any{"s", 1, int64(1), uint64(1), 1.5, float32(1), true, nil, json.Number("1"), time.Time{}, []string{"x"}}}}}},
		Log:   []string{"x"},
	}
}
