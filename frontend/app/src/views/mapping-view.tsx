import { useEffect, useRef, useState } from "preact/hooks";
import { api, type FieldSpec } from "../api";
import { denied } from "../logic";
import {
  emptyMapping,
  entriesToMap,
  keysOf,
  mapEntries,
  parseConstant,
  renderedDrafts,
  ROW_KINDS,
  rowProblem,
  showConstant,
  withKind,
  type Mapping,
  type MappingRow,
  type RowKind,
} from "../mapping";
import type { Direction } from "../impact";
import { savedSources, type Ctx, type Key } from "./connection";
import { toast } from "../ui";

/** What the server says the saved direction is: a mapping, or code and why. */
export type MappingState = { mapping: Mapping } | { code: string } | { error: string };

interface Props {
  ctx: Ctx;
  direction: Direction;
  state: MappingState;
  fields: { src: FieldSpec[]; dst: FieldSpec[] };
  /** The draft mapping (undefined: none, the saved scripts stand). */
  draft: Mapping | undefined;
  setDraft: (m: Mapping | undefined) => void;
  /** The script texts this view rendered, by key; kept by the Scripts tab so switching views keeps them apart from hand edits. */
  own: Record<string, string>;
}

/**
 * A direction as a field mapping: rows of target field ← source field, value
 * map or constant, the comments and the trigger. Each change is rendered by
 * the server into the direction's scripts, which become the drafts the code
 * editors, Impact, the test run and Save use. A direction that is code
 * (edited by hand) shows why, and can be replaced by a new mapping.
 */
export function MappingView({ ctx, direction: d, state, fields, draft, setDraft, own: rendered }: Props) {
  const noEdit = denied(ctx.role, "edit");
  const keys = keysOf(d);
  const own = useRef(rendered);
  const [render, setRender] = useState<{ state: "idle" | "rendering" } | { state: "error"; message: string }>({ state: "idle" });
  // Unsaved hand edits of this direction's scripts that the mapping did not make.
  const foreign = Object.values(keys).filter((k) => ctx.drafts[k] !== undefined && ctx.drafts[k] !== own.current[k]);

  const base = "mapping" in state ? state.mapping : undefined;
  const m = draft ?? base;

  // Render the draft into the direction's scripts (debounced): they become the drafts.
  const text = draft ? JSON.stringify(draft) : "";
  useEffect(() => {
    if (!draft || foreign.length) return;
    const ctrl = new AbortController();
    const t = setTimeout(async () => {
      setRender({ state: "rendering" });
      try {
        const out = await api.renderMapping(ctx.conn.id, d, draft, ctrl.signal);
        const { set, drop } = renderedDrafts(d, out, savedSources(ctx.conn));
        for (const [k, v] of Object.entries(set)) {
          own.current[k] = v;
          ctx.setDraft(k as Key, v);
        }
        const mine = drop.filter((k) => ctx.drafts[k] !== undefined && ctx.drafts[k] === own.current[k]);
        if (mine.length) ctx.resetDrafts(mine as Key[], false);
        setRender({ state: "idle" });
      } catch (e) {
        if ((e as Error).name === "AbortError") return;
        setRender({ state: "error", message: (e as Error).message });
      }
    }, 250);
    return () => {
      clearTimeout(t);
      ctrl.abort();
    };
  }, [text]);

  if ("error" in state) return <div class="error small">The mapping could not be read: {state.error}</div>;
  if (foreign.length) {
    return (
      <div class="notice warn" data-testid="mapping-code-drafts">
        This direction has unsaved code edits ({foreign.join(", ")}): save or discard them to use the mapping view.
      </div>
    );
  }
  if (!m) {
    const reason = "code" in state ? state.code : "";
    return (
      <div class="notice" data-testid="mapping-is-code">
        <p>
          <strong>This direction is code:</strong> {reason}.
        </p>
        <p class="muted small">
          The mapping view comes back when the scripts match a mapping again. A new mapping replaces the scripts when you save it; the code stays in the
          versions.
        </p>
        <button class="btn" disabled={!!noEdit} title={noEdit} onClick={() => setDraft(emptyMapping(ctx.drafts[keys.trigger] ?? savedSources(ctx.conn)[keys.trigger]))}>
          Start a new mapping
        </button>
      </div>
    );
  }

  const change = (p: Partial<Mapping>) => setDraft({ ...m, ...p });
  const setRow = (i: number, r: MappingRow) => change({ rows: m.rows.map((o, j) => (j === i ? r : o)) });
  const suggest = async () => {
    try {
      const out = await api.suggestMapping(ctx.conn.id, d, m);
      const added = (out.mapping?.rows.length ?? 0) - m.rows.length;
      if (out.mapping) change({ rows: out.mapping.rows, comments: out.mapping.comments });
      toast(added ? `Suggested ${added} ${added === 1 ? "row" : "rows"}` : "No more fields pair by name and type");
    } catch (e) {
      toast(`Suggest failed: ${(e as Error).message}`, "error");
    }
  };
  const srcList = `fields-${ctx.conn.id}-${d}-src`;
  const dstList = `fields-${ctx.conn.id}-${d}-dst`;

  return (
    <div class="pane-editor mapping" data-mapping={d}>
      <datalist id={srcList}>
        {fields.src.map((f) => (
          <option key={f.name} value={f.name}>
            {f.type}
          </option>
        ))}
      </datalist>
      <datalist id={dstList}>
        {fields.dst
          .filter((f) => !f.read_only)
          .map((f) => (
            <option key={f.name} value={f.name}>
              {f.type}
            </option>
          ))}
      </datalist>
      <div class="pane-head">
        <strong>Mapping</strong>
        <span class="muted small">the scripts are written from these rows</span>
        <span class="spacer" />
        {draft && <span class="dot" title="unsaved" />}
        <span class="small" data-testid="mapping-render">
          {render.state === "rendering" ? <span class="muted">rendering…</span> : render.state === "error" ? <span class="bad">✗ {render.message}</span> : null}
        </span>
        <button class="btn small" disabled={!!noEdit} title={noEdit ?? "Pair target fields with source fields by name and type"} onClick={() => void suggest()} data-testid="mapping-suggest">
          Suggest
        </button>
      </div>
      <label class="mapping-trigger">
        <span class="small">Trigger</span>
        <input
          class="mono"
          value={m.trigger ?? ""}
          disabled={!!noEdit}
          placeholder='expr, e.g. "todev" in labels (empty: every change; false: never start from this side)'
          onInput={(e) => change({ trigger: e.currentTarget.value })}
          aria-label="trigger"
        />
      </label>
      <table class="rules-table mapping-rows">
        <thead>
          <tr class="muted small">
            <td>target field</td>
            <td />
            <td>from</td>
            <td />
          </tr>
        </thead>
        <tbody>
          {m.rows.map((r, i) => (
            <Row key={i} r={r} problem={rowProblem(r, m.rows)} noEdit={!!noEdit} srcList={srcList} dstList={dstList} set={(n) => setRow(i, n)} remove={() => change({ rows: m.rows.filter((_, j) => j !== i) })} />
          ))}
        </tbody>
      </table>
      <div class="toolbar">
        <button class="btn small" disabled={!!noEdit} onClick={() => change({ rows: [...m.rows, { target: "", kind: "field", source: "" }] })} data-testid="mapping-add">
          Add row
        </button>
        <label class="small">
          <input type="checkbox" checked={m.comments.sync} disabled={!!noEdit} onChange={(e) => change({ comments: { ...m.comments, sync: e.currentTarget.checked } })} /> comments
        </label>
        {m.comments.sync && (
          <>
            <input
              class="small"
              placeholder="prefix, e.g. [support] "
              value={m.comments.prefix ?? ""}
              disabled={!!noEdit}
              onInput={(e) => change({ comments: { ...m.comments, prefix: e.currentTarget.value || undefined } })}
              aria-label="comment prefix"
            />
            <label class="small" title="added as internal notes where the target has them">
              <input type="checkbox" checked={!!m.comments.private} disabled={!!noEdit} onChange={(e) => change({ comments: { ...m.comments, private: e.currentTarget.checked || undefined } })} /> as internal notes
            </label>
            <label class="small" title="the source's internal notes stay there">
              <input
                type="checkbox"
                checked={!!m.comments.public_only}
                disabled={!!noEdit}
                onChange={(e) => change({ comments: { ...m.comments, public_only: e.currentTarget.checked || undefined } })}
              />{" "}
              public ones only
            </label>
          </>
        )}
        <span class="spacer" />
        {draft && (
          <button class="btn small" onClick={() => setDraft(undefined)} title="Back to the saved mapping">
            Undo mapping edits
          </button>
        )}
      </div>
    </div>
  );
}

function Row({ r, problem, noEdit, srcList, dstList, set, remove }: { r: MappingRow; problem: string | null; noEdit: boolean; srcList: string; dstList: string; set: (r: MappingRow) => void; remove: () => void }) {
  const [open, setOpen] = useState(false);
  const [constant, setConstant] = useState(showConstant(r.value));
  const kind = r.kind as RowKind;
  return (
    <>
      <tr class={problem ? "bad-row" : ""} data-row={r.target} title={problem ?? undefined}>
        <td>
          <input list={dstList} value={r.target} disabled={noEdit} placeholder="target field" onInput={(e) => set({ ...r, target: e.currentTarget.value })} aria-label="target field" />
        </td>
        <td>
          <select value={kind} disabled={noEdit} onChange={(e) => set(withKind(r, e.currentTarget.value as RowKind))} aria-label="kind">
            {ROW_KINDS.map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.label}
              </option>
            ))}
          </select>
        </td>
        <td class="rule-args">
          {kind === "constant" ? (
            <>
              <input
                value={constant}
                disabled={noEdit}
                placeholder='text, 3, true or null ("3" for the text)'
                onInput={(e) => {
                  setConstant(e.currentTarget.value);
                  set({ ...r, value: parseConstant(e.currentTarget.value) });
                }}
                aria-label="value"
              />
              <label class="small nowrap" title="only when the target is created">
                <input type="checkbox" checked={!!r.first_sync} disabled={noEdit} onChange={(e) => set({ ...r, first_sync: e.currentTarget.checked || undefined })} /> on create only
              </label>
            </>
          ) : (
            <>
              <input list={srcList} value={r.source ?? ""} disabled={noEdit} placeholder="source field" onInput={(e) => set({ ...r, source: e.currentTarget.value })} aria-label="source field" />
              {kind === "map" && (
                <button class="btn small nowrap" onClick={() => setOpen(!open)} aria-expanded={open} data-testid="map-toggle">
                  {Object.keys(r.map ?? {}).length} values {open ? "▴" : "▾"}
                </button>
              )}
            </>
          )}
        </td>
        <td>
          <button class="btn small" disabled={noEdit} onClick={remove} aria-label="remove row" title="Remove this row">
            ×
          </button>
        </td>
      </tr>
      {kind === "map" && open && (
        <tr class="map-row">
          <td colSpan={4}>
            <MapEditor r={r} noEdit={noEdit} set={set} />
          </td>
        </tr>
      )}
      {problem && (
        <tr>
          <td colSpan={4} class="bad small">
            {problem}
          </td>
        </tr>
      )}
    </>
  );
}

/** A value map: source value → target value, and the default for the rest. */
function MapEditor({ r, noEdit, set }: { r: MappingRow; noEdit: boolean; set: (r: MappingRow) => void }) {
  // Entries are edited in place (a renamed key keeps its line); the map is what they say.
  const [entries, setEntries] = useState<[string, string][]>(() => mapEntries(r.map));
  const put = (e: [string, string][]) => {
    setEntries(e);
    set({ ...r, map: entriesToMap(e.filter(([k]) => k !== "")) });
  };
  const dup = new Set(entries.map(([k]) => k).filter((k, i, all) => all.indexOf(k) !== i));
  return (
    <div class="value-map">
      <table class="rules-table">
        <tbody>
          {entries.map(([k, v], i) => (
            <tr key={i} data-map-key={k} class={dup.has(k) ? "bad-row" : ""}>
              <td>
                <input value={k} disabled={noEdit} placeholder={`${r.source} value`} onInput={(e) => put(entries.map((o, j) => (j === i ? [e.currentTarget.value, o[1]] : o)))} aria-label="from" />
              </td>
              <td class="muted">→</td>
              <td>
                <input value={v} disabled={noEdit} placeholder={`${r.target} value`} onInput={(e) => put(entries.map((o, j) => (j === i ? [o[0], e.currentTarget.value] : o)))} aria-label="to" />
              </td>
              <td>
                <button class="btn small" disabled={noEdit} onClick={() => put(entries.filter((_, j) => j !== i))} aria-label="remove value">
                  ×
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {dup.size > 0 && <div class="bad small">a value is listed twice: the last one counts</div>}
      <div class="toolbar">
        <button class="btn small" disabled={noEdit} onClick={() => setEntries([...entries, ["", ""]])}>
          Add value
        </button>
        <label class="small">
          default{" "}
          <input
            value={r.default ?? ""}
            disabled={noEdit}
            placeholder="empty: leave the field as it is"
            onInput={(e) => set({ ...r, default: e.currentTarget.value === "" ? undefined : e.currentTarget.value })}
            aria-label="default"
          />
        </label>
      </div>
    </div>
  );
}

/** The API's answer for a direction as a MappingState (code: why it is not a mapping). */
export async function loadMapping(id: number, d: Direction): Promise<MappingState> {
  try {
    const out = await api.mapping(id, d);
    return out.mapping ? { mapping: out.mapping } : { code: out.reason ?? "" };
  } catch (e) {
    return { error: (e as Error).message };
  }
}
