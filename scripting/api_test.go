package scripting

import (
	"sort"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// The declared API and what a runtime really holds cannot drift apart:
// every global a Duplex runtime adds to plain ECMAScript is declared as a
// global, and every declared non-global is a script parameter.
func TestAPIMatchesRuntime(t *testing.T) {
	sb, err := newSandbox(Options{MaxCallStackSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	standard := map[string]bool{}
	for _, k := range goja.New().GlobalObject().GetOwnPropertyNames() {
		standard[k] = true
	}
	var added []string
	for _, k := range sb.vm.GlobalObject().GetOwnPropertyNames() {
		if !standard[k] {
			added = append(added, k)
		}
	}
	var declaredGlobals, declaredParams []string
	for _, d := range API {
		if d.Global {
			declaredGlobals = append(declaredGlobals, d.Name)
		} else {
			declaredParams = append(declaredParams, d.Name)
		}
	}
	paramSet := map[string]bool{}
	for _, ps := range params {
		for _, p := range ps {
			paramSet[p] = true
		}
	}
	var allParams []string
	for p := range paramSet {
		allParams = append(allParams, p)
	}
	for _, l := range [][]string{added, declaredGlobals, declaredParams, allParams} {
		sort.Strings(l)
	}
	if strings.Join(added, ",") != strings.Join(declaredGlobals, ",") {
		t.Errorf("runtime adds %v, API declares globals %v", added, declaredGlobals)
	}
	if strings.Join(allParams, ",") != strings.Join(declaredParams, ",") {
		t.Errorf("scripts get parameters %v, API declares %v", allParams, declaredParams)
	}
	dts := Declarations()
	for _, want := range []string{"declare function mapValue<T = unknown>(", "declare const entity: Entity;", "interface Comment"} {
		if !strings.Contains(dts, want) {
			t.Errorf("declarations lack %q", want)
		}
	}
}
