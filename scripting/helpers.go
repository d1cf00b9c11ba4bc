package scripting

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // IANA zones for formatDate/parseDate on machines without zoneinfo

	"github.com/dop251/goja"

	"github.com/duplexsync/duplex/internal/htmltext"
)

// helpersProgram defines the script helpers written in JavaScript. It runs
// once per runtime, before the runtime's built-ins and global object are
// frozen, so scripts cannot replace them.
var helpersProgram = goja.MustCompile("helpers.js", `(function (g) {
	"use strict";
	const def = (name, fn) => Object.defineProperty(g, name, {value: fn, enumerable: false});
	const own = Object.prototype.hasOwnProperty;
	def("mapValue", function mapValue(value, table, fallback) {
		const key = value === null || value === undefined ? "" : String(value);
		if (table !== null && typeof table === "object" && own.call(table, key)) return table[key];
		return arguments.length >= 3 ? fallback : value;
	});
	def("mergeComments", function mergeComments(existing, incoming, options) {
		const opts = options || {};
		const out = Array.isArray(existing) ? existing.slice() : [];
		const seen = new Set(out.map(c => c && c.id).filter(id => id !== undefined && id !== null && id !== ""));
		for (const c of (Array.isArray(incoming) ? incoming : [])) {
			if (!c || (c.id !== undefined && c.id !== null && c.id !== "" && seen.has(c.id))) continue;
			let body = c.body === undefined || c.body === null ? "" : String(c.body);
			if (opts.authorInBody) body = (c.author || "unknown") + ": " + body;
			if (opts.prefix) body = String(opts.prefix) + body;
			const added = {id: c.id, author: c.author, body: body};
			if (opts.private) added.private = true;
			out.push(added);
			seen.add(c.id);
		}
		return out;
	});
	def("textToHtml", function textToHtml(text) {
		if (text === null || text === undefined) return "";
		const esc = String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
			.replace(/"/g, "&quot;").replace(/'/g, "&#39;");
		return esc.split(/\n{2,}/).map(p => "<p>" + p.replace(/\n/g, "<br>") + "</p>").join("");
	});
})`, true)

// installHelpers adds the script helpers to a new runtime's global object.
func (sb *sandbox) installHelpers() error {
	g := sb.vm.GlobalObject()
	for name, fn := range map[string]func(goja.FunctionCall) goja.Value{
		"formatDate": sb.formatDate,
		"parseDate":  sb.parseDate,
		"fail":       sb.failNative,
		"htmlToText": sb.htmlToText,
	} {
		if err := g.DefineDataProperty(name, sb.vm.ToValue(fn), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE); err != nil {
			return err
		}
	}
	v, err := sb.vm.RunProgram(helpersProgram)
	if err != nil {
		return err
	}
	f, _ := goja.AssertFunction(v)
	_, err = f(goja.Undefined(), g)
	return err
}

// htmlToText is the plain text of an HTML message (internal/htmltext): the
// same conversion RT's HTML-only messages get.
func (sb *sandbox) htmlToText(call goja.FunctionCall) goja.Value {
	a := call.Argument(0)
	if goja.IsUndefined(a) || goja.IsNull(a) {
		return sb.vm.ToValue("")
	}
	return sb.vm.ToValue(htmltext.Text(a.String()))
}

// errFail marks an error raised by fail(message).
var errFail = errors.New("fail")

// failNative stops the script and fails its event with the message.
func (sb *sandbox) failNative(call goja.FunctionCall) goja.Value {
	msg := "failed by script"
	if a := call.Argument(0); !goja.IsUndefined(a) && !goja.IsNull(a) {
		msg = a.String()
	}
	panic(sb.vm.NewGoError(fmt.Errorf("%w: %s", errFail, msg)))
}

// Date layouts scripts name, in Go's notation; anything else is taken as
// tokens: YYYY MM DD HH mm ss.
var dateLayouts = map[string]string{
	"":         time.RFC3339,
	"iso":      time.RFC3339,
	"date":     "2006-01-02",
	"datetime": "2006-01-02 15:04:05",
	"time":     "15:04",
}

var tokenLayout = strings.NewReplacer("YYYY", "2006", "MM", "01", "DD", "02", "HH", "15", "mm", "04", "ss", "05")

func goLayout(layout string) string {
	if l, ok := dateLayouts[layout]; ok {
		return l
	}
	return tokenLayout.Replace(layout)
}

func (sb *sandbox) zone(v goja.Value) *time.Location {
	if goja.IsUndefined(v) || goja.IsNull(v) || v.String() == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(v.String())
	if err != nil {
		panic(sb.vm.NewTypeError("unknown time zone %q", v.String()))
	}
	return loc
}

// formatDate(value, layout, timeZone): value is an RFC 3339 string or a
// Date; the result is the time in timeZone (default UTC) written in layout.
func (sb *sandbox) formatDate(call goja.FunctionCall) goja.Value {
	v := call.Argument(0)
	var t time.Time
	switch x := v.Export().(type) {
	case time.Time:
		t = x
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, x); err != nil {
			if t, err = time.Parse("2006-01-02", x); err != nil {
				panic(sb.vm.NewTypeError("formatDate: %q is not an RFC 3339 date", x))
			}
		}
	default:
		if goja.IsUndefined(v) || goja.IsNull(v) {
			return goja.Null()
		}
		panic(sb.vm.NewTypeError("formatDate: expects a date string or a Date"))
	}
	layout := ""
	if a := call.Argument(1); !goja.IsUndefined(a) && !goja.IsNull(a) {
		layout = a.String()
	}
	return sb.vm.ToValue(t.In(sb.zone(call.Argument(2))).Format(goLayout(layout)))
}

// parseDate(text, layout, timeZone): reads text written in layout in
// timeZone (default UTC) and returns it as an RFC 3339 string in UTC.
func (sb *sandbox) parseDate(call goja.FunctionCall) goja.Value {
	text := call.Argument(0)
	if goja.IsUndefined(text) || goja.IsNull(text) || text.String() == "" {
		return goja.Null()
	}
	layout := ""
	if a := call.Argument(1); !goja.IsUndefined(a) && !goja.IsNull(a) {
		layout = a.String()
	}
	t, err := time.ParseInLocation(goLayout(layout), text.String(), sb.zone(call.Argument(2)))
	if err != nil {
		panic(sb.vm.NewTypeError("parseDate: %q does not match %q", text.String(), layout))
	}
	return sb.vm.ToValue(t.UTC().Format(time.RFC3339))
}
