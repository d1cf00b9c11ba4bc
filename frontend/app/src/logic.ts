// Pure logic of the app, unit-tested with Vitest (logic.test.ts).
import type { Connection, JsonField, Me, Role, SyncEvent, TeamRole, Twin } from "./api";

// ---------- routes (hash based: the server serves one index.html) ----------

export type Tab = "scripts" | "test" | "versions" | "queue" | "conflicts" | "activity" | "settings";
export const TABS: Tab[] = ["scripts", "test", "versions", "queue", "conflicts", "activity", "settings"];

export type Route =
  | { view: "connections" }
  | { view: "new-connection"; template?: string }
  | { view: "connection"; id: number; tab: Tab; query: Record<string, string> }
  /** Team templates (a lazy chunk): saving a connection as one, upgrading a connection, a template's page, importing an archive. */
  | { view: "save-template"; id: number }
  | { view: "upgrade"; id: number }
  | { view: "template"; id: number; query: Record<string, string> }
  | { view: "template-import" }
  | { view: "systems"; id?: number | "new" }
  | { view: "tokens" }
  | { view: "password" }
  | { view: "team"; id?: number }
  | { view: "alerts" }
  | { view: "peers" }
  | { view: "not-found"; path: string };

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const [path, qs = ""] = raw.split("?");
  const query = Object.fromEntries(new URLSearchParams(qs));
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0 || (parts[0] === "connections" && parts.length === 1)) return { view: "connections" };
  if (parts[0] === "connections" && parts[1] === "new") return { view: "new-connection", template: parts[2] };
  if (parts[0] === "connections" && /^\d+$/.test(parts[1]) && parts.length === 3) {
    if (parts[2] === "save-as-template") return { view: "save-template", id: Number(parts[1]) };
    if (parts[2] === "upgrade") return { view: "upgrade", id: Number(parts[1]) };
  }
  if (parts[0] === "templates" && parts.length === 2) {
    if (parts[1] === "import") return { view: "template-import" };
    if (/^\d+$/.test(parts[1])) return { view: "template", id: Number(parts[1]), query };
  }
  if (parts[0] === "connections" && /^\d+$/.test(parts[1])) {
    const tab = (parts[2] || "scripts") as Tab;
    if (parts.length <= 3 && TABS.includes(tab)) return { view: "connection", id: Number(parts[1]), tab, query };
  }
  if (parts[0] === "systems") {
    if (parts.length === 1) return { view: "systems" };
    if (parts.length === 2 && parts[1] === "new") return { view: "systems", id: "new" };
    if (parts.length === 2 && /^\d+$/.test(parts[1])) return { view: "systems", id: Number(parts[1]) };
  }
  if (parts.length === 1 && parts[0] === "tokens") return { view: "tokens" };
  if (parts.length === 1 && parts[0] === "alerts") return { view: "alerts" };
  if (parts.length === 1 && parts[0] === "peers") return { view: "peers" };
  if (parts.length === 1 && parts[0] === "password") return { view: "password" };
  if (parts[0] === "team") {
    if (parts.length === 1) return { view: "team" };
    if (parts.length === 2 && /^\d+$/.test(parts[1])) return { view: "team", id: Number(parts[1]) };
  }
  return { view: "not-found", path: "/" + path };
}

export function href(r: Route): string {
  switch (r.view) {
    case "connections":
      return "#/connections";
    case "new-connection":
      return "#/connections/new" + (r.template ? "/" + r.template : "");
    case "connection": {
      const qs = new URLSearchParams(r.query).toString();
      return `#/connections/${r.id}/${r.tab}${qs ? "?" + qs : ""}`;
    }
    case "save-template":
      return `#/connections/${r.id}/save-as-template`;
    case "upgrade":
      return `#/connections/${r.id}/upgrade`;
    case "template": {
      const qs = new URLSearchParams(r.query).toString();
      return `#/templates/${r.id}${qs ? "?" + qs : ""}`;
    }
    case "template-import":
      return "#/templates/import";
    case "systems":
      return "#/systems" + (r.id !== undefined ? "/" + r.id : "");
    case "tokens":
      return "#/tokens";
    case "password":
      return "#/password";
    case "team":
      return "#/team" + (r.id !== undefined ? "/" + r.id : "");
    case "alerts":
      return "#/alerts";
    case "peers":
      return "#/peers";
    case "not-found":
      return "#" + r.path;
  }
}

// ---------- identity: roles, teams, sign-in ----------

const RANK: Record<Role, number> = { viewer: 1, editor: 2, admin: 3 };

/**
 * roleIn is the user's role in a team: an org admin is admin everywhere. For a
 * row without a team (a server that predates teams) it is the user's highest role.
 */
export function roleIn(me: Pick<Me, "user" | "teams">, teamId: number | undefined): Role | undefined {
  if (me.user.org_admin) return "admin";
  if (teamId === undefined || teamId === null) {
    let best: Role | undefined;
    for (const t of me.teams) if (!best || RANK[t.role] > RANK[best]) best = t.role;
    return best;
  }
  return me.teams.find((t) => t.id === teamId)?.role;
}

export function atLeast(role: Role | undefined, need: Role): boolean {
  return role !== undefined && RANK[role] >= RANK[need];
}

/** What a role may do in the app; the server decides anyway, this only keeps buttons honest. */
export type Action = "edit" | "save" | "test" | "activate" | "retry" | "resolve" | "create" | "system" | "members" | "template" | "upgrade";
const NEEDS: Record<Action, Role> = {
  edit: "editor",
  save: "editor",
  test: "editor",
  activate: "editor",
  retry: "editor",
  resolve: "editor",
  create: "editor",
  system: "admin",
  members: "admin",
  template: "editor",
  upgrade: "editor",
};
const DOING: Record<Action, string> = {
  edit: "edit",
  save: "save changes",
  test: "run tests that read remote data",
  activate: "activate or pause connections",
  retry: "retry or skip events",
  resolve: "resolve conflicts",
  create: "create connections",
  system: "change systems and their credentials",
  members: "manage members",
  template: "save connections as templates",
  upgrade: "upgrade connections to a new template version",
};

export function can(role: Role | undefined, action: Action): boolean {
  return atLeast(role, NEEDS[action]);
}

/** The tooltip on a button the role may not use ("viewers cannot …"), or undefined when allowed. */
export function denied(role: Role | undefined, action: Action): string | undefined {
  if (can(role, action)) return undefined;
  const who = role ? role + "s" : "people outside this team";
  return NEEDS[action] === "admin" ? `only team admins can ${DOING[action]}` : `${who} cannot ${DOING[action]}`;
}

/**
 * The teams a user may create things in (an org admin: every team):
 * connections need an editor there, systems (they hold credentials) an admin.
 */
export function pickableTeams(me: Pick<Me, "user" | "teams">, all?: TeamRole[], min: Role = "editor"): TeamRole[] {
  if (me.user.org_admin && all?.length) return all;
  return me.teams.filter((t) => atLeast(t.role, min));
}

export function teamName(teams: Pick<TeamRole, "id" | "name">[], id: number | undefined): string {
  if (id === undefined || id === null) return "";
  return teams.find((t) => t.id === id)?.name ?? `team ${id}`;
}

/** setupToken finds the first-run token in `/setup?token=…` (what `duplex serve` prints) or `#/setup?token=…`. */
export function setupToken(loc: { pathname: string; search: string; hash: string }): string | undefined {
  if (loc.pathname.replace(/\/+$/, "") === "/setup") return new URLSearchParams(loc.search).get("token") ?? "";
  const m = /^#\/?setup(?:\?(.*))?$/.exec(loc.hash);
  if (m) return new URLSearchParams(m[1] ?? "").get("token") ?? "";
  return undefined;
}

/** waitText says how long to wait before the next sign-in attempt. */
export function waitText(seconds: number): string {
  if (seconds <= 0) return "now";
  if (seconds < 60) return `${seconds} s`;
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return s ? `${m} min ${s} s` : `${m} min`;
}

/** tokenState says whether a personal API token can still be used. */
export function tokenState(t: { expires_at?: string | null; revoked_at?: string | null }, now = Date.now()): "active" | "expired" | "revoked" {
  if (t.revoked_at) return "revoked";
  if (t.expires_at) {
    const e = Date.parse(t.expires_at);
    if (!Number.isNaN(e) && e > 0 && e <= now) return "expired";
  }
  return "active";
}

// ---------- connection health ----------

export type Health = "active" | "paused" | "failing" | "quarantined";

/** A connection is failing when it is active and has failed events or conflicts waiting;
 * quarantined when the engine paused it (paused_reason says why). */
export function health(c: Pick<Connection, "active" | "counts" | "paused_reason">): Health {
  if (c.paused_reason) return "quarantined";
  if (!c.active) return "paused";
  return (c.counts.failed ?? 0) > 0 || (c.counts.conflict ?? 0) > 0 ? "failing" : "active";
}

export function counts(c: Pick<Connection, "counts">) {
  const n = (k: string) => c.counts[k] ?? 0;
  return { synced: n("done"), queued: n("queued"), failed: n("failed"), conflicts: n("conflict"), skipped: n("skipped") };
}

// ---------- line diff (Myers-free LCS; scripts are small) ----------

export type DiffLine = { op: "same" | "add" | "del"; text: string; a?: number; b?: number };

/** diffLines compares two texts line by line: deletions from a, additions in b. */
export function diffLines(a: string, b: string): DiffLine[] {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  // lcs[i][j] = length of the LCS of x[i:] and y[j:]
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push({ op: "same", text: x[i], a: i + 1, b: j + 1 });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      out.push({ op: "del", text: x[i], a: i + 1 });
      i++;
    } else {
      out.push({ op: "add", text: y[j], b: j + 1 });
      j++;
    }
  }
  for (; i < n; i++) out.push({ op: "del", text: x[i], a: i + 1 });
  for (; j < m; j++) out.push({ op: "add", text: y[j], b: j + 1 });
  return out;
}

export function diffStats(d: DiffLine[]) {
  return { added: d.filter((l) => l.op === "add").length, removed: d.filter((l) => l.op === "del").length };
}

// ---------- editor markers ----------

/**
 * markerRange turns a server position (1-based line and column, where the
 * column may point just past the end, as "unexpected EOF" does) into a range
 * that covers at least one visible character, so the underline shows.
 */
export function markerRange(lines: string[], line: number, column: number) {
  const ln = Math.min(Math.max(1, line), Math.max(1, lines.length));
  const text = lines[ln - 1] ?? "";
  const len = text.length;
  if (len === 0) return { startLineNumber: ln, startColumn: 1, endLineNumber: ln, endColumn: 2 };
  if (column > len) return { startLineNumber: ln, startColumn: len, endLineNumber: ln, endColumn: len + 1 };
  const start = Math.max(1, column);
  let end = start + 1; // exclusive; extend over the word the error points at
  const word = /[\w$]/;
  if (word.test(text[start - 1])) while (end <= len && word.test(text[end - 1])) end++;
  return { startLineNumber: ln, startColumn: start, endLineNumber: ln, endColumn: end };
}

// ---------- activity ----------

export interface ActivityItem {
  event: SyncEvent;
  from: "a" | "b";
  sourceId: string;
  targetId: string | null;
}

/** activity pairs each event with both sides' ids, through its twin. */
export function activity(events: SyncEvent[], twins: Twin[]): ActivityItem[] {
  const byId = new Map(twins.map((t) => [t.id, t]));
  return events.map((ev) => {
    const from = ev.direction === "a_to_b" ? "a" : "b";
    const t = byId.get(ev.twin_id);
    const targetId = t ? (from === "a" ? t.b_id : t.a_id) : null;
    return { event: ev, from, sourceId: ev.source_id, targetId: targetId ?? null };
  });
}

// ---------- small formatting ----------

export function ago(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t) || t <= 0) return "never";
  const s = Math.round((now - t) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}

/**
 * parseJSON is the one way the app reads a JSON field of the API (replicas,
 * conflicts, logs, policies, audit details): older servers send them as JSON
 * text, newer ones as JSON values, and both read the same here. Text that is
 * not JSON comes back as it is; empty text and null as undefined.
 */
export function parseJSON(v: JsonField): unknown {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

export function pretty(v: unknown): string {
  return v === undefined ? "" : JSON.stringify(v, null, 2);
}

/** The event's log: a JSON array of lines (as text or as a value) or plain text. */
export function logLines(log: JsonField): string[] {
  const v = parseJSON(log);
  if (v === undefined) return [];
  if (Array.isArray(v)) return v.map(String);
  return typeof v === "string" ? v.split("\n") : [JSON.stringify(v)];
}

/** dirtyKeys lists the pieces whose draft differs from what is saved. */
export function dirtyKeys(saved: Record<string, string>, drafts: Record<string, string>): string[] {
  return Object.keys(drafts)
    .filter((k) => drafts[k] !== (saved[k] ?? ""))
    .sort();
}

/**
 * editedValue reads what a person typed as a conflict's new value. For a
 * field whose values are text the text is taken as it is (no JSON quotes
 * needed; a quoted JSON string still works); otherwise it is read as JSON
 * (a number, true, a list) and, when it is not JSON, as text.
 */
export function editedValue(text: string, like: unknown): unknown {
  const t = text.trim();
  if (typeof like === "string" && !/^".*"$/s.test(t)) return text;
  try {
    return JSON.parse(t);
  } catch {
    return text;
  }
}

/** valueText is a value as a person edits it: text as it is, anything else as JSON. */
export function valueText(v: unknown): string {
  return typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v);
}
