package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/scripting"
)

// probe is a connector with nothing to sync that records the secrets each
// open was given.
type probe struct{}

func (probe) Changes(context.Context, string, int) (connectors.Page, error) {
	return connectors.Page{}, nil
}
func (probe) Get(context.Context, string) (connectors.Entity, error) {
	return connectors.Entity{}, connectors.ErrNotFound
}
func (probe) Create(context.Context, map[string]any) (connectors.Entity, error) {
	return connectors.Entity{}, errors.New("probe")
}
func (probe) Update(context.Context, string, map[string]any) (connectors.Entity, error) {
	return connectors.Entity{}, errors.New("probe")
}
func (probe) AddComment(context.Context, string, connectors.Comment) (connectors.Comment, error) {
	return connectors.Comment{}, errors.New("probe")
}
func (probe) Describe(context.Context) (connectors.Schema, error) { return connectors.Schema{}, nil }
func (probe) Close() error                                        { return nil }

type opens struct {
	mu  sync.Mutex
	got map[string][]map[string]string // system name → secrets of each open
}

func (o *opens) last(name string) (map[string]string, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.got[name]
	if len(l) == 0 {
		return nil, 0
	}
	return l[len(l)-1], len(l)
}

// TestRotateUnderRunningEngine: `secrets rotate` by another process while an
// engine runs with the box it loaded before: the engine reads the new key
// files by itself (no restart), keeps its connectors (same values), and a
// secret changed afterwards, sealed with the new key only, reaches a
// reopened connector.
func TestRotateUnderRunningEngine(t *testing.T) {
	f := newRotateFixture(t)
	ctx := context.Background()
	box, err := loadBox(f.c.dataDir) // the running process's box
	if err != nil {
		t.Fatal(err)
	}
	before := box.KeyID()
	st, err := openStore(ctx, f.c)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := &opens{got: map[string][]map[string]string{}}
	reg := connectors.NewRegistry()
	if err := reg.Register("sql", func(_ context.Context, cfg connectors.Config) (connectors.Connector, error) {
		o.mu.Lock()
		o.got[cfg.Name] = append(o.got[cfg.Name], cfg.Secrets)
		o.mu.Unlock()
		return probe{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Options{Store: st, Connectors: reg, Secrets: box,
		Runner: scripting.NewRunner(scripting.Options{Timeout: time.Second})})
	defer eng.Close()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitFor(t, "every system opened", func() bool {
		for name, want := range f.want {
			if got, _ := o.last(name); got["password"] != want["password"] {
				return false
			}
		}
		return true
	})

	if err := rotate(ctx, f.c, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	newKey, err := secret.ReadKeyFile(filepath.Join(f.c.dataDir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the running box to read the new key", func() bool { return box.KeyID() == secret.KeyID(newKey) })
	if box.KeyID() == before {
		t.Fatal("key did not change")
	}
	for name := range f.want {
		if _, n := o.last(name); n != 1 {
			t.Errorf("system %s opened %d times: a rotation alone reopens nothing", name, n)
		}
	}

	// Another process changes a secret, sealing with the new key only.
	other, err := secret.New(newKey)
	if err != nil {
		t.Fatal(err)
	}
	systems, err := st.ListSystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range systems {
		if s.Name != "desk" {
			continue
		}
		if s.Secrets, err = other.SealMap(map[string]string{"password": "changed"}); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateSystem(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the changed secret to reach a reopened connector", func() bool {
		got, _ := o.last("desk")
		return got["password"] == "changed"
	})
	// The box seals with the new key, so what this process seals now
	// survives the next rotation like everything else.
	sealed, err := box.SealMap(map[string]string{"x": "y"})
	if err != nil || !other.SealedWithPrimary(sealed) {
		t.Fatalf("sealed with the old key after the reload: %v", err)
	}
}
