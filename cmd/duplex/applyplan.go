package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/confdir"
)

// planApply prints the plan that makes the store of c match folder. It
// returns the plan with the open store when the plan is to be applied, and
// a nil plan when there is nothing more to do (a dry run). A store or key
// that does not exist is an error unless create; even then nothing is made
// before the plan is known to be good, and a dry run makes nothing at all:
// a missing store is planned against an empty one in memory.
func planApply(ctx context.Context, c common, folder *confdir.Folder, opts confdir.Options, create, dryRun bool, out io.Writer) (*confdir.Plan, *store.Store, error) {
	exists, err := storeExists(c)
	if err == nil && exists && sqlitePath(c.dsn()) == "" {
		// PostgreSQL: the database is there; a store is its schema.
		exists, err = hasSchema(ctx, c)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	if !exists && !create {
		return nil, nil, fmt.Errorf("no store at %s: check --data / --db (DUPLEX_DATA, DUPLEX_DB), or give --create to make a new one", redactDSN(c.dsn()))
	}
	keyOK, err := keyAvailable(c.dataDir)
	if err != nil {
		return nil, nil, err
	}
	if !keyOK && !create {
		return nil, nil, fmt.Errorf("no secret key at %s (and DUPLEX_SECRET_KEY is not set): check --data, or give --create to make a new key",
			filepath.Join(c.dataDir, keyFile))
	}
	if !exists {
		mem, err := store.Open(ctx, "file::memory:")
		if err != nil {
			return nil, nil, err
		}
		box, err := planBox(c.dataDir, keyOK)
		if err != nil {
			_ = mem.Close()
			return nil, nil, err
		}
		plan, err := confdir.MakePlan(ctx, mem, box, folder, opts)
		_ = mem.Close()
		if err != nil {
			return nil, nil, err
		}
		plan.Print(out)
		if len(plan.Problems) > 0 {
			return nil, nil, errInvalid
		}
		if dryRun {
			fmt.Fprintf(out, "dry run: nothing applied; the store %s does not exist yet (apply --create makes it)\n", redactDSN(c.dsn()))
			return nil, nil, nil
		}
		st, err := openStore(ctx, c) // creates and migrates it
		if err != nil {
			return nil, nil, err
		}
		if box, err = loadBox(c.dataDir); err != nil { // creates the key file unless DUPLEX_SECRET_KEY is set
			_ = st.Close()
			return nil, nil, err
		}
		// The same plan against the new, empty store, with the real key.
		if plan, err = confdir.MakePlan(ctx, st, box, folder, opts); err == nil && len(plan.Problems) > 0 {
			plan.Print(out)
			err = errInvalid
		}
		if err != nil {
			_ = st.Close()
			return nil, nil, err
		}
		fmt.Fprintf(out, "created the store %s\n", redactDSN(c.dsn()))
		return plan, st, nil
	}
	st, err := openExisting(ctx, c, !dryRun)
	if err != nil {
		return nil, nil, err
	}
	box, err := applyBox(ctx, st, c.dataDir, keyOK, dryRun)
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	plan, err := confdir.MakePlan(ctx, st, box, folder, opts)
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	plan.Print(out)
	if len(plan.Problems) > 0 {
		_ = st.Close()
		return nil, nil, errInvalid
	}
	if dryRun {
		printDraftImpacts(ctx, c, st, box, plan.Drafts, out)
		_ = st.Close()
		fmt.Fprintln(out, "dry run: nothing applied")
		return nil, nil, nil
	}
	return plan, st, nil
}

// planBox is the key a plan against a store that does not exist yet seals
// with: the existing key, or a throwaway one (the plan writes nothing).
func planBox(dataDir string, keyOK bool) (*secret.Box, error) {
	if keyOK {
		return loadBox(dataDir)
	}
	k, err := secret.GenerateKey()
	if err != nil {
		return nil, err
	}
	return secret.New(k)
}

// applyBox is the key for an existing store. Without a key (only reached
// with --create) a store that already seals secrets is refused: a new key
// could not open them. A dry run plans with a throwaway key.
func applyBox(ctx context.Context, st *store.Store, dataDir string, keyOK, dryRun bool) (*secret.Box, error) {
	if keyOK {
		return loadBox(dataDir)
	}
	var sealed int64
	if err := st.DB().WithContext(ctx).Model(&store.System{}).Where("secrets IS NOT NULL AND length(secrets) > 0").Count(&sealed).Error; err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if sealed > 0 {
		_, err := existingBox(dataDir)
		return nil, fmt.Errorf("%w; the store holds the secrets of %d system(s) sealed with that key, so no new key is made", err, sealed)
	}
	if dryRun {
		return planBox(dataDir, false)
	}
	return loadBox(dataDir)
}
