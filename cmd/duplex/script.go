package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// errFixturesFailed makes the command exit non-zero after printing results.
var errFixturesFailed = errors.New("fixtures failed")

// runScript implements `duplex script test DIR...`: it runs each template
// folder's testdata/*.json fixtures, for a team's own CI.
func runScript(ctx context.Context, args []string, out io.Writer) error {
	if len(args) < 2 || args[0] != "test" {
		return fmt.Errorf("usage: duplex script test DIR [DIR...]  (a template folder with testdata/*.json)")
	}
	runner := scripting.NewRunner(scripting.Options{})
	passed, failed := 0, 0
	for _, dir := range args[1:] {
		tpl, err := scripts.LoadDir(dir)
		if err != nil {
			return err
		}
		src, err := tpl.Render(nil)
		if err != nil {
			return err
		}
		fixtures, err := scripts.Fixtures(dir)
		if err != nil {
			return err
		}
		if len(fixtures) == 0 {
			return fmt.Errorf("%s: no fixtures in testdata/*.json", dir)
		}
		names := make([]string, 0, len(fixtures))
		for n := range fixtures {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			var fx engine.Fixture
			dec := json.NewDecoder(bytes.NewReader(fixtures[name]))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&fx); err != nil {
				return fmt.Errorf("%s/testdata/%s: %w", dir, name, err)
			}
			diffs, err := engine.CheckFixture(ctx, runner, tpl.Name, src, fx)
			if err != nil {
				diffs = []string{err.Error()}
			}
			if len(diffs) == 0 {
				passed++
				fmt.Fprintf(out, "ok    %s/%s\n", tpl.Name, name)
				continue
			}
			failed++
			fmt.Fprintf(out, "FAIL  %s/%s\n", tpl.Name, name)
			for _, d := range diffs {
				fmt.Fprintf(out, "      %s\n", d)
			}
		}
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return errFixturesFailed
	}
	return nil
}
