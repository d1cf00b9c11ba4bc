package connectors_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

var testSpec = connectors.Spec{
	Kind: "demo",
	Settings: []connectors.Setting{
		{Name: "url", Type: connectors.SettingString, Required: true},
		{Name: "correlation_field", Type: connectors.SettingString},
		{Name: "timeout_ms", Type: connectors.SettingInteger},
		{Name: "strict", Type: connectors.SettingBoolean},
		{Name: "mode", Type: connectors.SettingString, Enum: []string{"a", "b"}},
		{Name: "fields", Type: connectors.SettingList},
	},
	Secrets: []connectors.Secret{{Name: "token"}},
}

type demoSettings struct {
	URL              string `json:"url"`
	CorrelationField string `json:"correlation_field"`
	TimeoutMS        int    `json:"timeout_ms"`
	Strict           bool   `json:"strict"`
	Mode             string `json:"mode"`
	Fields           []struct {
		Name string `json:"name"`
	} `json:"fields"`
}

func TestDecodeSettingsRefusesNamingTheKey(t *testing.T) {
	for _, tc := range []struct {
		raw, field, msg string
	}{
		{`{"url":"http://x","correlation_fild":"k"}`, "correlation_fild", `did you mean "correlation_field"`},
		{`{"url":"http://x","zzz":1}`, "zzz", "this kind takes: url, correlation_field"},
		{`{}`, "url", "is required"},
		{`{"url":""}`, "url", "is required"},
		{`{"url":"http://x","timeout_ms":"30"}`, "timeout_ms", "must be an integer"},
		{`{"url":"http://x","timeout_ms":1.5}`, "timeout_ms", "must be an integer"},
		{`{"url":"http://x","strict":"yes"}`, "strict", "must be a boolean"},
		{`{"url":"http://x","mode":"c"}`, "mode", "must be one of a, b"},
		{`{"url":"http://x","fields":[{"nmae":"x"}]}`, "nmae", "unknown setting"},
		{`{"url":"http://x","fields":[{"name":3}]}`, "fields.name", "must be string"},
		{`[1]`, "", "must be a JSON object"},
	} {
		var s demoSettings
		err := testSpec.DecodeSettings(json.RawMessage(tc.raw), &s)
		var se *connectors.SettingError
		if !errors.As(err, &se) || se.Field != tc.field || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("%s: got %v (%#v), want field %q and %q", tc.raw, err, se, tc.field, tc.msg)
			continue
		}
		if !errors.Is(err, connectors.ErrBadConfig) {
			t.Errorf("%s: %v does not wrap ErrBadConfig", tc.raw, err)
		}
	}
	var s demoSettings
	if err := testSpec.DecodeSettings(json.RawMessage(`{"url":"http://x","timeout_ms":5,"mode":"b","strict":true,"fields":[{"name":"a"}],"correlation_field":null}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.TimeoutMS != 5 || s.Mode != "b" || !s.Strict || len(s.Fields) != 1 {
		t.Fatalf("decoded %+v", s)
	}
}

func TestRegistryValidate(t *testing.T) {
	reg := connectors.NewRegistry()
	open := func(context.Context, connectors.Config) (connectors.Connector, error) {
		return nil, errors.New("not here")
	}
	if err := reg.Add(connectors.Kind{Spec: testSpec, Open: open}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Add(connectors.Kind{Spec: testSpec, Open: open}); err == nil {
		t.Fatal("a kind registered twice was accepted")
	}
	var ke *connectors.KindError
	if err := reg.Validate("dmeo", nil, nil); !errors.As(err, &ke) || ke.Kind != "dmeo" || !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := reg.Open(context.Background(), "dmeo", connectors.Config{}); !errors.As(err, &ke) {
		t.Fatalf("open unknown kind: %v", err)
	}
	var se *connectors.SettingError
	if err := reg.Validate("demo", json.RawMessage(`{"url":"http://x","tmeout_ms":3}`), nil); !errors.As(err, &se) || se.Field != "tmeout_ms" {
		t.Fatalf("unknown key: %v", err)
	}
	var sec *connectors.SecretError
	if err := reg.Validate("demo", json.RawMessage(`{"url":"http://x"}`), []string{"token", "tokn"}); !errors.As(err, &sec) || sec.Name != "tokn" {
		t.Fatalf("unknown secret: %v", err)
	}
	if err := reg.Validate("demo", json.RawMessage(`{"url":"http://x"}`), []string{"token"}); err != nil {
		t.Fatal(err)
	}
	if got := reg.Specs(); len(got) != 1 || got[0].Kind != "demo" {
		t.Fatalf("specs %+v", got)
	}
}

func TestHTTPURL(t *testing.T) {
	if u, err := connectors.HTTPURL("k", "url", " https://x.example/ "); err != nil || u != "https://x.example" {
		t.Fatalf("%q %v", u, err)
	}
	var se *connectors.SettingError
	if _, err := connectors.HTTPURL("k", "url", "ftp://x"); !errors.As(err, &se) || se.Field != "url" {
		t.Fatalf("%v", err)
	}
}
