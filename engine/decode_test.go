package engine

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// refDecodeObject, refDecodeSnapshot and refLoadRecord are the decoders as
// they were before decode.go (encoding/json with UseNumber, then
// normalizeNumbers); the fast paths must give the same values and errors.
func refDecodeObject(s string) (map[string]any, error) {
	if s == "" || s == "null" {
		return nil, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return normalizeNumbers(m).(map[string]any), nil
}

func refDecodeSnapshot(s string) (*snapshot, error) {
	if s == "" {
		return nil, nil
	}
	var snap snapshot
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	if err := dec.Decode(&snap); err != nil {
		return nil, err
	}
	if snap.F == nil {
		snap.F = map[string]any{}
	}
	normalizeNumbers(snap.F)
	return &snap, nil
}

func refLoadRecord(s string) scriptRecord {
	var rec scriptRecord
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	if dec.Decode(&rec) != nil {
		return scriptRecord{}
	}
	normalizeNumbers(rec.Fields)
	return rec
}

var decodeInputs = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":1.0}`, `{"a":-0}`, `{"a":-0.0}`, `{"a":1e3}`, `{"a":1E+3}`, `{"a":12345678901234567890}`,
	`{"a":-9223372036854775808}`, `{"a":9223372036854775807}`, `{"a":1e400}`, `{"a":-1e400}`, `{"a":01}`, `{"a":1.}`,
	`{"a":.5}`, `{"a":-}`, `{"a":+1}`, `{"a":1e}`, `{"a":0.1e-5}`, `{"a":"x\"y"}`, `{"a":"\u00e9"}`, `{"a":"\ud83d\ude00"}`,
	`{"a":"é"}`, "{\"a\":\"\xff\"}", "{\"a\":\"tab\tin\"}", `{"a":"x"}trailing`, `{"a":"x"} {"b":1}`, `{"a":"x"}  `,
	`{"a":1,"a":2}`, `{"a":{"b":1},"a":{"c":2}}`, `{"a":[1,[2,[3,{}]]],"b":{"c":[]}}`, `{"a":[1,]}`, `{"a":1,}`,
	`{"a" 1}`, `{a:1}`, `{"a":tru}`, `{"a":nul}`, `{"a":true,"b":false,"c":null}`, `[1,2]`, `"x"`, `1`, `null`, ` null`,
	`{"a":[{"x":1},{"y":[true]}],"z":"end"}`, `{"f":{"t":"x"},"c":["2","1"]}`, `{"f":null,"c":null}`,
	`{"f":{},"c":[],"a":["x"]}`, `{"f":{"n":3},"c":[null]}`, `{"F":{"n":3},"c":[]}`, `{"f":{"n":3},"c":[],"x":1}`,
	`{"f":[],"c":[]}`, `{"f":{"a":1},"f":{"b":2},"c":[]}`, `{"c":[1]}`, `{"i":"in","r":"rep","f":{"t":1},"o":"o","b":"b","out":"{}"}`,
	`{"I":"in"}`, `{"i":1}`, `{"f":null}`, `{"i":"x","i":"y"}`, `{`, `{"a":`, `{"a":"`, `{"a":[`, "",
	`{"a":"line\none\ttab\r\b\f\\\/\""}`, `{"a":"\u0041\u00E9\u20ac\u0000"}`, `{"a":"\ud800"}`, `{"a":"\udc00x"}`,
	`{"a":"\u12"}`, `{"a":"\u12g4"}`, `{"a":"\x"}`, `{"a":"\"}`, `{"a":"\`, `{"a":"x\n` + "\xff" + `"}`,
	`{"a":"x\n` + "\t" + `"}`, `{"a":"\u+123"}`, `{"a":"é\n"}`,
	`{"i":"in","r":"rep","f":{"t":"a\nb"},"o":"o","b":"b","out":"{\"comments\":[],\"title\":\"x\"}"}`,
	`{"f":{"body":"x\n\nEscalated from \"support\""},"c":["1"]}`,
}

func TestFastDecodersMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 16))
	inputs := append([]string(nil), decodeInputs...)
	for i := 0; i < 2000; i++ {
		v := randomValue(r, 0)
		if m, ok := v.(map[string]any); ok {
			if enc, err := canonical(m); err == nil {
				inputs = append(inputs, enc)
			}
		}
		if enc, err := canonical(snapshot{F: map[string]any{"v": v}, C: []string{randomString(r)}}); err == nil {
			inputs = append(inputs, enc)
		}
	}
	for _, in := range inputs {
		checkDecoders(t, in)
	}
}

func checkDecoders(t *testing.T, in string) {
	t.Helper()
	s := in
	got, gerr := decodeObject(&s)
	want, werr := refDecodeObject(in)
	if !reflect.DeepEqual(got, want) || (gerr == nil) != (werr == nil) {
		t.Fatalf("decodeObject(%q) = %#v, %v; want %#v, %v", in, got, gerr, want, werr)
	}
	gs, gerr := decodeSnapshot(&s)
	ws, werr := refDecodeSnapshot(in)
	if !reflect.DeepEqual(gs, ws) || (gerr == nil) != (werr == nil) {
		t.Fatalf("decodeSnapshot(%q) = %#v, %v; want %#v, %v", in, gs, gerr, ws, werr)
	}
	tw := store.Twin{ScriptsAB: &s}
	if got, want := loadRecord(&tw, store.AToB), refLoadRecord(in); in != "" && !reflect.DeepEqual(got, want) {
		t.Fatalf("loadRecord(%q) = %#v; want %#v", in, got, want)
	}
}

func FuzzFastDecoders(f *testing.F) {
	for _, in := range decodeInputs {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkDecoders(t, in)
	})
}

// decodeEntities gives what encoding/json gave before its fast path
// (fastEntities), values and errors, and the fast path gives up on what it
// does not take as is (comments, wrong types, bad times) rather than
// reading it differently.
func TestDecodeEntitiesAsBefore(t *testing.T) {
	ref := func(s string) (map[string]*connectors.Entity, error) {
		var list []connectors.Entity
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&list); err != nil {
			return nil, err
		}
		out := map[string]*connectors.Entity{}
		for i := range list {
			ent := &list[i]
			if ent.Fields == nil {
				ent.Fields = map[string]any{}
			}
			ent.Fields = normalizeNumbers(ent.Fields).(map[string]any)
			if cur := out[ent.ID]; cur == nil || !ent.UpdatedAt.Before(cur.UpdatedAt) {
				out[ent.ID] = ent
			}
		}
		return out, nil
	}
	fast := 0
	for _, in := range []string{
		`[]`,
		`[{"id":"1","fields":{"a":1,"b":1.5,"c":"x\u00e9","d":[1,{"e":null}],"f":true},"updated_at":"2026-12-07T10:11:12.123456789Z"}]`,
		`[{"id":"1","key":"K-1","url":"http://x","type":"t","updated_by":"ann","deleted":true,"fields":null,"updated_at":"2026-12-07T10:11:12+02:00"}]`,
		`[{"id":"1","fields":{"n":12345678901234567890}},{"id":"1","fields":{"n":2},"updated_at":"2026-12-07T10:11:12Z"}]`,
		`[{"id":"2","fields":{},"updated_at":"2026-12-07T10:11:12Z"},{"id":"2","fields":{"x":1},"updated_at":"2026-12-07T10:11:11Z"}]`,
		`[{"id":"1","fields":{},"comments":[{"id":"c","body":"hi","created_at":"2026-12-07T10:11:12Z"}]}]`,
		`[{"id":1,"fields":{}}]`,
		`[{"id":"1","fields":[]}]`,
		`[{"id":"1","updated_at":"yesterday"}]`,
		`[{"id":"1","updated_at":"2026-12-07 10:11:12"}]`,
		`[{"id":"1","deleted":"yes"}]`,
		`[{"id":"1","other":{"x":1}}]`,
		`{"id":"1"}`, `[`, `[{"id":"1"}] x`, `null`,
	} {
		want, wantErr := ref(in)
		got, err := decodeEntities(store.WebhookDelivery{Entities: in})
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v %v\nwant %+v %v", in, got, err, want, wantErr)
		}
		if _, ok := fastEntities(in); ok {
			fast++
		}
	}
	if fast < 5 {
		t.Errorf("the fast path took %d of the inputs, want the 5 it handles", fast)
	}
}
