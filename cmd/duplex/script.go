package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/duplexsync/duplex/internal/confdir"
	"github.com/duplexsync/duplex/scripting"
)

// errFixturesFailed makes the command exit non-zero after printing results.
var errFixturesFailed = errors.New("fixtures failed")

// runScript implements `duplex script test DIR...`: it runs each template
// folder's testdata/*.json fixtures, for a team's own CI.
func runScript(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 && args[0] == "impact" {
		return runImpact(ctx, args[1:], out)
	}
	if len(args) < 2 || args[0] != "test" {
		return fmt.Errorf("usage: duplex script test DIR [DIR...]  (a template folder with testdata/*.json)\n       duplex script impact -direction a_to_b|b_to_a -incoming FILE ... CONNECTION")
	}
	runner := scripting.NewRunner(scripting.Options{})
	passed, failed := 0, 0
	for _, dir := range args[1:] {
		results, err := confdir.RunFixtures(ctx, runner, dir)
		if err != nil {
			return err
		}
		if len(results) == 0 {
			return fmt.Errorf("%s: no fixtures in testdata/*.json", dir)
		}
		for _, r := range results {
			if len(r.Diffs) == 0 {
				passed++
				fmt.Fprintf(out, "ok    %s/%s\n", r.Template, r.Name)
				continue
			}
			failed++
			fmt.Fprintf(out, "FAIL  %s/%s\n", r.Template, r.Name)
			for _, d := range r.Diffs {
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
