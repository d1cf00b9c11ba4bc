import type * as gen from "./api.gen";
import type { Kind, Side } from "./api";

/** The impact preview's answer and request: engine.ImpactResult and server.impactIn, from api.gen.ts. */
export type Direction = "a_to_b" | "b_to_a";
export type FieldChange = gen.EngineFieldChange;
export type ImpactEntity = gen.EngineImpactEntity;
export type ImpactTotals = gen.EngineImpactTotals;
export type ImpactResult = gen.EngineImpactResult;
/** A request: the direction and the drafts (the server's other fields are optional). */
export type ImpactDraft = Pick<gen.ServerImpactIn, "trigger" | "outgoing" | "incoming" | "rules" | "changes" | "budget_seconds"> & { direction: Direction };

/**
 * The impact requests for a set of script drafts ("a.outgoing" → source):
 * one per direction that a draft belongs to. A direction's trigger and
 * outgoing script are its source side's, its incoming script the target's.
 */
export function impactDrafts(drafts: Record<string, string | undefined>, dirty: string[]): ImpactDraft[] {
  const out: ImpactDraft[] = [];
  for (const src of ["a", "b"] as Side[]) {
    const dst: Side = src === "a" ? "b" : "a";
    const d: ImpactDraft = { direction: src === "a" ? "a_to_b" : "b_to_a" };
    const take = (side: Side, kind: Kind) => {
      const k = `${side}.${kind}`;
      if (dirty.includes(k) && drafts[k] !== undefined) d[kind] = drafts[k];
    };
    take(src, "trigger");
    take(src, "outgoing");
    take(dst, "incoming");
    if (d.trigger !== undefined || d.outgoing !== undefined || d.incoming !== undefined) out.push(d);
  }
  return out;
}

const LABELS: [keyof ImpactTotals, string][] = [
  ["patch_differs", "patch differs"],
  ["replica_differs", "replica differs"],
  ["would_fail", "would fail"],
  ["now_succeeds", "now succeed"],
  ["starts_syncing", "start syncing"],
  ["stops_syncing", "stop syncing"],
  ["validation_fails", "fail validation"],
  ["not_replayable", "not replayable"],
];

/** One line of totals: "12 entities: 3 patch differs, 1 would fail, 8 unchanged". */
export function impactSummary(t: ImpactTotals): string {
  const parts = LABELS.filter(([k]) => t[k] > 0).map(([k, label]) => `${t[k]} ${label}`);
  parts.push(`${t.unchanged} unchanged`);
  return `${t.entities} ${t.entities === 1 ? "entity" : "entities"}: ${parts.join(", ")}`;
}

/** The entities the draft changes anything for. */
export function differing(res: ImpactResult): ImpactEntity[] {
  return res.entities.filter((e) => e.outcome !== "unchanged");
}

/** A value as the diff shows it. */
export function shown(v: unknown): string {
  return v === undefined ? "—" : JSON.stringify(v);
}

/** A test run's drafts: the unsaved pieces of the direction that starts at a side (server.testRunIn.draft). */
export type TestRunDraft = NonNullable<gen.ServerTestRunIn["draft"]>;

/**
 * The drafts a test run of side `side` runs instead of the saved versions:
 * the same pieces the Impact button sends for that direction (the side's
 * trigger and outgoing script, the other side's incoming script), or
 * undefined when none of them has unsaved changes.
 */
export function testRunDraft(drafts: Record<string, string | undefined>, dirty: string[], side: Side): TestRunDraft | undefined {
  const d = impactDrafts(drafts, dirty).find((x) => x.direction === (side === "a" ? "a_to_b" : "b_to_a"));
  if (!d) return undefined;
  const { direction: _, ...draft } = d;
  return draft;
}

/** What a test run runs, in words: "your unsaved changes to A's outgoing script" or "the saved versions". */
export function testRunWords(draft: TestRunDraft | undefined, side: Side, name: (s: Side) => string = (s) => s.toUpperCase()): string {
  if (!draft) return "the saved versions of the trigger and scripts";
  const other: Side = side === "a" ? "b" : "a";
  const parts: string[] = [];
  if (draft.trigger != null) parts.push(`${name(side)}'s trigger`);
  if (draft.outgoing != null) parts.push(`${name(side)}'s outgoing script`);
  if (draft.incoming != null) parts.push(`${name(other)}'s incoming script`);
  if (draft.rules != null) parts.push(`${name(other)}'s validation rules`);
  return `your unsaved changes to ${parts.join(", ")} (the rest: saved versions)`;
}
