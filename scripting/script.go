// Package scripting runs user scripts (JavaScript, in a goja sandbox) and
// trigger conditions (expr). It knows nothing of sync, connectors or HTTP:
// maps go in, maps come out.
package scripting

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

// Kind says which direction a script maps.
type Kind string

const (
	// KindOutgoing maps a local entity to the replica sent to the other side.
	KindOutgoing Kind = "outgoing"
	// KindIncoming maps a received replica onto the local entity.
	KindIncoming Kind = "incoming"
)

// Error kinds, the values of Error.Kind.
const (
	ErrorCompile = "compile"
	ErrorRuntime = "runtime"
	ErrorTimeout = "timeout"
)

// ErrTimeout is wrapped by every *Error of kind "timeout": the run hit
// Options.Timeout, the context deadline, or the context was cancelled.
var ErrTimeout = errors.New("script deadline exceeded")

// Error is a compile, runtime or timeout error of a script or trigger, with
// the position in the user's source: 1-based line and column, the column
// counted in Unicode code points. Line and Column are 0 when unknown.
type Error struct {
	Script  string // script name, "trigger" for triggers
	Kind    string // ErrorCompile, ErrorRuntime or ErrorTimeout
	Line    int
	Column  int
	Message string
	Rule    int // a validation rule's 1-based position in its list; 0 otherwise
	err     error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.Script, e.Line, e.Column, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Script, e.Message)
}

// Unwrap returns the cause: ErrTimeout (joined with the context's cause)
// for timeouts, else the underlying goja or expr error when there is one.
func (e *Error) Unwrap() error { return e.err }

// Script is a compiled script version. It is immutable and safe to share
// between goroutines: the goja.Program it wraps can run in many runtimes at once.
type Script struct {
	name      string
	kind      Kind
	src       string
	prog      *goja.Program // nil for a Prepared script until it runs here
	lazy      *lazyProgram  // Prepared only
	prefixLen int           // bytes of wrapper before the user's source on line 1

	reads map[string]map[string]bool // by read-only input, when known: see InputReads
}

// params are the bindings each kind of script sees, in call order.
var params = map[Kind][]string{
	KindOutgoing: {"entity", "previous", "replica", "ctx", "log"},
	KindIncoming: {"replica", "previous", "entity", "ctx", "log", "skip"},
}

// wrapperPrefix builds the text put before the user's source, all on one
// line so user line numbers stay right (only line 1 columns shift).
//
// The source runs as the body of a function so that its top-level
// let/const/function are locals of one run and never collide across runs.
// It runs in strict mode: assigning an undeclared name throws instead of
// creating a global, and writes to frozen objects (inputs, built-ins) throw
// instead of failing silently. The bindings are const so that the common
// mistake `replica = {...}` (which would be silently lost) throws.
func wrapperPrefix(kind Kind) string {
	var b strings.Builder
	b.WriteString("(function(")
	for i, p := range params[kind] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("$duplex_" + p)
	}
	b.WriteString(`){"use strict";const `)
	for i, p := range params[kind] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p + "=$duplex_" + p)
	}
	b.WriteByte(';')
	return b.String()
}

const wrapperSuffix = "\n})"

// compilations counts every script and trigger compilation, so that tests
// can prove nothing on the per-event path compiles.
var compilations atomic.Int64

// Compilations returns how many scripts and triggers were compiled so far.
func Compilations() int64 { return compilations.Load() }

// MaxSourceBytes bounds a script's source, before anything parses it.
// goja's parser and compiler recurse once per level of nesting, on the
// goroutine's stack: 300,000 nested brackets (a 1 MiB request body holds
// 500,000) overflowed Go's 1 GB stack, a fatal error that no recover
// catches, and ended the server on a save; a chain of 100,000 "1+" took 90
// s of CPU to compile. At 64 KiB the deepest nesting is a ninth of what
// overflowed (TestSourceLimit compiles the deepest forms found at the
// limit), and the templates' largest script is 3 KB.
const MaxSourceBytes = 64 << 10

// ErrSourceTooLarge is the cause of a compile error for a source over
// MaxSourceBytes.
var ErrSourceTooLarge = errors.New("script source too large")

// Compile compiles src once. The returned error is an *Error of kind
// "compile" with the position in src.
func Compile(name string, kind Kind, src string) (*Script, error) {
	compilations.Add(1)
	limitRegexpMatches() // literals may compile to regexp2 here
	if _, ok := params[kind]; !ok {
		return nil, &Error{Script: name, Kind: ErrorCompile, Message: fmt.Sprintf("unknown script kind %q", kind)}
	}
	s := &Script{name: name, kind: kind, src: src}
	if len(src) > MaxSourceBytes {
		return nil, s.compileError(0, 0, fmt.Sprintf("RangeError: the script is %d bytes; the most a script may have is %d (64 KiB)", len(src), MaxSourceBytes), ErrSourceTooLarge)
	}
	prefix := wrapperPrefix(kind)
	s.prefixLen = len(prefix)

	prg, err := parser.ParseFile(nil, name, prefix+src+wrapperSuffix, 0, parser.WithDisableSourceMaps)
	if err != nil {
		var list parser.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			p := list[0].Position
			msg := "SyntaxError: " + list[0].Message
			if p.Line > strings.Count(src, "\n")+1 { // the parser stopped in the wrapper's closing "})"
				msg = "SyntaxError: Unexpected end of script (unclosed block or bracket?)"
			}
			return nil, s.compileError(p.Line, p.Column, msg, err)
		}
		return nil, s.compileError(0, 0, err.Error(), err)
	}
	// Source such as "}); (function(){" would close the wrapper and run code
	// at the global scope; refuse anything but the single wrapper function.
	if len(prg.Body) != 1 || wrapperFunc(prg.Body[0]) == nil {
		line, col := 0, 0
		if fl := wrapperFunc(prg.Body[0]); fl != nil {
			p := prg.File.Position(int(fl.Body.RightBrace) - 1)
			line, col = p.Line, p.Column
		}
		return nil, s.compileError(line, col, "SyntaxError: Unexpected '}' closing the script body", nil)
	}
	s.scanReads(wrapperFunc(prg.Body[0]))
	s.prog, err = goja.CompileAST(prg, true)
	if err != nil {
		var cse *goja.CompilerSyntaxError
		if errors.As(err, &cse) && cse.File != nil {
			p := cse.File.Position(cse.Offset)
			return nil, s.compileError(p.Line, p.Column, "SyntaxError: "+cse.Message, err)
		}
		return nil, s.compileError(0, 0, err.Error(), err)
	}
	return s, nil
}

// Prepared is a script that Compile accepted in another process (a sandbox
// worker: compiling user code costs CPU that grows faster than the source,
// so the server never parses or compiles it itself) with the fields it
// reads of each input (InputReads, ReadLists) as that Compile found them.
// It is compiled here only if it runs here (an in-process Runner), once.
func Prepared(name string, kind Kind, src string, reads map[string][]string) *Script {
	s := &Script{name: name, kind: kind, src: src, prefixLen: len(wrapperPrefix(kind)), lazy: &lazyProgram{}}
	for input, fields := range reads {
		if !slices.Contains(scannedInputs(kind), input) {
			continue
		}
		if s.reads == nil {
			s.reads = map[string]map[string]bool{}
		}
		set := make(map[string]bool, len(fields))
		for _, f := range fields {
			set[f] = true
		}
		s.reads[input] = set
	}
	return s
}

type lazyProgram struct {
	once sync.Once
	prog *goja.Program
	err  error
}

// program is the compiled program, compiling a Prepared script on its first
// run in this process.
func (s *Script) program() (*goja.Program, error) {
	if s.prog != nil || s.lazy == nil {
		return s.prog, nil
	}
	s.lazy.once.Do(func() {
		c, err := Compile(s.name, s.kind, s.src)
		if err != nil {
			s.lazy.err = err
			return
		}
		s.lazy.prog = c.prog
	})
	return s.lazy.prog, s.lazy.err
}

// ReadLists is InputReads of every input whose reads are known, as sorted
// lists, for a sandbox worker's answer.
func (s *Script) ReadLists() map[string][]string {
	if len(s.reads) == 0 {
		return nil
	}
	out := make(map[string][]string, len(s.reads))
	for input, set := range s.reads {
		fields := make([]string, 0, len(set))
		for f := range set {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		out[input] = fields
	}
	return out
}

func wrapperFunc(st0 ast.Statement) *ast.FunctionLiteral {
	st, ok := st0.(*ast.ExpressionStatement)
	if !ok {
		return nil
	}
	fl, _ := st.Expression.(*ast.FunctionLiteral)
	return fl
}

// Name returns the name given to Compile.
func (s *Script) Name() string { return s.name }

// Kind returns the kind given to Compile.
func (s *Script) Kind() Kind { return s.kind }

// Source returns the user's source as given to Compile.
func (s *Script) Source() string { return s.src }

func (s *Script) compileError(line, col int, msg string, cause error) *Error {
	line, col = s.userPos(line, col)
	return &Error{Script: s.name, Kind: ErrorCompile, Line: line, Column: col, Message: msg, err: cause}
}

// userPos maps a goja position (1-based line, 1-based byte column, in the
// wrapped source) to the user's source (1-based line, 1-based code point
// column). Positions inside the wrapper are clamped to the user's text.
func (s *Script) userPos(line, col int) (int, int) {
	if line <= 0 {
		return 0, 0
	}
	if line == 1 {
		col -= s.prefixLen
	}
	lines := strings.Split(s.src, "\n")
	if line > len(lines) { // in the suffix: e.g. an unclosed block; point at the end of the source
		line = len(lines)
		col = len(lines[line-1]) + 1
	}
	text := lines[line-1]
	col = max(col, 1)
	if col-1 > len(text) {
		col = len(text) + 1
	}
	return line, utf8.RuneCountInString(text[:col-1]) + 1
}

// position finds the innermost frame of the user's script in a goja stack.
func (s *Script) position(stack []goja.StackFrame) (int, int) {
	for i := range stack {
		if stack[i].SrcName() == s.name {
			p := stack[i].Position()
			return s.userPos(p.Line, p.Column)
		}
	}
	return 0, 0
}
