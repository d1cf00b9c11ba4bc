import type { Kind, Side } from "./api";

/** The impact preview's answer (engine.ImpactResult). */
export type Direction = "a_to_b" | "b_to_a";
export interface FieldChange {
  old: unknown;
  new: unknown;
}
export interface ImpactEntity {
  entity_id: string;
  event_id: number;
  twin_id: number;
  target_id?: string;
  outcome: string;
  replica?: Record<string, FieldChange>;
  patch?: Record<string, FieldChange>;
  stage?: string;
  error?: string;
  line?: number;
  column?: number;
  rules?: { index: number; field?: string; rule: string; message: string }[];
  reason?: string;
  inexact?: string[];
}
export interface ImpactTotals {
  entities: number;
  unchanged: number;
  replica_differs: number;
  patch_differs: number;
  would_fail: number;
  now_succeeds: number;
  starts_syncing: number;
  stops_syncing: number;
  validation_fails: number;
  not_replayable: number;
  inexact: number;
}
export interface ImpactResult {
  direction: Direction;
  changes: number;
  totals: ImpactTotals;
  partial: boolean;
  draft_error?: string;
  entities: ImpactEntity[];
}
export interface ImpactDraft {
  direction: Direction;
  trigger?: string;
  outgoing?: string;
  incoming?: string;
}

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
