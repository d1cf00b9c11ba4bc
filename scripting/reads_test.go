package scripting

import (
	"maps"
	"slices"
	"testing"

	"github.com/dop251/goja"
)

func TestEntityReads(t *testing.T) {
	for _, c := range []struct {
		src  string
		want []string // nil: not known
	}{
		{`replica.title = entity.subject; replica.p = entity["priority"];`, []string{"priority", "subject"}},
		{`replica.n = entity.comments.length; replica.a = entity?.assignee?.name;`, []string{"assignee", "comments"}},
		{"replica.t = `${entity.subject}!`; if (entity.status === 'x') { replica.s = map(entity.status) } function map(s) { return s }", []string{"status", "subject"}},
		{`replica.entity = 1; replica.x = {entity: 2}.entity;`, []string{}}, // property names, not the binding
		{`const f = (e) => e.subject; replica.t = f(entity);`, nil},
		{`log(entity);`, nil},
		{`Object.assign(replica, entity);`, nil},
		{`replica.x = {...entity};`, nil},
		{`for (const k in entity) replica[k] = 1;`, nil},
		{`const k = "subject"; replica.t = entity[k];`, nil},
		{`replica.t = entity.hasOwnProperty("subject");`, nil},
		{`replica.t = Object.keys(entity.valueOf());`, nil},
		{`replica.t = (function () { return arguments[0] })();`, nil},
		{`replica.t = eval("1");`, nil},
		{`{ const entity = {a: 1}; replica.t = entity.a; } replica.s = $duplex_entity.subject;`, nil},
		{`const {subject} = entity; replica.t = subject;`, nil},
	} {
		s, err := Compile("t.js", KindOutgoing, c.src)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		got, known := s.EntityReads()
		if c.want == nil {
			if known {
				t.Errorf("%s: reads %v, want unknown", c.src, slices.Sorted(maps.Keys(got)))
			}
			continue
		}
		if !known || !slices.Equal(slices.Sorted(maps.Keys(got)), c.want) {
			t.Errorf("%s: reads %v (known %v), want %v", c.src, slices.Sorted(maps.Keys(got)), known, c.want)
		}
	}
	in, err := Compile("t.js", KindIncoming, `entity.title = replica.title;`)
	if err != nil {
		t.Fatal(err)
	}
	if _, known := in.EntityReads(); known {
		t.Error("an incoming script's reads are not analysed")
	}
}

// Every property of Object.prototype (the entity's prototype) is guarded.
func TestProtoNamesCoverObjectPrototype(t *testing.T) {
	v, err := goja.New().RunString(`Object.getOwnPropertyNames(Object.prototype)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range v.Export().([]any) {
		if !protoNames[n.(string)] {
			t.Errorf("Object.prototype.%s is not in protoNames", n)
		}
	}
}
