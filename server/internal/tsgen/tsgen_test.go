package tsgen

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	N int `json:"n"`
}

type node struct {
	inner
	Name     string            `json:"name"`
	Opt      string            `json:"opt,omitempty"`
	Ptr      *time.Time        `json:"ptr"`
	Raw      json.RawMessage   `json:"raw"`
	Any      any               `json:"any,omitempty"`
	Kids     []*node           `json:"kids"`
	Tags     map[string]string `json:"tags"`
	Skip     string            `json:"-"`
	AsString int64             `json:"as_string,string"`
	Anon     struct {
		A bool `json:"a"`
	} `json:"anon"`
	Dash    string `json:"x-y"`
	private int
}

func TestGenerate(t *testing.T) {
	out, err := Generate(Input{Roots: []reflect.Type{reflect.TypeOf([]node{})},
		Name:       func(t reflect.Type) string { return "T" + t.Name() },
		ErrorCodes: []string{"a", "b"}, Header: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	_ = node{}.private
	want := `// hello

/** A JSON value the server passes through as it is (json.RawMessage, any). */
export type JsonValue = string | number | boolean | null | unknown[] | { [k: string]: unknown };

/** Go: tsgen.node */
export interface Tnode {
  n: number;
  name: string;
  opt?: string;
  ptr?: string | null;
  raw: JsonValue;
  any?: unknown;
  kids: Tnode[];
  tags: Record<string, string>;
  as_string: string;
  anon: { a: boolean };
  "x-y": string;
}

/** The API's stable error codes (server/errors.go); clients match on these, never on messages. */
export const ERROR_CODES = [
  "a",
  "b",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];
`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestGenerateRefusesNameClash(t *testing.T) {
	type a struct{ X int }
	type b struct{ Y int }
	_, err := Generate(Input{Roots: []reflect.Type{reflect.TypeOf(a{}), reflect.TypeOf(b{})},
		Name: func(reflect.Type) string { return "Same" }})
	if err == nil || !strings.Contains(err.Error(), "both named Same") {
		t.Fatalf("err = %v, want a clash", err)
	}
}

func TestGenerateRefusesFunc(t *testing.T) {
	type f struct {
		F func() `json:"f"`
	}
	if _, err := Generate(Input{Roots: []reflect.Type{reflect.TypeOf(f{})}, Name: func(reflect.Type) string { return "F" }}); err == nil {
		t.Fatal("a func field was accepted")
	}
}

func TestErrorCodes(t *testing.T) {
	src := `package x
const (
	CodeA = "a" // first
	other = "no"
	CodeB = "b"
)
const CodeC = "c"
`
	got, err := ErrorCodes([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("codes = %v", got)
	}
	if _, err := ErrorCodes([]byte("package x\nconst CodeX = 1 + 2\n")); err == nil {
		t.Fatal("a computed code was accepted")
	}
	if _, err := ErrorCodes([]byte("package x\n")); err == nil {
		t.Fatal("no codes was accepted")
	}
}
