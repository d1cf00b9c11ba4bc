import { useEffect, useRef, useState } from "preact/hooks";
import { cleanMessage } from "../words";
import { api, ApiError, type FieldSpec, type Kind, type Side, type TriggerPreview } from "../api";
import { denied, dirtyKeys } from "../logic";
import { ErrorBox, Loading, toast, useAsync } from "../ui";
import { keyOf, savedSources, type Ctx, type Key } from "./connection";
import { RulesPanel } from "./rules-panel";
import { ImpactPanel } from "./impact-panel";
import { impactDrafts, type Direction, type ImpactResult } from "../impact";
import { loadMapping, MappingView } from "./mapping-view";
import { keysOf, type Mapping } from "../mapping";

type Monaco = typeof import("../editor/monaco");
type Diag = { state: "checking" } | { state: "ok" } | { state: "read-only" } | { state: "error"; line?: number; column?: number; message: string };

const LABEL: Record<Kind, string> = { trigger: "Trigger", outgoing: "Outgoing script", incoming: "Incoming script" };
const HINT: Record<Kind, string> = {
  trigger: "expr: which changes of this side start a sync",
  outgoing: "fills replica from entity",
  incoming: "applies replica to entity",
};

/** The scripts of both sides, laid out as the two flows they drive. */
export function ScriptsTab({ ctx }: { ctx: Ctx }) {
  const env = useAsync(async () => {
    const [mod, dts, schemaA, schemaB] = await Promise.all([
      import("../editor/monaco"),
      api.scriptAPI(),
      api.schema(ctx.conn.system_a_id).catch(() => null),
      api.schema(ctx.conn.system_b_id).catch(() => null),
    ]);
    mod.addScriptAPI(dts);
    return { mod, fields: { a: schemaA?.fields ?? [], b: schemaB?.fields ?? [] } as Record<Side, FieldSpec[]>, schemaMissing: !schemaA || !schemaB };
  }, [ctx.conn.id]);
  const [diags, setDiags] = useState<Record<string, Diag>>({});
  const [saving, setSaving] = useState(false);
  const saved = savedSources(ctx.conn);
  const value = (k: Key) => ctx.drafts[k] ?? saved[k];
  const dirty = dirtyKeys(saved, ctx.drafts) as Key[];

  // The mapping view of each direction: what the saved scripts are (a
  // mapping or code), which view is shown, and the unsaved mapping.
  const scriptVersions = JSON.stringify(ctx.conn.scripts ? Object.values(ctx.conn.scripts).map((k) => Object.values(k ?? {}).map((v) => v?.version)) : []);
  const maps = useAsync(async () => {
    const [ab, ba] = await Promise.all([loadMapping(ctx.conn.id, "a_to_b"), loadMapping(ctx.conn.id, "b_to_a")]);
    return { a_to_b: ab, b_to_a: ba } as Record<Direction, Awaited<ReturnType<typeof loadMapping>>>;
  }, [ctx.conn.id, scriptVersions]);
  const [mode, setMode] = useState<Partial<Record<Direction, "code" | "mapping">>>({});
  const [mapDrafts, setMapDrafts] = useState<Partial<Record<Direction, Mapping>>>({});
  const rendered = useRef<Record<string, string>>({}); // script texts the mapping views made
  const viewOf = (d: Direction) => mode[d] ?? (maps.data && "mapping" in maps.data[d] ? "mapping" : "code");

  const noSave = denied(ctx.role, "save");
  const noImpact = denied(ctx.role, "test");
  const [impact, setImpact] = useState<ImpactResult[]>();
  const [impacting, setImpacting] = useState(false);
  const runImpact = async () => {
    setImpacting(true);
    try {
      setImpact(await Promise.all(impactDrafts(ctx.drafts, dirty).map((d) => api.impact(ctx.conn.id, d))));
    } catch (e) {
      toast(`Impact preview failed: ${(e as Error).message}`, "error");
    } finally {
      setImpacting(false);
    }
  };
  const saveRef = useRef<() => Promise<void>>(async () => {});
  saveRef.current = async () => {
    if (saving || noSave) return;
    const keys = dirtyKeys(savedSources(ctx.conn), ctx.drafts) as Key[];
    if (keys.length === 0) {
      toast("Nothing to save");
      return;
    }
    setSaving(true);
    const done: Key[] = [];
    let failed = 0;
    // A direction edited as a mapping is saved as one: its scripts in one
    // transaction, audited as mapping.save.
    for (const d of ["a_to_b", "b_to_a"] as Direction[]) {
      const m = mapDrafts[d];
      const mine = Object.values(keysOf(d)) as Key[];
      if (!m || viewOf(d) !== "mapping" || !mine.some((k) => keys.includes(k))) continue;
      try {
        await api.saveMapping(ctx.conn.id, d, m);
        done.push(...mine.filter((k) => keys.includes(k)));
        setMapDrafts((all) => ({ ...all, [d]: undefined }));
      } catch (e) {
        failed++;
        toast(`Mapping not saved: ${(e as Error).message}`, "error");
      }
      keys.splice(0, keys.length, ...keys.filter((k) => !mine.includes(k)));
    }
    for (const k of keys) {
      const [side, kind] = k.split(".") as [Side, Kind];
      try {
        const v = await api.saveScript(ctx.conn.id, side, kind, ctx.drafts[k]);
        done.push(k);
        setDiags((d) => ({ ...d, [k]: { state: "ok" } }));
        void v;
      } catch (e) {
        failed++;
        const err = e as ApiError;
        const pos = err instanceof ApiError ? err.position : null;
        setDiags((d) => ({ ...d, [k]: { state: "error", message: err.message, line: pos?.line, column: pos?.column } }));
      }
    }
    await ctx.reload();
    ctx.resetDrafts(done, false);
    setSaving(false);
    if (done.length) toast(`Saved ${done.length} ${done.length === 1 ? "script" : "scripts"}: ${done.join(", ")}`);
    if (failed) toast(`${failed} not saved: fix the underlined error`, "error");
  };

  // Ctrl/Cmd+S anywhere on this view (inside an editor Monaco handles it).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
        e.preventDefault();
        void saveRef.current();
      }
    };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, []);

  if (env.error) return <ErrorBox error={env.error} retry={env.reload} />;
  if (!env.data) return <Loading what="the editor" />;
  const { mod, fields } = env.data;

  const pane = (side: Side, kind: Kind) => {
    const k = keyOf(side, kind);
    return (
      <Pane
        key={k}
        ctx={ctx}
        mod={mod}
        side={side}
        kind={kind}
        fields={fields[side]}
        value={value(k)}
        version={ctx.conn.scripts?.[side]?.[kind]?.version}
        dirty={dirty.includes(k)}
        diag={diags[k]}
        setDiag={(d) => setDiags((all) => ({ ...all, [k]: d }))}
        onChange={(v) => ctx.setDraft(k, v)}
        onSave={() => void saveRef.current()}
      />
    );
  };

  return (
    <div class="scripts">
      <div class="toolbar sticky">
        <span class={dirty.length ? "warn" : "muted"} data-testid="unsaved">
          {dirty.length ? `${dirty.length} unsaved: ${dirty.join(", ")}` : "All changes saved"}
        </span>
        <span class="spacer" />
        {noSave ? <span class="muted small">read-only: {noSave}</span> : <span class="muted small">Ctrl/⌘+S saves</span>}
        <button
          class="btn"
          disabled={!dirty.length || saving}
          onClick={() => {
            setMapDrafts({});
            ctx.resetDrafts();
          }}
        >
          Discard
        </button>
        <button class="btn" disabled={!dirty.length || impacting || !!noImpact} title={noImpact ?? "What these drafts would have done to the recent synced changes"} onClick={() => void runImpact()} data-testid="impact-run">
          {impacting ? "Replaying…" : "Impact"}
        </button>
        <button class="btn primary" disabled={!dirty.length || saving || !!noSave} title={noSave} onClick={() => void saveRef.current()} data-testid="save">
          {saving ? "Saving…" : "Save"}
        </button>
      </div>
      {impact && <ImpactPanel ctx={ctx} results={impact} onClose={() => setImpact(undefined)} />}
      {env.data.schemaMissing && <div class="warn small">A system's fields could not be read; trigger completion is limited.</div>}
      {(["a", "b"] as Side[]).map((src) => {
        const dst: Side = src === "a" ? "b" : "a";
        const d: Direction = src === "a" ? "a_to_b" : "b_to_a";
        const view = viewOf(d);
        return (
          <section class="flow" key={src} data-flow={`${src}-${dst}`}>
            <h2>
              {ctx.name(src)} <span class="arrow">→</span> {ctx.name(dst)}
              <small class="muted">
                {" "}
                side {src.toUpperCase()} → side {dst.toUpperCase()}
              </small>
              <span class="view-switch" role="group" aria-label="view">
                <button class={`btn small ${view === "code" ? "on" : ""}`} aria-pressed={view === "code"} onClick={() => setMode((m) => ({ ...m, [d]: "code" }))} data-testid={`view-code-${d}`}>
                  Code
                </button>
                <button class={`btn small ${view === "mapping" ? "on" : ""}`} aria-pressed={view === "mapping"} onClick={() => setMode((m) => ({ ...m, [d]: "mapping" }))} data-testid={`view-mapping-${d}`}>
                  Mapping
                </button>
              </span>
            </h2>
            {view === "mapping" ? (
              <div class="flow-cols">
                <div>
                  {maps.data ? (
                    <MappingView
                      ctx={ctx}
                      direction={d}
                      state={maps.data[d]}
                      fields={{ src: fields[src], dst: fields[dst] }}
                      draft={mapDrafts[d]}
                      own={rendered.current}
                      setDraft={(m) => {
                        setMapDrafts((all) => ({ ...all, [d]: m }));
                        if (!m) ctx.resetDrafts(Object.values(keysOf(d)) as Key[], false);
                      }}
                    />
                  ) : (
                    <Loading what="the mapping" />
                  )}
                </div>
                <div>
                  <RulesPanel ctx={ctx} side={dst} />
                </div>
              </div>
            ) : (
            <div class="flow-cols">
              <div>
                {pane(src, "trigger")}
                {pane(src, "outgoing")}
              </div>
              <div>
                <RulesPanel ctx={ctx} side={dst} />
                {pane(dst, "incoming")}
              </div>
            </div>
            )}
          </section>
        );
      })}
    </div>
  );
}

interface PaneProps {
  ctx: Ctx;
  mod: Monaco;
  side: Side;
  kind: Kind;
  fields: FieldSpec[];
  value: string;
  version?: number;
  dirty: boolean;
  diag?: Diag;
  setDiag: (d: Diag) => void;
  onChange: (v: string) => void;
  onSave: () => void;
}

function Pane(p: PaneProps) {
  const el = useRef<HTMLDivElement>(null);
  const ed = useRef<ReturnType<Monaco["createEditor"]> | undefined>(undefined);
  const latest = useRef(p);
  latest.current = p;
  const [preview, setPreview] = useState<TriggerPreview | { error: string }>();

  useEffect(() => {
    ed.current = p.mod.createEditor(el.current!, {
      value: p.value,
      language: p.kind === "trigger" ? p.mod.EXPR : "javascript",
      path: `connection-${p.ctx.conn.id}/${p.side}.${p.kind}.${p.kind === "trigger" ? "expr" : "js"}`,
      fields: p.kind === "trigger" ? p.fields : undefined,
      readOnly: !!denied(p.ctx.role, "edit"),
      onChange: (v) => latest.current.onChange(v),
      onSave: () => latest.current.onSave(),
    });
    return () => ed.current?.dispose();
  }, []);

  // Discarding drafts puts the saved text back into the editor. Nothing else
  // writes into it: a re-render carrying an older keystroke's text must not
  // fight the person typing.
  useEffect(() => {
    if (ed.current && ed.current.getValue() !== p.value) ed.current.setValue(p.value);
  }, [p.ctx.epoch]);

  // A new saved version (saved elsewhere, or restored) shows up when there is no draft.
  useEffect(() => {
    if (!p.dirty && ed.current && ed.current.getValue() !== p.value) ed.current.setValue(p.value);
  }, [p.version]);

  // Server-side compile as you type, debounced; the error is underlined.
  // A viewer's editor is read-only: what is saved compiled when it was saved.
  useEffect(() => {
    if (denied(p.ctx.role, "edit")) return latest.current.setDiag({ state: "read-only" });
    const ctrl = new AbortController();
    const t = setTimeout(async () => {
      latest.current.setDiag({ state: "checking" });
      try {
        await api.validateScript(p.ctx.conn.id, p.side, p.kind, p.value, ctrl.signal);
        latest.current.setDiag({ state: "ok" });
      } catch (e) {
        if ((e as Error).name === "AbortError") return;
        const err = e as ApiError;
        const pos = err instanceof ApiError ? err.position : null;
        latest.current.setDiag({ state: "error", message: err.message, line: pos?.line, column: pos?.column });
      }
    }, 300);
    return () => {
      clearTimeout(t);
      ctrl.abort();
    };
  }, [p.value, p.ctx.conn.id]);

  useEffect(() => {
    const d = p.diag;
    ed.current?.setError(d?.state === "error" && d.line ? { line: d.line, column: d.column ?? 1, message: d.message } : null);
  }, [p.diag]);

  // Trigger preview: how many entities match now, and a few of them.
  useEffect(() => {
    if (p.kind !== "trigger" || p.diag?.state !== "ok" || denied(p.ctx.role, "test")) return;
    const ctrl = new AbortController();
    const t = setTimeout(async () => {
      try {
        setPreview(await api.preview(p.ctx.conn.id, p.side, p.value, ctrl.signal));
      } catch (e) {
        if ((e as Error).name !== "AbortError") setPreview({ error: (e as Error).message });
      }
    }, 250);
    return () => {
      clearTimeout(t);
      ctrl.abort();
    };
  }, [p.diag?.state, p.value]);

  const d = p.diag;
  return (
    <div class={`pane-editor kind-${p.kind} ${d?.state === "error" ? "has-error" : ""}`} data-script={`${p.side}.${p.kind}`}>
      <div class="pane-head">
        <strong>{LABEL[p.kind]}</strong>
        <span class="muted small">
          side {p.side.toUpperCase()} · {HINT[p.kind]}
        </span>
        <span class="spacer" />
        {p.dirty && <span class="dot" title="unsaved" />}
        {p.version !== undefined && <span class="muted small">v{p.version}</span>}
      </div>
      <div class="code" ref={el} />
      <div class="pane-status" data-testid="diag">
        {!d || d.state === "checking" ? (
          <span class="muted">checking…</span>
        ) : d.state === "ok" ? (
          <span class="ok">✓ compiles</span>
        ) : d.state === "read-only" ? (
          <span class="muted">read-only: the saved version</span>
        ) : (
          <span class="bad">
            ✗ {d.line ? `${d.line}:${d.column} ` : ""}
            {cleanMessage(d.message)}
          </span>
        )}
      </div>
      {p.kind === "trigger" && (
        <p class="muted small trigger-note" data-testid="trigger-note">
          Linked items always sync; this trigger only decides which unlinked ones start a sync.
        </p>
      )}
      {p.kind === "trigger" && preview && (
        <div class="preview" data-testid="preview">
          {"error" in preview ? (
            <span class="bad">Preview failed: {preview.error}</span>
          ) : (
            <>
              <span>
                matches <strong>{preview.matched}</strong> of {preview.scanned}
                {preview.truncated ? "+" : ""} {preview.scanned === 1 ? "entity" : "entities"}
              </span>
              {preview.sample.map((e) => (
                <a key={e.id} class="chip" href={`#/connections/${p.ctx.conn.id}/test?side=${p.side}&entity=${encodeURIComponent(e.id)}`} title="Test run with this entity">
                  {e.key || e.id} {firstText(e.fields)}
                </a>
              ))}
              {preview.errors > 0 && <span class="warn small"> {preview.errors} failed: {preview.last_error}</span>}
            </>
          )}
        </div>
      )}
    </div>
  );
}

function firstText(fields: Record<string, unknown>): string {
  for (const v of Object.values(fields)) if (typeof v === "string" && v.length > 2) return v.length > 32 ? v.slice(0, 31) + "…" : v;
  return "";
}
