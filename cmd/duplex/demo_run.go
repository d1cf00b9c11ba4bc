package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/credential"
)

// demoTokenName names the API token each demo run prints.
const demoTokenName = "demo banner"

// demoContinues reports whether dir holds an earlier demo (its support desk
// database): a second `make run` continues it rather than starting over.
func demoContinues(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "support.db"))
	return err == nil
}

// demoContinuesNote follows the banner of a demo that continues an earlier
// one, and says how to start fresh (issue 19: it looked like a new demo).
const demoContinuesNote = `This continues the demo in %[1]s from an earlier run (its tickets, issues,
scripts and history). To start fresh, stop it (Ctrl+C) and run:  make run DEMO_FLAGS=--reset
(or: duplex demo --reset --data %[1]s)
`

// demoFiles are the files a demo keeps in its folder: the store and the two
// demo databases (with SQLite's journal files). --reset deletes these only,
// never the folder, so a mistyped --data cannot empty another directory.
var demoFiles = []string{"duplex.db", "support.db", "engineering.db"}

// resetDemo deletes an earlier demo's databases in dir so the run starts
// fresh; the secret key file stays (a new store has nothing sealed with it).
func resetDemo(dir string) error {
	for _, name := range demoFiles {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			err := os.Remove(filepath.Join(dir, name+suffix))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("reset the demo: %w", err)
			}
		}
	}
	return nil
}

func printDemoContinues(out io.Writer, dir string) {
	fmt.Fprintf(out, demoContinuesNote, dir)
}

// endDemoTokens revokes the tokens earlier demo runs printed: each is made
// for its run, and a run that ended without stopping cleanly (kill -9)
// could not revoke its own.
func endDemoTokens(ctx context.Context, st *store.Store, userID int64) error {
	ts, err := st.Identity().ListAPITokens(ctx, userID)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.Name == demoTokenName && t.RevokedAt == nil {
			if err := st.Identity().RevokeAPIToken(ctx, userID, t.ID); err != nil {
				return fmt.Errorf("end an earlier demo token: %w", err)
			}
		}
	}
	return nil
}

// revokeDemoToken ends this run's token when the demo stops, as its banner
// says ("made for this run"). The run's context is done by then.
func revokeDemoToken(st *store.Store, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t, err := st.Identity().APITokenByHash(ctx, credential.HashToken(token))
	if err != nil {
		return fmt.Errorf("demo token: %w", err)
	}
	return st.Identity().RevokeAPIToken(ctx, t.UserID, t.ID)
}
