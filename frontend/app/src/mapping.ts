import type * as gen from "./api.gen";
import type { Kind, Side } from "./api";
import type { Direction } from "./impact";

/**
 * The mapping view of a direction (scripts/mapping on the server): rows of
 * target field ← source field, constant or value map, the comments and the
 * trigger. The server renders it to scripts; the app edits the rows and
 * shows the rendered scripts as the direction's drafts, so Impact, the test
 * run and Save treat a mapping draft like any script draft.
 */
export type Mapping = gen.MappingMapping;
export type MappingRow = gen.MappingRow;
export type RowKind = "field" | "constant" | "map";

export const ROW_KINDS: { kind: RowKind; label: string }[] = [
  { kind: "field", label: "← field" },
  { kind: "map", label: "← value map" },
  { kind: "constant", label: "= constant" },
];

export function emptyMapping(trigger = ""): Mapping {
  return { rows: [], comments: { sync: false }, trigger };
}

/** The source and target side of a direction. */
export function sidesOf(d: Direction): { src: Side; dst: Side } {
  return d === "a_to_b" ? { src: "a", dst: "b" } : { src: "b", dst: "a" };
}

/** The script keys ("b.outgoing") a direction's mapping writes, by kind. */
export function keysOf(d: Direction): Record<Kind, `${Side}.${Kind}`> {
  const { src, dst } = sidesOf(d);
  return { trigger: `${src}.trigger`, outgoing: `${src}.outgoing`, incoming: `${dst}.incoming` };
}

/** A row switched to another kind keeps its target and, where it fits, its source. */
export function withKind(r: MappingRow, kind: RowKind): MappingRow {
  const out: MappingRow = { target: r.target, kind };
  if (kind === "field" || kind === "map") out.source = r.source ?? "";
  if (kind === "map") out.map = r.map ?? {};
  if (kind === "map" && r.default !== undefined && r.default !== null) out.default = r.default;
  if (kind === "constant") out.value = r.value ?? "";
  return out;
}

/**
 * A constant as typed: JSON for numbers, true, false and null (and quoted
 * text), anything else as text. So `3` is a number and `"3"` or `x` text.
 */
export function parseConstant(text: string): gen.JsonValue {
  const t = text.trim();
  if (t === "true" || t === "false" || t === "null" || /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t) || /^".*"$/.test(t)) {
    try {
      const v = JSON.parse(t) as unknown;
      if (v === null || ["string", "number", "boolean"].includes(typeof v)) return v as gen.JsonValue;
    } catch {
      /* text */
    }
  }
  return text;
}

/** A constant as the input shows it (parseConstant's inverse for what it makes). */
export function showConstant(v: unknown): string {
  if (typeof v === "string") {
    return parseConstant(v) === v ? v : JSON.stringify(v);
  }
  return v === undefined ? "" : JSON.stringify(v);
}

/** Entries of a value map as editable pairs, in key order (the server writes them sorted). */
export function mapEntries(m: Record<string, string> | undefined): [string, string][] {
  return Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function entriesToMap(e: [string, string][]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of e) out[k] = v;
  return out;
}

/** What the app can say about a row before the server renders it. */
export function rowProblem(r: MappingRow, all: MappingRow[]): string | null {
  if (!r.target.trim()) return "name the target field";
  if (all.filter((o) => o.target === r.target).length > 1) return `${r.target} is written twice`;
  if ((r.kind === "field" || r.kind === "map") && !(r.source ?? "").trim()) return "pick a source field";
  return null;
}

/**
 * The drafts a rendered mapping makes: each script that differs from the
 * saved one, and the keys whose draft should be dropped (the mapping gives
 * the saved text back).
 */
export function renderedDrafts(d: Direction, out: gen.MappingScripts, saved: Record<string, string>): { set: Record<string, string>; drop: string[] } {
  const set: Record<string, string> = {};
  const drop: string[] = [];
  const keys = keysOf(d);
  for (const kind of ["trigger", "outgoing", "incoming"] as Kind[]) {
    const k = keys[kind];
    if (out[kind] !== (saved[k] ?? "")) set[k] = out[kind];
    else drop.push(k);
  }
  return { set, drop };
}
