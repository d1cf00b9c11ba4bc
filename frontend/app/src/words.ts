// Words for people where the API has codes and JSON: counts with their
// plurals, what a test run would do, the conflict policy, audit actions,
// script error messages, and a title for every synced item (issue 19).
// Unit-tested in words.test.ts.
import type { SyncEvent, TestRunResult } from "./api";
import { parseJSON } from "./logic";

/** plural writes a count with its noun: "1 conflict", "2 conflicts". */
export function plural(n: number, one: string, many = one + "s"): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** list joins names as a sentence does: "a", "a and b", "a, b and c". */
export function list(names: string[]): string {
  return names.length < 2 ? names.join("") : names.slice(0, -1).join(", ") + " and " + names[names.length - 1];
}

/** outcome says in one sentence what a test run's change would do on the other side (named other). */
export function outcome(r: Pick<TestRunResult, "matched" | "linked" | "would_sync" | "target_id" | "patch" | "comments" | "invalid" | "skipped" | "skip_reason" | "stage" | "error">, other: string): string {
  if (r.error) return `The ${r.stage || "script"} stops with an error: nothing is written to ${other}.`;
  if (!r.would_sync) return r.linked ? `Nothing is sent to ${other}.` : `Nothing is sent: the trigger did not match and the item is not linked to ${other} yet.`;
  if (r.skipped) return `The script skips this change${r.skip_reason ? ` (${r.skip_reason})` : ""}: nothing is written to ${other}.`;
  if (r.invalid) return `A validation rule fails: nothing is written to ${other}.`;
  const fields = Object.keys(r.patch ?? {});
  const n = r.comments?.length ?? 0;
  const named = fields.length ? `${fields.length === 1 ? "field" : "fields"} ${list(fields)}` : "";
  if (!r.target_id) return `Creates an item on ${other}${named ? " with " + named : ""}${n ? (named ? " and " : " with ") + plural(n, "comment") : ""}.`;
  if (!named && !n) return `Nothing to write: ${other} #${r.target_id} already has these values.`;
  return `Updates ${other} #${r.target_id}: ${list([named && "sets " + named, n ? "adds " + plural(n, "comment") : ""].filter(Boolean))}.`;
}

/** policyWords says a connection's conflict policy (its JSON) in words, with the sides' names. */
export function policyWords(policy: string | undefined, nameA: string, nameB: string): string {
  const p = (parseJSON(policy) as { default?: string; fields?: Record<string, string> } | undefined) ?? {};
  const rule = (v: string | undefined) =>
    v === "b" ? `${nameB} (side B) wins` : v === "newest" ? "the newest change wins" : v === "manual" ? "you decide (conflicts wait here)" : `${nameA} (side A) wins`;
  const overrides = Object.entries(p.fields ?? {}).map(([f, v]) => `for ${f}, ${rule(v)}`);
  return [rule(p.default), ...overrides].join("; ");
}

const ACTIONS: Record<string, string> = {
  "script.save": "saved a script",
  "rules.save": "saved validation rules",
  "event.skip": "skipped an event",
  "event.retry": "retried an event",
  "event.retry_all": "retried all failed events",
  "event.resolve": "resolved a conflict",
  "connection.create": "created the connection",
  "connection.activate": "activated the connection",
  "connection.pause": "paused the connection",
  "sync.create": "created an item",
  "sync.update": "wrote an update",
  "sync.delete": "deleted an item",
  "sync.conflict": "met a conflict",
  "connection.conflict_policy": "changed the conflict policy",
  "connection.options": "changed the connection's options",
  "connection.backfill": "synced existing items",
  "twin.link": "linked two items",
  "twin.link_existing": "linked an existing item",
  "twin.unlink": "unlinked two items",
  "twin.relink": "linked two items again",
  "system.test": "tested a system",
  "template.import": "imported a template",
};

/** actionWords says an audit action ("event.skip") as a verb phrase ("skipped an event"). */
export function actionWords(action: string): string {
  return ACTIONS[action] ?? action.replace(/[._]/g, " ");
}

/** detailWords shows an audit detail: a JSON object as "key: value" pairs, anything else as it is. */
export function detailWords(detail: string): string {
  if (!detail.trim().startsWith("{")) return detail;
  const o = parseJSON(detail);
  if (!o || typeof o !== "object" || Array.isArray(o)) return detail;
  return Object.entries(o as Record<string, unknown>)
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" · ");
}

/**
 * cleanMessage drops what a script error repeats: goja's "GoError: " prefix
 * and the "file.js:1:11: " position the app already shows beside it.
 */
export function cleanMessage(msg: string): string {
  return msg.replace(/\bGoError: /g, "").replace(/^(?:[\w.-]+\.(?:js|expr):)?\d+:\d+:?\s+/, "");
}

/**
 * titles names each synced item (by twin) with the first title, subject or
 * name any of its events' replicas carries: the way back (engineering →
 * support) often sends only a status, and its rows would have no name.
 */
export function titles(events: Pick<SyncEvent, "twin_id" | "replica">[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const ev of events) {
    if (out.has(ev.twin_id)) continue;
    const t = replicaTitle(ev.replica);
    if (t) out.set(ev.twin_id, t);
  }
  return out;
}

/** replicaTitle is the first text a replica names itself by (a title, a subject). */
export function replicaTitle(replica: string): string {
  const r = parseJSON(replica);
  if (!r || typeof r !== "object") return "";
  const o = r as Record<string, unknown>;
  for (const k of ["title", "subject", "name", "summary"]) if (typeof o[k] === "string" && o[k]) return o[k] as string;
  return "";
}

/** What an attempt refused part-way had written (SyncEvent.partial). */
export interface PartialApply {
  target_id: string;
  applied: string[];
  refused: string[];
}

/** partialApply reads an event's partial write, or undefined when it had none. */
export function partialApply(ev: Pick<SyncEvent, "partial">): PartialApply | undefined {
  const p = parseJSON(ev.partial) as Partial<PartialApply> | undefined;
  if (!p || typeof p !== "object" || !Array.isArray(p.refused)) return undefined;
  return { target_id: String(p.target_id ?? ""), applied: Array.isArray(p.applied) ? p.applied : [], refused: p.refused };
}

/** partialWords says what an event's refused attempt saved and refused on the target (named other). */
export function partialWords(p: PartialApply, other: string, status: SyncEvent["status"]): string {
  const saved = p.applied.length ? `saved ${list(p.applied)}` : "saved nothing";
  const refused = `refused ${list(p.refused)}`;
  if (status === "done") return `An earlier attempt was taken in part by ${other} #${p.target_id} (${saved}, ${refused}); a retry wrote the rest.`;
  return `${other} #${p.target_id} ${saved} and ${refused}. A retry sends only ${list(p.refused)}.`;
}
