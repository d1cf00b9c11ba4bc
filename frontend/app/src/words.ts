// Words for people where the API has codes and JSON: counts with their
// plurals, what a test run would do, the conflict policy, audit actions,
// script error messages, and a title for every synced item (issue 19).
// Unit-tested in words.test.ts.
import type { JsonField, SyncEvent, TestRunResult, Twin } from "./api";
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
export function policyWords(policy: JsonField, nameA: string, nameB: string): string {
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
  "connection.delete": "deleted the connection",
  "connection.template": "changed the connection's template",
  "identity.session.start": "signed in",
  "identity.session.end": "signed out",
};

/** actionWords says an audit action ("event.skip") as a verb phrase ("skipped an event"). */
export function actionWords(action: string): string {
  return ACTIONS[action] ?? action.replace(/[._]/g, " ");
}

/**
 * valueWords writes a value from an audit detail for people: text in quotes
 * (on one line, cut at 80 characters), an object as "field = value" pairs,
 * a list as its items; never JSON.
 */
export function valueWords(v: unknown, depth = 0): string {
  if (v === null || v === undefined) return "nothing";
  if (typeof v === "string") {
    const t = v.replace(/\s+/g, " ").trim();
    return `"${t.length > 80 ? t.slice(0, 79) + "…" : t}"`;
  }
  if (typeof v !== "object") return String(v);
  if (Array.isArray(v)) return v.length === 0 ? "none" : v.map((x) => valueWords(x, depth + 1)).join(", ");
  const pairs = Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k} = ${valueWords(x, depth + 1)}`);
  return depth > 0 ? `(${pairs.join(", ")})` : pairs.join(", ");
}

// "event 4: {…}": a detail that names what it is about, then its JSON.
const LABELLED = /^([^{]*?):\s*(\{[\s\S]*\})$/;

/** detailWords shows an audit detail: a JSON object as "key: value" pairs, "event 4: {…}" with its object in words, anything else as it is. */
export function detailWords(detail: JsonField): string {
  if (typeof detail === "string") {
    const m = LABELLED.exec(detail.trim());
    const o = m ? parseJSON(m[2]) : undefined;
    if (m && o && typeof o === "object") return `${m[1]}: ${valueWords(o)}`;
    if (!detail.trim().startsWith("{")) return detail;
  }
  const o = parseJSON(detail);
  if (o === undefined) return "";
  if (!o || typeof o !== "object" || Array.isArray(o)) return typeof o === "string" ? o : valueWords(o);
  return Object.entries(o as Record<string, unknown>)
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${typeof v === "string" ? v : valueWords(v)}`)
    .join(" · ");
}

/** resolutionWords says a person's answer to a conflict: per field, the value kept. */
export function resolutionWords(r: unknown): string {
  if (!r || typeof r !== "object" || Array.isArray(r)) return valueWords(r);
  return Object.entries(r as Record<string, { take?: string; value?: unknown }>)
    .map(([f, c]) => `${f}: ${c?.take === "value" ? `${valueWords(c.value)} (edited)` : c?.take === "target" ? "kept the current value" : "took the incoming value"}`)
    .join(", ");
}

/** auditDetail shows an audit entry's detail: a conflict policy in words, anything else by detailWords. */
export function auditDetail(e: { action: string; detail: JsonField }, nameA: string, nameB: string): string {
  if (e.action === "connection.conflict_policy" && parseJSON(e.detail)) return "now: " + policyWords(e.detail, nameA, nameB);
  const m = e.action === "event.resolve" && typeof e.detail === "string" ? LABELLED.exec(e.detail.trim()) : null;
  if (m) return `${m[1]}: ${resolutionWords(parseJSON(m[2]))}`;
  return detailWords(e.detail);
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
 * name its replicas carry: the last ones its twin sent each way, then its
 * events'. The way back (engineering → support) often sends only a status,
 * and its rows would have no name.
 */
export function titles(events: Pick<SyncEvent, "twin_id" | "replica">[], twins: Pick<Twin, "id" | "sent_ab" | "sent_ba">[] = []): Map<number, string> {
  const out = new Map<number, string>();
  for (const t of twins) {
    const name = replicaTitle(t.sent_ab) || replicaTitle(t.sent_ba);
    if (name) out.set(t.id, name);
  }
  for (const ev of events) {
    if (out.has(ev.twin_id)) continue;
    const t = replicaTitle(ev.replica);
    if (t) out.set(ev.twin_id, t);
  }
  return out;
}

/** replicaTitle is the first text a replica names itself by (a title, a subject). */
export function replicaTitle(replica: JsonField): string {
  const r = parseJSON(replica);
  if (!r || typeof r !== "object" || Array.isArray(r)) return "";
  const o = r as Record<string, unknown>;
  for (const k of ["title", "subject", "name", "summary"]) if (typeof o[k] === "string" && o[k]) return o[k] as string;
  return "";
}

/**
 * attemptsWords counts an event's tries: every try (total_attempts), and
 * when a person retried it, how many since (attempts starts over then).
 */
export function attemptsWords(ev: Pick<SyncEvent, "attempts"> & Partial<Pick<SyncEvent, "total_attempts">>): string {
  const total = Math.max(ev.total_attempts ?? 0, ev.attempts);
  if (total === ev.attempts) return plural(total, "attempt");
  return `${plural(total, "attempt")} (${ev.attempts} since the last retry)`;
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
