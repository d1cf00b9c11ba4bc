// The alerts view's logic (alerts.test.ts): titles, links, grouping, the
// sidebar badge and what happened to the webhook notice.
import type { Alert } from "./api";
import { ago } from "./logic";

export const KIND_TITLE: Record<Alert["kind"], string> = {
  failures: "Events failing",
  paused: "Paused with changes waiting",
  queue_age: "Queue falling behind",
  unreachable: "System unreachable",
  quarantined: "Quarantined (scripts keep hitting a limit)",
};

export function alertTitle(a: Alert): string {
  const what = a.system_id ? `System “${a.name}”` : `Connection “${a.name}”`;
  return `${what}: ${(KIND_TITLE[a.kind] ?? a.kind).toLowerCase()}`;
}

/** Where to look: a connection's queue (its failed events for failures), or the system. */
export function alertLink(a: Alert): string {
  if (a.system_id) return `#/systems/${a.system_id}`;
  if (a.connection_id) return `#/connections/${a.connection_id}/queue?status=${a.kind === "failures" || a.kind === "quarantined" ? "failed" : "queued"}`;
  return "#/alerts";
}

/** Open alerts (longest open first) and resolved ones (latest first). */
export function splitAlerts(list: Alert[]): { open: Alert[]; resolved: Alert[] } {
  const t = (s?: string | null) => (s ? Date.parse(s) : 0);
  const open = list.filter((a) => a.state === "open").sort((x, y) => t(x.opened_at) - t(y.opened_at) || x.id - y.id);
  const resolved = list.filter((a) => a.state === "resolved").sort((x, y) => t(y.resolved_at) - t(x.resolved_at) || y.id - x.id);
  return { open, resolved };
}

/** The sidebar badge: nothing for none, "9+" past nine. */
export function alertBadge(open: number): string {
  if (open <= 0) return "";
  return open > 9 ? "9+" : String(open);
}

/** How long an alert was or has been open, in words. */
export function duration(a: Alert, now = Date.now()): string {
  const from = Date.parse(a.opened_at);
  const to = a.resolved_at ? Date.parse(a.resolved_at) : now;
  const s = Math.max(0, Math.round((to - from) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

/** What became of the webhook notice. */
export function noticeState(a: Alert, now = Date.now()): { text: string; bad: boolean } {
  if (a.pending) {
    const what = a.pending === "resolved" ? "recovery notice" : "notice";
    if (a.attempts > 0) return { text: `${what}: retrying (${a.attempts} failed: ${a.last_error ?? "error"})`, bad: true };
    return { text: `${what}: sending`, bad: false };
  }
  if (a.last_error) return { text: `notice given up: ${a.last_error}`, bad: true };
  if (a.last_notified_at) return { text: `notified ${ago(a.last_notified_at, now)}`, bad: false };
  return { text: "no notice (no webhook configured)", bad: false };
}
