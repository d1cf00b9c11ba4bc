package server

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestTypeScriptCurrent fails when frontend/app/src/api.gen.ts is not what
// `go generate ./server` writes now: a body type, a field or an error code
// changed without regenerating the app's types.
func TestTypeScriptCurrent(t *testing.T) {
	src, err := os.ReadFile("errors.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := TypeScript(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(TypeScriptFile)
	if err != nil {
		t.Fatalf("%v: run `go generate ./server`", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s is stale (run `go generate ./server`); first difference at line %d:\n have %q\n want %q", TypeScriptFile, i+1, g, w)
			}
		}
	}
}

// TestTypeScriptCoversBodies checks the generator sees what the app needs:
// every op's body types, the error codes and the JSON rules (omitempty and
// pointers optional, json.RawMessage a JSON value, embedded structs inlined).
func TestTypeScriptCoversBodies(t *testing.T) {
	src, err := os.ReadFile("errors.go")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := TypeScript(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"export interface ServerEventOut {",
		"  replica: JsonValue;",
		"  log: string[];",
		"  unlinked_pair?: string | null;",
		"export interface ServerConnectionOut {\n  id: number;", // connectionBody inlined
		"  scripts?: Record<string, Record<string, StoreScriptVersion>>;",
		"export interface ServerTwinOut {",
		"export interface EngineResolution {", // from map[string]engine.Resolution
		"export interface ServerApiError {",
		`  "script_timeout_over_cap",`,
		"export type ErrorCode = (typeof ERROR_CODES)[number];",
	} {
		if !bytes.Contains(ts, []byte(want)) {
			t.Errorf("generated TypeScript lacks %q", want)
		}
	}
	for _, code := range []string{CodeBadRequest, CodeForbidden, CodeCSRF, CodeOutboundRefused} {
		if !bytes.Contains(ts, []byte(`  "`+code+`",`)) {
			t.Errorf("error code %q missing", code)
		}
	}
}
