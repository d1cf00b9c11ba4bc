// Command floor is the benchmark's floor server: what a stream processor
// that persists nothing does with a change. It takes the same signed webhook
// Duplex takes (POST /hooks/<anything>), checks the signature, decodes the
// JSON, evaluates the same expr trigger (compiled once), runs the same
// outgoing and incoming JavaScript in pooled goja runtimes (each program
// compiled once, each runtime reused), and appends the result to a buffered
// file. Nothing is durable. It prints "ready <url>" when it listens.
package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/dop251/goja"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/duplexsync/duplex/bench"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	out := flag.String("out", os.DevNull, "file the results are appended to")
	secret := flag.String("secret", "hush", "webhook secret")
	flag.Parse()

	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fail(err)
	}
	fl, err := newFloor(f, []byte(*secret))
	if err != nil {
		fail(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fail(err)
	}
	fmt.Printf("ready http://%s\n", ln.Addr())
	fail(http.Serve(ln, fl))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(1)
}

type floor struct {
	secret   []byte
	trigger  *vm.Program
	outgoing *goja.Program
	incoming *goja.Program
	pool     chan *runtimeSlot

	mu sync.Mutex
	w  *bufio.Writer
}

type runtimeSlot struct {
	vm       *goja.Runtime
	outgoing goja.Callable
	incoming goja.Callable
}

func newFloor(w io.Writer, secret []byte) (*floor, error) {
	trig, err := expr.Compile(bench.Trigger, expr.Env(map[string]any{"labels": []any{}}), expr.AsBool())
	if err != nil {
		return nil, err
	}
	wrap := func(name, params, src string) (*goja.Program, error) {
		return goja.Compile(name, `(function (`+params+`) { "use strict";`+"\n"+src+"\n})", true)
	}
	og, err := wrap("outgoing.js", "entity, previous, replica, ctx", bench.Outgoing)
	if err != nil {
		return nil, err
	}
	in, err := wrap("incoming.js", "replica, previous, entity, ctx", bench.Incoming)
	if err != nil {
		return nil, err
	}
	fl := &floor{secret: secret, trigger: trig, outgoing: og, incoming: in,
		pool: make(chan *runtimeSlot, runtime.GOMAXPROCS(0)), w: bufio.NewWriterSize(w, 64<<10)}
	for range cap(fl.pool) {
		s := &runtimeSlot{vm: goja.New()}
		for _, p := range []struct {
			prog *goja.Program
			fn   *goja.Callable
		}{{og, &s.outgoing}, {in, &s.incoming}} {
			v, err := s.vm.RunProgram(p.prog)
			if err != nil {
				return nil, err
			}
			*p.fn, _ = goja.AssertFunction(v)
		}
		fl.pool <- s
	}
	return fl, nil
}

func (fl *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != "POST" || !strings.HasPrefix(r.URL.Path, "/hooks/") {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	sig, _ := strings.CutPrefix(r.Header.Get("X-Signature-256"), "sha256=")
	mac := hmac.New(sha256.New, fl.secret)
	mac.Write(body)
	if got, err := hex.DecodeString(sig); err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		http.Error(w, "bad signature", 401)
		return
	}
	var entity map[string]any
	if err := json.Unmarshal(body, &entity); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	match, err := expr.Run(fl.trigger, entity)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	if match != true {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	s := <-fl.pool
	result, err := s.run(entity)
	fl.pool <- s
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	line, err := json.Marshal(result)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	fl.mu.Lock()
	fl.w.Write(line)
	fl.w.WriteByte('\n')
	fl.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// run is the transform: outgoing script on the entity, incoming script on
// the replica (a first sync: the target entity starts empty).
func (s *runtimeSlot) run(entity map[string]any) (map[string]any, error) {
	ctx := s.vm.NewObject()
	_ = ctx.Set("firstSync", true)
	replica := s.vm.NewObject()
	if _, err := s.outgoing(goja.Undefined(), s.vm.ToValue(entity), goja.Null(), replica, ctx); err != nil {
		return nil, err
	}
	target := s.vm.NewObject()
	if _, err := s.incoming(goja.Undefined(), replica, goja.Null(), target, ctx); err != nil {
		return nil, err
	}
	out, _ := target.Export().(map[string]any)
	return out, nil
}
