package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/confdir"
	"github.com/duplexsync/duplex/scripting/sandbox"
)

// runImpact implements `duplex script impact CONNECTION`: the impact
// preview of draft script files over the connection's recent synced
// changes, read from the store. It writes nothing; scripts run in sandbox
// workers as the server runs them.
func runImpact(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("script impact", flag.ContinueOnError)
	var c common
	c.register(fs, "duplex-data")
	c.sandbox.register(fs)
	dir := fs.String("direction", "", "a_to_b or b_to_a")
	files := map[string]*string{}
	for _, k := range []string{"trigger", "outgoing", "incoming", "rules"} {
		files[k] = fs.String(k, "", "file with the draft "+k+" of the direction (trigger and outgoing of its source side, incoming and rules of its target side)")
	}
	changes := fs.Int("changes", engine.DefaultImpactChanges, "recent synced changes to replay (at most 1000)")
	budget := fs.Duration("budget", engine.DefaultImpactBudget, "time budget; the result is marked partial when it runs out")
	asJSON := fs.Bool("json", false, "print the result as JSON (as the API answers)")
	name, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	draft, err := readDraft(files)
	if err != nil {
		return err
	}
	st, box, err := openExistingWithBox(ctx, c, false)
	if err != nil {
		return err
	}
	defer st.Close()
	conn, err := findConnection(ctx, st, name)
	if err != nil {
		return err
	}
	eng, stop, err := impactEngine(c, st, box)
	if err != nil {
		return err
	}
	defer stop()
	res, err := eng.Impact(ctx, conn.ID, store.Direction(*dir), draft, *changes, *budget)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printImpact(out, conn.Name, res)
	return nil
}

// impactEngine is an engine over st for impact previews only: scripts run
// in one sandbox worker, as the server runs them; it never polls or syncs.
func impactEngine(c common, st *store.Store, box *secret.Box) (*engine.Engine, func(), error) {
	reg, err := registry()
	if err != nil {
		return nil, nil, err
	}
	pool, err := sandbox.NewPool(sandbox.Options{Workers: 1, Interactive: max(c.sandbox.interactive, 1),
		Memory: c.sandbox.memory(), Timeout: time.Second, Logger: slog.Default()})
	if err != nil {
		return nil, nil, err
	}
	eng := engine.New(engine.Options{Store: st, Connectors: reg, Secrets: box, Runner: pool, Interactive: pool.Interactive()})
	return eng, func() {
		_ = eng.Close()
		stopPool(pool)
	}, nil
}

// printDraftImpacts prints, for a dry run, the impact preview of each
// direction whose scripts or rules the plan changes, over the connection's
// recent synced changes. It writes nothing; a preview that cannot run (a
// system that cannot be reached for its schema) is named, not fatal.
func printDraftImpacts(ctx context.Context, c common, st *store.Store, box *secret.Box, drafts []confdir.Draft, out io.Writer) {
	if len(drafts) == 0 {
		return
	}
	eng, stop, err := impactEngine(c, st, box)
	if err != nil {
		fmt.Fprintf(out, "impact of the changed scripts not shown: %v\n", err)
		return
	}
	defer stop()
	for _, d := range drafts {
		name := d.Connection
		if d.Team != "" {
			name = d.Team + "/" + d.Connection
		}
		fmt.Fprintf(out, "impact of connection %s %s (changed: %s):\n", name, d.Direction, draftParts(d.Draft))
		res, err := eng.Impact(ctx, d.ConnectionID, d.Direction, d.Draft, engine.DefaultImpactChanges, engine.DefaultImpactBudget)
		if err != nil {
			fmt.Fprintf(out, "  not shown: %v\n", err)
			continue
		}
		printImpact(out, name, res)
	}
}

func draftParts(d engine.ImpactDraft) string {
	var parts []string
	for _, p := range []struct {
		name string
		v    *string
	}{{"trigger", d.Trigger}, {"outgoing", d.Outgoing}, {"incoming", d.Incoming}, {"rules", d.Rules}} {
		if p.v != nil {
			parts = append(parts, p.name)
		}
	}
	return strings.Join(parts, ", ")
}

// readDraft reads the draft files given; at least one is needed.
func readDraft(files map[string]*string) (engine.ImpactDraft, error) {
	var d engine.ImpactDraft
	slots := map[string]**string{"trigger": &d.Trigger, "outgoing": &d.Outgoing, "incoming": &d.Incoming, "rules": &d.Rules}
	n := 0
	for k, path := range files {
		if *path == "" {
			continue
		}
		b, err := os.ReadFile(*path)
		if err != nil {
			return d, fmt.Errorf("draft %s: %w", k, err)
		}
		src := string(b)
		*slots[k] = &src
		n++
	}
	if n == 0 {
		return d, fmt.Errorf("script impact: give a draft: -trigger, -outgoing, -incoming or -rules FILE")
	}
	return d, nil
}

// findConnection takes a connection id or name.
func findConnection(ctx context.Context, st *store.Store, name string) (store.Connection, error) {
	if id, err := strconv.ParseInt(name, 10, 64); err == nil {
		return st.GetConnection(ctx, id)
	}
	all, err := st.ListConnections(ctx)
	if err != nil {
		return store.Connection{}, err
	}
	for _, c := range all {
		if c.Name == name {
			return c, nil
		}
	}
	return store.Connection{}, fmt.Errorf("no connection named %q", name)
}

// printImpact prints the totals, then each entity that differs.
func printImpact(out io.Writer, conn string, res engine.ImpactResult) {
	t := res.Totals
	fmt.Fprintf(out, "%s %s: %d changes read, %d entities: %d unchanged, %d replica differs, %d patch differs, %d would fail, %d now succeed, %d start syncing, %d stop syncing, %d validation fails, %d not replayable (%d approximate)\n",
		conn, res.Direction, res.Changes, t.Entities, t.Unchanged, t.ReplicaDiffers, t.PatchDiffers, t.WouldFail, t.NowSucceeds,
		t.StartsSyncing, t.StopsSyncing, t.ValidationFails, t.NotReplayable, t.Inexact)
	if res.Partial {
		fmt.Fprintln(out, "PARTIAL: the time budget ran out before every entity was replayed")
	}
	if res.DraftError != "" {
		fmt.Fprintf(out, "draft error: %s\n", res.DraftError)
	}
	for _, e := range res.Entities {
		if e.Outcome == engine.ImpactUnchanged {
			continue
		}
		fmt.Fprintf(out, "%-16s entity %s (event %d, target %s)", e.Outcome, e.EntityID, e.EventID, e.TargetID)
		switch {
		case e.Error != "":
			fmt.Fprintf(out, ": %s stage, line %d: %s", e.Stage, e.Line, e.Error)
		case e.Reason != "":
			fmt.Fprintf(out, ": %s", e.Reason)
		}
		fmt.Fprintln(out)
		if len(e.Inexact) > 0 {
			fmt.Fprintf(out, "    approximate: %s (not reproduced from what the store holds; the value sent is used)\n", strings.Join(e.Inexact, ", "))
		}
		printChanges(out, "replica", e.Replica)
		printChanges(out, "patch", e.Patch)
		for _, r := range e.Rules {
			fmt.Fprintf(out, "    rule %d (%s %s) fails: %s%s\n", r.Index+1, r.Rule, r.Field, r.Message, r.Error)
		}
	}
}

func printChanges(out io.Writer, what string, m map[string]engine.FieldChange) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o, _ := json.Marshal(m[k].Old)
		n, _ := json.Marshal(m[k].New)
		fmt.Fprintf(out, "    %s.%s: %s → %s\n", what, k, o, n)
	}
}
