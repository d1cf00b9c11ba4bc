package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
)

// Key files in the data dir. During a rotation the new key is written to
// secret.key.next before anything is sealed with it, and the old one is kept
// as secret.key.old after: loadBox opens with all three, so a crash at any
// step leaves every secret readable.
const (
	keyFile     = "secret.key"
	nextKeyFile = "secret.key.next"
	oldKeyFile  = "secret.key.old"
)

// loadBox makes the Box of a process. With DUPLEX_SECRET_KEY set it seals
// with that key and also opens with DUPLEX_SECRET_KEY_PREVIOUS and
// DUPLEX_NEW_SECRET_KEY (the two ends of an env-driven rotation). Otherwise
// it seals with <data>/secret.key (created on first start) and also opens
// with secret.key.next and secret.key.old when present, and reads those files
// again when it meets a value sealed with a key it does not hold, so a
// rotation by another process needs no restart.
func loadBox(dataDir string) (*secret.Box, error) {
	if k := os.Getenv("DUPLEX_SECRET_KEY"); k != "" {
		primary, err := secret.DecodeKey(k)
		if err != nil {
			return nil, fmt.Errorf("DUPLEX_SECRET_KEY: %w", err)
		}
		var openers [][]byte
		for _, name := range []string{"DUPLEX_SECRET_KEY_PREVIOUS", "DUPLEX_NEW_SECRET_KEY"} {
			if v := os.Getenv(name); v != "" {
				o, err := secret.DecodeKey(v)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				openers = append(openers, o)
			}
		}
		return secret.New(primary, openers...)
	}
	primary, openers, err := fileKeys(dataDir)
	if err != nil {
		return nil, err
	}
	var box *secret.Box
	if primary == nil {
		box, err = secret.LoadOrCreate(filepath.Join(dataDir, keyFile))
	} else {
		box, err = secret.New(primary, openers...)
	}
	if err != nil {
		return nil, err
	}
	// A value sealed with a key this process does not hold (a rotate run
	// by another process) makes the box read the key files again; it never
	// creates a key.
	box.SetReload(func() (*secret.Box, error) {
		primary, openers, err := fileKeys(dataDir)
		if err != nil {
			return nil, err
		}
		if primary == nil {
			return nil, fmt.Errorf("secret: no key file in %s", dataDir)
		}
		return secret.New(primary, openers...)
	})
	return box, nil
}

// fileKeys reads the key files: the primary is secret.key, or secret.key.next
// when a rotation stopped between its two renames; nil when neither exists.
func fileKeys(dataDir string) (primary []byte, openers [][]byte, err error) {
	read := func(name string) ([]byte, error) {
		k, err := secret.ReadKeyFile(filepath.Join(dataDir, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return k, err
	}
	cur, err := read(keyFile)
	if err != nil {
		return nil, nil, err
	}
	next, err := read(nextKeyFile)
	if err != nil {
		return nil, nil, err
	}
	old, err := read(oldKeyFile)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case cur != nil:
		primary = cur
	case next != nil:
		primary, next = next, nil
	case old != nil:
		// Only the old key is left: refuse rather than create a new key
		// that would make every stored secret unreadable.
		return nil, nil, fmt.Errorf("secret: %s is missing but %s exists; restore the key file", keyFile, oldKeyFile)
	default:
		return nil, nil, nil
	}
	for _, k := range [][]byte{next, old} {
		if k != nil {
			openers = append(openers, k)
		}
	}
	return primary, openers, nil
}

// runSecrets implements `duplex secrets rotate`.
func runSecrets(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return fmt.Errorf("usage: duplex secrets rotate [--data DIR] [--db DSN]")
	}
	fs := flag.NewFlagSet("secrets rotate", flag.ContinueOnError)
	var c common
	c.register(fs, "duplex-data")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	return rotate(ctx, c, out, nil)
}

// rotate re-seals every system's secrets with a new key. afterCommit, when
// not nil, runs between the transaction and the key file renames: tests
// stop there to simulate a crash.
func rotate(ctx context.Context, c common, out io.Writer, afterCommit func() error) error {
	st, err := openExisting(ctx, c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if cur := os.Getenv("DUPLEX_SECRET_KEY"); cur != "" {
		return rotateEnv(ctx, st, out)
	}
	primary, openers, err := fileKeys(c.dataDir)
	if err != nil {
		return err
	}
	if primary == nil {
		return fmt.Errorf("rotate: no key file in %s (nothing is sealed yet)", c.dataDir)
	}
	nextPath, keyPath := filepath.Join(c.dataDir, nextKeyFile), filepath.Join(c.dataDir, keyFile)
	next, err := secret.ReadKeyFile(nextPath)
	switch {
	case err == nil:
		// An earlier rotate stopped part way: finish it with the same key,
		// which may already seal some values.
		fmt.Fprintf(out, "finishing an interrupted rotation to key %s\n", secret.KeyID(next))
	case errors.Is(err, os.ErrNotExist):
		if next, err = secret.GenerateKey(); err != nil {
			return err
		}
		// On disk (fsynced) before anything is sealed with it.
		if err := secret.WriteKeyFile(nextPath, next); err != nil {
			return err
		}
	default:
		return err
	}
	box, err := secret.New(next, append([][]byte{primary}, openers...)...)
	if err != nil {
		return err
	}
	n, err := reseal(ctx, st, box)
	if err != nil {
		return err
	}
	if afterCommit != nil {
		if err := afterCommit(); err != nil {
			return err
		}
	}
	if _, err := os.Stat(keyPath); err == nil {
		if err := os.Rename(keyPath, filepath.Join(c.dataDir, oldKeyFile)); err != nil {
			return fmt.Errorf("rotate: %w", err)
		}
	}
	if err := os.Rename(nextPath, keyPath); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	if err := secret.SyncDir(c.dataDir); err != nil {
		return err
	}
	fmt.Fprintf(out, "re-sealed the secrets of %d system(s) with key %s; the previous key is kept in %s\n",
		n, box.KeyID(), filepath.Join(c.dataDir, oldKeyFile))
	fmt.Fprintln(out, "running duplex processes on this data dir read the new key when they next meet a value sealed with it (within seconds); processes with a copy of the key files elsewhere need the new files")
	return nil
}

// rotateEnv re-seals with DUPLEX_NEW_SECRET_KEY; the operator then moves it
// into DUPLEX_SECRET_KEY (the process environment is not ours to change).
func rotateEnv(ctx context.Context, st *store.Store, out io.Writer) error {
	nv := os.Getenv("DUPLEX_NEW_SECRET_KEY")
	if nv == "" {
		return fmt.Errorf("rotate: DUPLEX_SECRET_KEY is set, so the new key must come from DUPLEX_NEW_SECRET_KEY (for example: openssl rand -base64 32)")
	}
	next, err := secret.DecodeKey(nv)
	if err != nil {
		return fmt.Errorf("DUPLEX_NEW_SECRET_KEY: %w", err)
	}
	var keys [][]byte
	for _, name := range []string{"DUPLEX_SECRET_KEY", "DUPLEX_SECRET_KEY_PREVIOUS"} {
		if v := os.Getenv(name); v != "" {
			k, err := secret.DecodeKey(v)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			keys = append(keys, k)
		}
	}
	box, err := secret.New(next, keys...)
	if err != nil {
		return err
	}
	n, err := reseal(ctx, st, box)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "re-sealed the secrets of %d system(s) with key %s (DUPLEX_NEW_SECRET_KEY)\n", n, box.KeyID())
	fmt.Fprintln(out, "now set DUPLEX_SECRET_KEY to that value and DUPLEX_SECRET_KEY_PREVIOUS to the old one, unset DUPLEX_NEW_SECRET_KEY, and restart duplex")
	return nil
}

// reseal opens every system's secrets with any key of box and seals them
// with its primary, in one transaction: a system whose secrets cannot be
// opened stops the whole rotation, so no key is ever dropped that still
// seals something.
func reseal(ctx context.Context, st *store.Store, box *secret.Box) (int, error) {
	n := 0
	err := st.Tx(ctx, func(tx *store.Store) error {
		systems, err := tx.ListSystems(ctx)
		if err != nil {
			return err
		}
		for _, s := range systems {
			if len(s.Secrets) == 0 {
				continue
			}
			m, err := box.OpenMap(s.Secrets)
			if err != nil {
				return fmt.Errorf("system %q: %w", s.Name, err)
			}
			if s.Secrets, err = box.SealMap(m); err != nil {
				return err
			}
			if err := tx.UpdateSystem(ctx, &s); err != nil {
				return err
			}
			n++
		}
		// Peer links' private keys are sealed with the same box
		// (docs/peers.md): re-sealed in the same transaction.
		links, err := tx.ListPeerLinks(ctx)
		if err != nil {
			return err
		}
		for _, l := range links {
			k, err := box.Open(l.PrivateKey)
			if err != nil {
				return fmt.Errorf("peer link %q: %w", l.Name, err)
			}
			if l.PrivateKey, err = box.Seal(k); err != nil {
				return err
			}
			if err := tx.SavePeerLink(ctx, &l); err != nil {
				return err
			}
		}
		return tx.AddAudit(ctx, &store.AuditEntry{Actor: "rotate", Action: "secrets.rotate",
			Detail: fmt.Sprintf("re-sealed the secrets of %d system(s) and the keys of %d peer link(s) with key %s", n, len(links), box.KeyID())})
	})
	if err != nil {
		return 0, fmt.Errorf("rotate: %w", err)
	}
	return n, nil
}
