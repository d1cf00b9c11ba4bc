package scripting

import (
	"context"
	"testing"

	"github.com/dop251/goja"
	"github.com/expr-lang/expr"
)

// A realistic mapping: ten fields, a value map, a filter, a nested read.
const benchScript = `
replica.title = entity.subject;
replica.body = entity.description || "";
replica.state = entity.status === "closed" ? "done" : "open";
replica.priority = ({low: 1, normal: 2, high: 3, urgent: 4})[entity.priority] || 2;
replica.labels = entity.tags.filter(t => !t.startsWith("internal:"));
replica.assignee = entity.assignee ? entity.assignee.login : null;
replica.due = entity.due_date || null;
replica.estimate = entity.estimate_hours * 60;
replica.project = entity.project.key;
replica.external_id = String(entity.id);
if (previous && previous.title !== replica.title) log("title changed", previous.title, "->", replica.title);
`

func benchEntity() map[string]any {
	return map[string]any{
		"id": 4711, "subject": "Crash on save", "description": "Steps: ...", "status": "open",
		"priority": "high", "tags": []any{"bug", "internal:triage", "todev"},
		"assignee": map[string]any{"login": "ann", "name": "Ann"}, "due_date": "2025-01-31",
		"estimate_hours": 1.5, "project": map[string]any{"key": "CORE", "name": "Core"},
		"created": "2024-12-01T10:00:00Z", "updated": "2024-12-02T10:00:00Z",
	}
}

// A heavier script touches more built-ins (JSON, Date, RegExp, Set, Math);
// it shows what a fresh runtime per run would pay to rebuild them.
const benchScriptHeavy = benchScript + `
replica.meta = JSON.stringify({a: Object.entries(entity.project).map(([k, v]) => k + "=" + v)});
replica.created = new Date(entity.created).toISOString();
replica.slug = entity.subject.toLowerCase().replace(/[^a-z0-9]+/g, "-");
replica.max = Math.max(...[1, 2, 3]);
replica.set = [...new Set(entity.tags)].length;
`

func BenchmarkOutgoing(b *testing.B)      { benchOutgoing(b, benchScript) }
func BenchmarkOutgoingHeavy(b *testing.B) { benchOutgoing(b, benchScriptHeavy) }

func benchOutgoing(b *testing.B, src string) {
	r := NewRunner(Options{})
	s := mustCompile(b, KindOutgoing, src)
	entity, previous := benchEntity(), map[string]any{"title": "Crash on load"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := r.Outgoing(ctx, s, entity, previous, Meta{Connection: "c", Side: "a"})
		if err != nil || len(res.Replica) < 10 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkFloorGojaReusedRuntime is the floor for BenchmarkOutgoing: the
// same code called on one reused runtime, inputs converted once, no
// pooling, deadline, freezing or export.
func BenchmarkFloorGojaReusedRuntime(b *testing.B) {
	vm := goja.New()
	v, err := vm.RunString("(function(entity, previous, replica, log){\"use strict\";" + benchScript + "\n})")
	if err != nil {
		b.Fatal(err)
	}
	fn, _ := goja.AssertFunction(v)
	sb := &sandbox{vm: vm}
	entity, _ := sb.input(benchEntity(), "entity", false, false)
	previous, _ := sb.input(map[string]any{"title": "Crash on load"}, "previous", true, false)
	logFn := vm.ToValue(func(goja.FunctionCall) goja.Value { return goja.Undefined() })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fn(goja.Undefined(), entity, previous, vm.NewObject(), logFn); err != nil {
			b.Fatal(err)
		}
	}
}

const benchTrigger = `"todev" in labels && status != "closed" && priority >= 2`

func benchTriggerVars() map[string]any {
	return map[string]any{"labels": []any{"bug", "todev"}, "status": "open", "priority": 3.0, "id": "BUG-1"}
}

func BenchmarkTriggerMatch(b *testing.B) {
	tr, err := CompileTrigger(benchTrigger, triggerEnv)
	if err != nil {
		b.Fatal(err)
	}
	vars := benchTriggerVars()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := tr.Match(vars); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkFloorExprRun is the floor for BenchmarkTriggerMatch: expr.Run
// on the same program and variables.
func BenchmarkFloorExprRun(b *testing.B) {
	prog, err := expr.Compile(benchTrigger, expr.Env(triggerEnv), expr.AsBool())
	if err != nil {
		b.Fatal(err)
	}
	vars := benchTriggerVars()
	b.ReportAllocs()
	for b.Loop() {
		if out, err := expr.Run(prog, vars); out != true || err != nil {
			b.Fatal(out, err)
		}
	}
}

// The isolation choice: freezing costs once per runtime (BenchmarkNewSandbox)
// and nothing per run; a fresh runtime per run would pay at least
// BenchmarkGojaNew on every run.
func BenchmarkNewSandbox(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := newSandbox(Options{MaxCallStackSize: defaultStackSize}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGojaNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		goja.New()
	}
}

// BenchmarkOutgoingFreshRuntime is the rejected alternative: a new runtime
// for every run (nothing to freeze), same script, conversion and export.
func BenchmarkOutgoingFreshRuntime(b *testing.B)      { benchFresh(b, benchScript) }
func BenchmarkOutgoingHeavyFreshRuntime(b *testing.B) { benchFresh(b, benchScriptHeavy) }

func benchFresh(b *testing.B, src string) {
	s := mustCompile(b, KindOutgoing, src)
	entity, previous := benchEntity(), map[string]any{"title": "Crash on load"}
	b.ReportAllocs()
	for b.Loop() {
		vm := goja.New()
		sb := &sandbox{vm: vm, fns: map[*Script]goja.Callable{}}
		sb.logFn = vm.ToValue(sb.logNative)
		e, _ := sb.input(entity, "entity", false, false)
		p, _ := sb.input(previous, "previous", true, false)
		replica := vm.NewObject()
		if err := sb.call(s, e, p, replica, sb.meta(Meta{}), sb.logFn); err != nil {
			b.Fatal(err)
		}
		if _, err := sb.exportRoot(replica, "replica"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotRestoreGlobals is what the other isolation approach
// would add to every run for the global object alone: list its own
// properties and compare each with a snapshot (built-in prototypes would
// still need freezing or a deeper snapshot).
func BenchmarkSnapshotRestoreGlobals(b *testing.B) {
	vm := goja.New()
	g := vm.GlobalObject()
	snap := map[string]goja.Value{}
	for _, k := range g.GetOwnPropertyNames() {
		snap[k] = g.Get(k)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range g.GetOwnPropertyNames() {
			if v, ok := snap[k]; !ok || !g.Get(k).SameAs(v) {
				b.Fatal("changed", k)
			}
		}
	}
}
