package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/confdir"
)

// errInvalid makes `validate` and a refused `apply` exit non-zero after
// the problems are printed.
var errInvalid = errors.New("the folder has problems")

// parseWithDir parses flags given before or after the one folder argument
// (the flag package stops at the first non-flag).
func parseWithDir(fs *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err // -h: the flag package printed the usage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("%s: give one folder, got %d arguments", fs.Name(), len(pos))
	}
	return pos[0], nil
}

// openStore opens the store as `migrate up` does (pending migrations applied).
func openStore(ctx context.Context, c common) (*store.Store, error) {
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil && c.db == "" {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	return store.Open(ctx, c.dsn())
}

// openWithBox opens the store and the secret box; the data dir is made
// first because the key file lives there.
func openWithBox(ctx context.Context, c common) (*store.Store, *secret.Box, error) {
	st, err := openStore(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	box, err := loadBox(c.dataDir)
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return st, box, nil
}

// runExport implements `duplex export DIR`. It only reads the store, which
// must exist (a mistyped --data is an error, not an empty export).
func runExport(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	var c common
	c.register(fs, "duplex-data")
	team := fs.String("team", "", "export only this team (default: every team)")
	prune := fs.Bool("prune", false, "remove the files of systems, connections and templates the store does not have (default: keep them and list them)")
	dir, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	st, box, err := openExistingWithBox(ctx, c, false)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	stats, err := confdir.Export(ctx, st, box, dir, confdir.ExportOptions{Team: *team, Prune: *prune})
	for _, p := range stats.Removed {
		fmt.Fprintf(out, "removed %s (not in the store)\n", filepath.Join(dir, p))
	}
	if err != nil {
		return err
	}
	for _, p := range stats.Stale {
		fmt.Fprintf(out, "kept %s: not in the store (--prune removes it)\n", filepath.Join(dir, p))
	}
	fmt.Fprintf(out, "exported %d team(s), %d system(s), %d connection(s), %d template(s) to %s in %s\n",
		stats.Teams, stats.Systems, stats.Connections, stats.Templates, dir, time.Since(start).Round(time.Millisecond))
	return nil
}

// runApply implements `duplex apply DIR`: plan, print, then apply in one
// transaction unless --dry-run.
func runApply(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	var c common
	c.register(fs, "duplex-data")
	team := fs.String("team", "", "apply only teams/NAME/ of the folder (default: every team in it)")
	dryRun := fs.Bool("dry-run", false, "print the plan and write nothing (no store, key or migration either)")
	prune := fs.Bool("prune", false, "delete connections, systems and secret names of the folder's teams that the folder does not have")
	create := fs.Bool("create", false, "make the store and its secret key when --data / --db names none (default: a missing store or key is an error)")
	secretsFile := fs.String("secrets", "", `JSON file {"system": {"name": "value"}} with secret values (they win over DUPLEX_SECRET_<SYSTEM>_<NAME>)`)
	dir, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	opts := confdir.Options{Team: *team, Prune: *prune}
	if *secretsFile != "" {
		raw, err := os.ReadFile(*secretsFile)
		if err != nil {
			return fmt.Errorf("secrets file: %w", err)
		}
		if err := json.Unmarshal(raw, &opts.Secrets); err != nil {
			// The decoder's message never quotes the file's content.
			return fmt.Errorf("secrets file %s: %w", *secretsFile, err)
		}
	}
	folder, probs, err := confdir.Read(dir)
	if err != nil {
		return err
	}
	reg, err := registry()
	if err != nil {
		return err
	}
	// Kinds and settings before any store is opened: a misspelled key
	// fails here, with its position, in a dry run too.
	probs = append(probs, confdir.CheckSystems(folder, reg)...)
	if len(probs) > 0 {
		printProblems(out, dir, probs)
		return errInvalid
	}
	start := time.Now()
	plan, st, err := planApply(ctx, c, folder, opts, *create, *dryRun, out)
	if err != nil || plan == nil {
		return err
	}
	defer st.Close()
	if len(plan.Changes) == 0 {
		return nil
	}
	if err := plan.Apply(ctx, st); err != nil {
		return err
	}
	fmt.Fprintf(out, "applied %d change(s) in %s\n", len(plan.Changes), time.Since(start).Round(time.Millisecond))
	return nil
}

// runValidate implements `duplex validate DIR`, for CI: no store needed.
func runValidate(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	dir, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	reg, err := registry()
	if err != nil {
		return err
	}
	probs, err := confdir.Validate(ctx, dir, reg)
	if err != nil {
		return err
	}
	if len(probs) > 0 {
		printProblems(out, dir, probs)
		return errInvalid
	}
	fmt.Fprintf(out, "%s: ok\n", dir)
	return nil
}

// printProblems prints each problem as DIR/file:line:column: message.
func printProblems(out io.Writer, dir string, probs []confdir.Problem) {
	for _, p := range probs {
		if p.File != "" {
			p.File = filepath.Join(dir, p.File)
		}
		fmt.Fprintln(out, p.String())
	}
	fmt.Fprintf(out, "%d problem(s)\n", len(probs))
}
