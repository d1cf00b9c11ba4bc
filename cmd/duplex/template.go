package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripts"
)

// maxTemplateFiles and maxTemplateBytes bound a folder import like the
// archive import through the API.
const (
	maxTemplateFiles = 200
	maxTemplateBytes = 4 << 20
)

// runTemplate imports a template folder (the layout of scripts/<name>/) into
// a team as a new version, or exports one version of a team template as
// such a folder: templates kept in git, published from CI.
func runTemplate(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("template: import or export")
	}
	fs := flag.NewFlagSet("template "+args[0], flag.ExitOnError)
	var c common
	c.register(fs, "duplex-data")
	team := fs.String("team", "default", "the team that owns the template")
	name := fs.String("name", "", "template name (import: default the folder's name)")
	note := fs.String("note", "", "a note for the published version (import)")
	version := fs.Int("version", 0, "version to export (default: the latest)")
	_ = fs.Parse(args[1:])
	st, err := openExisting(ctx, c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.Identity().TeamByName(ctx, *team)
	if err != nil {
		return err
	}
	switch args[0] {
	case "import":
		if fs.NArg() != 1 {
			return errors.New("template import: give one folder")
		}
		dir := fs.Arg(0)
		if *name == "" {
			*name = filepath.Base(filepath.Clean(dir))
		}
		if !scripts.ValidName(*name) {
			return fmt.Errorf("template import: %q is not a valid template name", *name)
		}
		files, err := readFolder(dir)
		if err != nil {
			return err
		}
		body, err := scripts.FromFiles(files)
		if err != nil {
			return fmt.Errorf("template import %s: %w", dir, err)
		}
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		var v store.TemplateVersion
		existing, err := st.Templates().TemplateByName(ctx, t.ID, *name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			tpl := store.TeamTemplate{TeamID: t.ID, Name: *name, Title: body.Title, Description: body.Description}
			v, err = st.Templates().CreateTemplate(ctx, &tpl, string(raw), "duplex template", *note)
			existing = tpl
		case err == nil:
			v, err = st.Templates().PublishTemplateVersion(ctx, existing.ID, body.Title, body.Description, string(raw), "duplex template", *note)
		}
		if err != nil {
			return err
		}
		team := t.ID
		_ = st.AddAudit(ctx, &store.AuditEntry{Actor: "duplex template", Action: "template.import", TeamID: &team,
			Detail: fmt.Sprintf("template %d %q version %d from folder %s", existing.ID, *name, v.Version, dir)})
		fmt.Fprintf(out, "template %q of team %s: version %d published (%d fixture(s))\n", *name, t.Name, v.Version, len(body.Fixtures))
		return nil
	case "export":
		if fs.NArg() != 2 {
			return errors.New("template export: give the template name and a folder")
		}
		tpl, err := st.Templates().TemplateByName(ctx, t.ID, fs.Arg(0))
		if err != nil {
			return err
		}
		n := *version
		if n == 0 {
			n = tpl.Latest
		}
		v, err := st.Templates().GetTemplateVersion(ctx, tpl.ID, n)
		if err != nil {
			return err
		}
		var body scripts.Body
		if err := json.Unmarshal([]byte(v.Body), &body); err != nil {
			return fmt.Errorf("template %q version %d: %w", tpl.Name, n, err)
		}
		files, err := body.Files()
		if err != nil {
			return err
		}
		dir := fs.Arg(1)
		names := make([]string, 0, len(files))
		for p := range files {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, p := range names {
			full := filepath.Join(dir, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(full, files[p], 0o644); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "template %q version %d written to %s (%d files)\n", tpl.Name, n, dir, len(files))
		return nil
	}
	return fmt.Errorf("template: unknown action %q (import or export)", args[0])
}

// readFolder reads a template folder's regular files by relative, slash
// separated path; scripts.FromFiles refuses any it does not know.
func readFolder(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	total := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += len(b)
		if len(files) >= maxTemplateFiles || total > maxTemplateBytes {
			return fmt.Errorf("%s: over %d files or %d bytes", dir, maxTemplateFiles, maxTemplateBytes)
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("template folder: %w", err)
	}
	return files, nil
}
