package mapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts/mapping"
)

func str(s string) *string { return &s }

// statusMap is the shape of the templates' directions: a value map without
// a default, a plain field, a first-sync constant and prefixed comments.
func statusMap() mapping.Mapping {
	return mapping.Mapping{
		From: "engineering", To: "support",
		Rows: []mapping.Row{
			{Target: "status", Kind: mapping.Map, Source: "state", Map: map[string]string{"new": "escalated", "resolved": "solved"}},
			{Target: "priority", Kind: mapping.Map, Source: "priority", Map: map[string]string{"urgent": "critical"}, Default: str("normal")},
			{Target: "subject", Kind: mapping.Field, Source: "title"},
			{Target: "Engineering URL", Kind: mapping.Field, Source: "url"},
			{Target: "origin", Kind: mapping.Constant, Value: json.RawMessage(`"engineering"`), FirstSync: true},
			{Target: "escalated", Kind: mapping.Constant, Value: json.RawMessage(`true`)},
		},
		Comments: mapping.Comments{Sync: true, Prefix: "[engineering] ", Private: true, PublicOnly: true},
		Trigger:  `"todev" in labels`,
	}
}

func TestRoundTrip(t *testing.T) {
	cases := map[string]mapping.Mapping{
		"status map":    statusMap(),
		"empty":         {Rows: []mapping.Row{}},
		"no comments":   {Rows: []mapping.Row{{Target: "title", Kind: mapping.Field, Source: "subject"}}},
		"empty map":     {Rows: []mapping.Row{{Target: "state", Kind: mapping.Map, Source: "status", Map: map[string]string{}}}},
		"two of a name": {Rows: []mapping.Row{{Target: "a b", Kind: mapping.Map, Source: "x", Map: map[string]string{"1": "2"}}, {Target: "a_b", Kind: mapping.Map, Source: "x", Map: map[string]string{"1": "2"}}}},
		"reserved word": {Rows: []mapping.Row{{Target: "new", Kind: mapping.Map, Source: "x"}, {Target: "entity", Kind: mapping.Map, Source: "x"}, {Target: "9lives", Kind: mapping.Map, Source: "x"}}},
		"odd text":      {From: "a\"b", To: "</script>", Rows: []mapping.Row{{Target: "t\"\\", Kind: mapping.Constant, Value: json.RawMessage(` "x\u2028y" `)}}, Comments: mapping.Comments{Sync: true, Prefix: "\"*/ "}},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := mapping.Render(m)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.Incoming, mapping.Header) || !strings.HasPrefix(out.Outgoing, mapping.OutgoingHeader) {
				t.Fatalf("no header:\n%s\n%s", out.Outgoing, out.Incoming)
			}
			// The scripts compile as the engine compiles them.
			if _, err := scripting.Compile("o.js", scripting.KindOutgoing, out.Outgoing); err != nil {
				t.Fatalf("outgoing: %v\n%s", err, out.Outgoing)
			}
			if _, err := scripting.Compile("i.js", scripting.KindIncoming, out.Incoming); err != nil {
				t.Fatalf("incoming: %v\n%s", err, out.Incoming)
			}
			back, err := mapping.Parse(out.Outgoing, out.Incoming, m.Trigger)
			if err != nil {
				t.Fatal(err)
			}
			again, err := mapping.Render(back)
			if err != nil {
				t.Fatal(err)
			}
			if again != out {
				t.Fatalf("render of the parsed mapping differs:\n%s\n---\n%s", again.Incoming, out.Incoming)
			}
			if back.Trigger != m.Trigger || len(back.Rows) != len(m.Rows) || back.Comments != m.Comments {
				t.Fatalf("parsed %+v, rendered %+v", back, m)
			}
		})
	}
}

// TestRenderedScriptsRun runs the scripts made from statusMap the way the
// engine would: the replica the outgoing sends, and what the incoming writes.
func TestRenderedScriptsRun(t *testing.T) {
	out, err := mapping.Render(statusMap())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := scripting.NewRunner(scripting.Options{})
	og, err := scripting.Compile("o.js", scripting.KindOutgoing, out.Outgoing)
	if err != nil {
		t.Fatal(err)
	}
	in, err := scripting.Compile("i.js", scripting.KindIncoming, out.Incoming)
	if err != nil {
		t.Fatal(err)
	}
	src := map[string]any{"state": "resolved", "priority": "low", "title": "Checkout fails", "url": "https://e/1", "other": "stays home",
		"comments": []any{map[string]any{"id": "1", "author": "bo", "body": "fixed"}, map[string]any{"id": "2", "author": "bo", "body": "secret", "private": true}}}
	o, err := r.Outgoing(ctx, og, src, nil, scripting.Meta{Side: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, leaked := o.Replica["other"]; leaked {
		t.Fatalf("unmapped field sent: %v", o.Replica)
	}
	if got := len(o.Replica["comments"].([]any)); got != 1 {
		t.Fatalf("public only: %d comments sent", got)
	}
	for _, tc := range []struct {
		name      string
		state     string
		first     bool
		want      map[string]any
		wantLog   string
		notWanted []string
	}{
		{name: "mapped", state: "resolved", want: map[string]any{"status": "solved", "priority": "normal", "subject": "Checkout fails", "Engineering URL": "https://e/1", "escalated": true}, notWanted: []string{"origin"}},
		{name: "first sync", state: "new", first: true, want: map[string]any{"status": "escalated", "origin": "engineering"}},
		{name: "unlisted keeps", state: "triage", want: map[string]any{"status": "open"}, wantLog: "no support status for engineering state triage"},
		{name: "prototype name is not a value", state: "constructor", want: map[string]any{"status": "open"}, wantLog: "no support status for engineering state constructor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			replica := map[string]any{}
			for k, v := range o.Replica {
				replica[k] = v
			}
			replica["state"] = tc.state
			ent := map[string]any{"status": "open"}
			if tc.first {
				ent = map[string]any{}
			}
			res, err := r.Incoming(ctx, in, replica, nil, ent, scripting.Meta{Side: "a", FirstSync: tc.first})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if !reflect.DeepEqual(res.Entity[k], v) {
					t.Errorf("%s = %#v, want %#v", k, res.Entity[k], v)
				}
			}
			for _, k := range tc.notWanted {
				if _, ok := res.Entity[k]; ok {
					t.Errorf("%s written: %v", k, res.Entity[k])
				}
			}
			if tc.wantLog != "" && (len(res.Log) != 1 || res.Log[0] != tc.wantLog) {
				t.Errorf("log %q, want %q", res.Log, tc.wantLog)
			}
			cs, _ := res.Entity["comments"].([]any)
			if len(cs) != 1 || cs[0].(map[string]any)["body"] != "[engineering] bo: fixed" || cs[0].(map[string]any)["private"] != true {
				t.Errorf("comments %v", cs)
			}
		})
	}
}

// TestHandEdits: any change to a rendered script makes the direction code,
// with the reason, and undoing the change brings the mapping back.
func TestHandEdits(t *testing.T) {
	out, err := mapping.Render(statusMap())
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(out.Incoming, "\n")
	for _, tc := range []struct {
		name    string
		out, in string
		reason  string
	}{
		{"a line changed", out.Outgoing, strings.Replace(out.Incoming, `"solved"}`, `"done"}`, 1), "incoming script was edited by hand (line"},
		{"a line added", out.Outgoing + "replica.extra = 1;\n", out.Incoming, "outgoing script was edited by hand"},
		{"trailing newline removed", out.Outgoing, strings.TrimSuffix(out.Incoming, "\n"), "incoming script was edited by hand"},
		{"header's map edited", out.Outgoing, strings.Replace(out.Incoming, `"resolved":"solved"`, `"resolved":"done"`, 1), "incoming script was edited by hand"},
		{"header dropped", out.Outgoing, strings.TrimPrefix(out.Incoming, header+"\n"), "written as code"},
		{"code", "replica.x = entity.x;\n", "entity.x = replica.x;\n", "written as code"},
		{"outgoing of another mapping", "// x\n", out.Incoming, "outgoing script was edited by hand"},
		{"header not JSON", out.Outgoing, mapping.Header + "{\n", "does not read"},
		{"header with unknown key", out.Outgoing, mapping.Header + `{"rows":[],"comments":{"sync":false},"extra":1}` + "\n", "does not read"},
		{"header invalid", out.Outgoing, mapping.Header + `{"rows":[{"target":"id","kind":"field","source":"x"}],"comments":{"sync":false}}` + "\n", "not valid"},
		{"CRLF", out.Outgoing, strings.ReplaceAll(out.Incoming, "\n", "\r\n"), "incoming script was edited by hand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mapping.Parse(tc.out, tc.in, "")
			var nm *mapping.NotMapping
			if !errors.As(err, &nm) || !errors.Is(err, mapping.ErrNotMapping) {
				t.Fatalf("got %v, want a NotMapping", err)
			}
			if !strings.Contains(nm.Reason, tc.reason) {
				t.Fatalf("reason %q, want it to say %q", nm.Reason, tc.reason)
			}
		})
	}
	if _, err := mapping.Parse(out.Outgoing, out.Incoming, "changed trigger"); err != nil {
		t.Fatalf("a trigger edit must not turn the direction into code: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []mapping.Row
		c    mapping.Comments
		want string
	}{
		{"empty target", []mapping.Row{{Kind: mapping.Field, Source: "x"}}, mapping.Comments{}, "row 1: target is empty"},
		{"system field", []mapping.Row{{Target: "key", Kind: mapping.Field, Source: "x"}}, mapping.Comments{}, "set by the system"},
		{"twice", []mapping.Row{{Target: "t", Kind: mapping.Field, Source: "x"}, {Target: "t", Kind: mapping.Field, Source: "y"}}, mapping.Comments{}, "row 2: the target field \"t\" is already written by row 1"},
		{"line break", []mapping.Row{{Target: "t\n}); fail(", Kind: mapping.Field, Source: "x"}}, mapping.Comments{}, "line break"},
		{"line separator", []mapping.Row{{Target: "t", Kind: mapping.Field, Source: "x\u2028y"}}, mapping.Comments{}, "line break"},
		{"prefix line break", nil, mapping.Comments{Sync: true, Prefix: "a\nb"}, "line break"},
		{"no source", []mapping.Row{{Target: "t", Kind: mapping.Map}}, mapping.Comments{}, "source is empty"},
		{"comments as a row", []mapping.Row{{Target: "t", Kind: mapping.Field, Source: "comments"}}, mapping.Comments{}, "comments option"},
		{"object constant", []mapping.Row{{Target: "t", Kind: mapping.Constant, Value: json.RawMessage(`{"a":1}`)}}, mapping.Comments{}, "string, number, boolean or null"},
		{"code as a constant", []mapping.Row{{Target: "t", Kind: mapping.Constant, Value: json.RawMessage(`fail("x")`)}}, mapping.Comments{}, "not JSON"},
		{"constant without value", []mapping.Row{{Target: "t", Kind: mapping.Constant}}, mapping.Comments{}, "missing"},
		{"field with a map", []mapping.Row{{Target: "t", Kind: mapping.Field, Source: "s", Map: map[string]string{}}}, mapping.Comments{}, "only a map row"},
		{"unknown kind", []mapping.Row{{Target: "t", Kind: "script", Source: "s"}}, mapping.Comments{}, "kind must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mapping.Render(mapping.Mapping{Rows: tc.rows, Comments: tc.c})
			if !errors.Is(err, mapping.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

// FuzzParse: any pair of scripts either is code or gives a mapping that
// renders to exactly those scripts; never a panic.
func FuzzParse(f *testing.F) {
	out, err := mapping.Render(statusMap())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(out.Outgoing, out.Incoming)
	f.Add("", "")
	f.Add("replica.x = entity.x;\n", mapping.Header+"{}\n")
	f.Fuzz(func(t *testing.T, og, in string) {
		m, err := mapping.Parse(og, in, "")
		if err != nil {
			if !errors.Is(err, mapping.ErrNotMapping) {
				t.Fatalf("error %v is not ErrNotMapping", err)
			}
			return
		}
		if og == "" && in == "" {
			return
		}
		r, err := mapping.Render(m)
		if err != nil || r.Outgoing != og || r.Incoming != in {
			t.Fatalf("parsed a mapping that does not render back: %v", err)
		}
	})
}

func TestSuggest(t *testing.T) {
	src := []mapping.FieldInfo{{Name: "subject", Type: "string"}, {Name: "Due Date", Type: "time"}, {Name: "status", Type: "string"},
		{Name: "priority", Type: "number"}, {Name: "labels", Type: "list"}, {Name: "comments"}}
	dst := []mapping.FieldInfo{{Name: "title", Type: "string"}, {Name: "due_date", Type: "time"}, {Name: "status", Type: "string"},
		{Name: "priority", Type: "string"}, {Name: "created", Type: "time", ReadOnly: true}, {Name: "key"}, {Name: "tags", Type: "list"}, {Name: "subject", Type: "string"}}
	have := mapping.Mapping{Rows: []mapping.Row{{Target: "status", Kind: mapping.Map, Source: "status", Map: map[string]string{"a": "b"}}}}
	got := mapping.Suggest(src, dst, true, true, have)
	want := []mapping.Row{
		have.Rows[0], // kept as it was
		{Target: "title", Kind: mapping.Field, Source: "subject"},
		{Target: "due_date", Kind: mapping.Field, Source: "Due Date"},
		{Target: "tags", Kind: mapping.Field, Source: "labels"},
		{Target: "subject", Kind: mapping.Field, Source: "subject"},
	}
	if !reflect.DeepEqual(got.Rows, want) {
		t.Fatalf("rows %+v\nwant %+v", got.Rows, want)
	}
	if !got.Comments.Sync {
		t.Fatal("comments not suggested")
	}
	if _, err := mapping.Render(got); err != nil {
		t.Fatalf("a suggestion must render: %v", err)
	}
	if mapping.Suggest(src, dst, true, false, mapping.Mapping{}).Comments.Sync {
		t.Fatal("comments suggested for a target without comments")
	}
}
