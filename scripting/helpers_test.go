package scripting

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func runOut(t *testing.T, src string, entity map[string]any) (map[string]any, error) {
	t.Helper()
	s, err := Compile("h.js", KindOutgoing, src)
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewRunner(Options{}).Outgoing(context.Background(), s, entity, nil, Meta{})
	return res.Replica, err
}

func TestHelpers(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		entity    map[string]any
		want      map[string]any
	}{
		{"mapValue hit", `replica.v = mapValue(entity.s, {open: "new", done: "closed"}, "other");`,
			map[string]any{"s": "done"}, map[string]any{"v": "closed"}},
		{"mapValue fallback", `replica.v = mapValue(entity.s, {open: "new"}, "other");`,
			map[string]any{"s": "weird"}, map[string]any{"v": "other"}},
		{"mapValue keeps value without fallback", `replica.v = mapValue(entity.s, {open: "new"});`,
			map[string]any{"s": "weird"}, map[string]any{"v": "weird"}},
		{"mapValue ignores inherited names", `replica.v = mapValue("toString", {}, "none");`,
			nil, map[string]any{"v": "none"}},
		{"mergeComments", `replica.c = mergeComments(
				[{id: "1", author: "a", body: "old"}],
				[{id: "1", author: "a", body: "old"}, {id: "2", author: "bo", body: "new"}],
				{prefix: "[support] ", authorInBody: true});`,
			nil, map[string]any{"c": []any{
				map[string]any{"id": "1", "author": "a", "body": "old"},
				map[string]any{"id": "2", "author": "bo", "body": "[support] bo: new"}}}},
		{"htmlToText", `replica.t = htmlToText("<p>Hello &amp; <b>welcome</b></p><ul><li>one</li><li>two</li></ul>line<br>break");`,
			nil, map[string]any{"t": "Hello & welcome\n\n- one\n- two\nline\nbreak"}},
		{"textToHtml", `replica.h = textToHtml("a < b\nnext\n\nnew para");`,
			nil, map[string]any{"h": "<p>a &lt; b<br>next</p><p>new para</p>"}},
		{"formatDate zone", `replica.d = formatDate("2026-03-29T01:30:00Z", "YYYY-MM-DD HH:mm", "Europe/Berlin");`,
			nil, map[string]any{"d": "2026-03-29 03:30"}},
		{"formatDate Date", `replica.d = formatDate(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)), "iso");`,
			nil, map[string]any{"d": "2026-01-02T03:04:05Z"}},
		{"parseDate zone", `replica.d = parseDate("29.03.2026 10:00", "DD.MM.YYYY HH:mm", "America/New_York");`,
			nil, map[string]any{"d": "2026-03-29T14:00:00Z"}},
		{"parseDate empty", `replica.d = parseDate("");`, nil, map[string]any{"d": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runOut(t, tc.src, tc.entity)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestHelperErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"fail", "replica.a = 1;\nfail('ticket has no customer');", "fail: ticket has no customer"},
		{"bad zone", `formatDate("2026-01-01T00:00:00Z", "iso", "Mars/Olympus");`, "unknown time zone"},
		{"bad date", `parseDate("yesterday", "date");`, "does not match"},
		{"helpers are frozen", `mapValue = null;`, "TypeError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runOut(t, tc.src, nil)
			var se *Error
			if !errors.As(err, &se) || se.Kind != ErrorRuntime || !strings.Contains(se.Message, tc.want) {
				t.Fatalf("error %v, want a runtime error containing %q", err, tc.want)
			}
			if tc.name == "fail" && se.Line != 2 {
				t.Fatalf("fail reported at line %d, want 2", se.Line)
			}
		})
	}
}
