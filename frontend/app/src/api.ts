// Typed access to the Duplex JSON API. Every error answer is {code, message}
// (plus script, line, column for scripts); it becomes an ApiError.

export type Side = "a" | "b";
export type Kind = "trigger" | "outgoing" | "incoming";
export const KINDS: Kind[] = ["trigger", "outgoing", "incoming"];

export interface System {
  id: number;
  name: string;
  kind: string;
  team_id?: number;
  settings: Record<string, unknown>;
  secret_keys: string[];
  poll_interval_ms: number;
  rate_per_second: number;
  rate_burst: number;
  created_at: string;
  updated_at: string;
}

// ConnectorSpec is what GET /api/connector-kinds says about one connector
// kind (connectors.Spec): the system form is built from it.
export interface ConnectorSetting {
  name: string;
  type: "string" | "integer" | "boolean" | "list" | "object";
  required?: boolean;
  default?: string;
  enum?: string[];
  description?: string;
}

export interface ConnectorSpec {
  kind: string;
  summary: string;
  settings: ConnectorSetting[];
  secrets: { name: string; required?: boolean; description?: string }[];
  capabilities: Record<string, boolean>;
}

export interface ScriptVersion {
  id: number;
  connection_id: number;
  side: Side;
  kind: Kind;
  version: number;
  source: string;
  author: string;
  created_at: string;
}

export interface Connection {
  id: number;
  name: string;
  system_a_id: number;
  system_b_id: number;
  active: boolean;
  template: string;
  team_id?: number;
  /** A connection made from a team template: its id and the version it was rendered from. */
  template_id?: number;
  template_version?: number;
  conflict_policy: JsonField;
  options: JsonField;
  /** Why the engine paused it (quarantine: its scripts kept hitting a limit); absent otherwise. */
  paused_reason?: string;
  quarantined_at?: string;
  created_at: string;
  updated_at: string;
  counts: Record<string, number>;
  scripts?: Record<Side, Record<Kind, ScriptVersion>>;
}

/** A JSON field of the API: JSON text from older servers, the value itself from newer ones (read it with parseJSON). */
export type JsonField = string | number | boolean | null | undefined | unknown[] | { [k: string]: unknown };

export interface SyncEvent {
  id: number;
  connection_id: number;
  twin_id: number;
  direction: "a_to_b" | "b_to_a";
  source_id: string;
  action?: string;
  replica: JsonField;
  previous?: JsonField;
  status: "queued" | "done" | "failed" | "skipped" | "conflict";
  /** Tries since a person last retried it (the engine's retry budget). */
  attempts: number;
  /** Every try, across retries (servers before migration 00023 leave it out). */
  total_attempts?: number;
  next_attempt_at: string;
  last_error: string;
  log: JsonField;
  conflicts?: JsonField;
  resolution?: JsonField;
  /** Set when its pair was unlinked: "twin 7 (a 12, b ENG-4)"; the event stays as history. */
  unlinked_pair?: string;
  /** JSON {"target_id", "applied": [fields], "refused": [fields]}: an attempt the target took only in part (words.ts partialApply). */
  partial?: JsonField;
  created_at: string;
  updated_at: string;
}

/** An alert (GET /api/alerts): a connection or system that started failing; internal/alerts opens and resolves it. */
export interface Alert {
  id: number;
  subject: string;
  connection_id?: number;
  system_id?: number;
  team_id: number;
  name: string;
  kind: "failures" | "paused" | "queue_age" | "unreachable" | "quarantined";
  state: "open" | "resolved";
  detail: string;
  opened_at: string;
  resolved_at?: string;
  /** The opening notice reached the webhook. */
  notified_at?: string;
  last_notified_at?: string;
  /** A notice still to send: "open" or "resolved". */
  pending?: string;
  attempts: number;
  last_error?: string;
}

export interface Twin {
  id: number;
  connection_id: number;
  a_id: string | null;
  b_id: string | null;
  /** The last replica sent each way. */
  sent_ab?: JsonField;
  sent_ba?: JsonField;
  origin: string;
  /** Each side's fields at the last sync (objects). */
  base_a?: unknown;
  base_b?: unknown;
  created_at: string;
  updated_at: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  connection_id?: number;
  twin_id?: number;
  event_id?: number;
  detail: string;
}

export interface TemplateParam {
  name: string;
  type?: string;
  description: string;
  default: unknown;
}

export interface Template {
  // Built-ins are named; team templates also carry an id, their team,
  // latest version and visibility (GET /api/templates lists both).
  builtin?: boolean;
  id?: number;
  team_id?: number;
  latest_version?: number;
  visibility?: Visibility;
  forked_from_id?: number;
  name: string;
  title: string;
  description: string;
  params: TemplateParam[] | null;
  side_a: string;
  side_b: string;
  // Connector kinds each side fits (absent: any kind).
  kinds_a?: string[];
  kinds_b?: string[];
  tags?: string[];
  sources?: Record<Side, Record<Kind, string>>;
}

export type Visibility = "private" | "shared" | "org";
export const VISIBILITIES: Visibility[] = ["private", "shared", "org"];
export type Sources = Record<Side, Record<Kind, string>>;

/** A team template version's content (scripts.Body on the server). */
export interface TemplateBody {
  title: string;
  description: string;
  side_a: string;
  side_b: string;
  kinds_a?: string[];
  kinds_b?: string[];
  tags?: string[];
  params: TemplateParam[] | null;
  sources: Sources;
  options?: unknown;
  fixtures?: Record<string, unknown>;
}

export interface TemplateVersionInfo {
  id: number;
  template_id: number;
  version: number;
  author: string;
  note: string;
  created_at: string;
}

export interface TeamTemplate {
  id: number;
  team_id: number;
  name: string;
  title: string;
  description: string;
  visibility: Visibility;
  forked_from_id?: number;
  forked_from_version?: number;
  created_at: string;
  updated_at: string;
  latest_version: number;
  /** Only for members of the owner team. */
  shared_with?: number[];
  version?: TemplateVersionInfo;
  body?: TemplateBody;
}

/** One file of the template folder that differs between two versions. */
export interface FileDiff {
  path: string;
  status: "added" | "removed" | "changed";
  unified: string;
}

export interface TemplateStatus {
  template_id: number;
  name: string;
  team_id: number;
  version: number;
  latest: number;
  update_available: boolean;
  params: Record<string, unknown>;
  diff: FileDiff[];
  local_edits: string[];
}

/** A parameter pulled out of a connection's scripts: its literal as the scripts spell it. */
export interface ParamSpec {
  name: string;
  literal: string;
  type?: string;
  description?: string;
}

export interface SaveAsTemplate {
  name: string;
  title?: string;
  description?: string;
  visibility?: Visibility;
  params: ParamSpec[];
  note?: string;
}

export interface Entity {
  id: string;
  key?: string;
  url?: string;
  fields: Record<string, unknown>;
  comments?: { id: string; author?: string; body: string; created_at: string }[];
  updated_at?: string;
}

export interface FieldSpec {
  name: string;
  type: string;
  description?: string;
  read_only?: boolean;
}

export interface Schema {
  entity_type: string;
  fields: FieldSpec[];
  comments: boolean;
}

export interface TestRunResult {
  side: Side;
  matched: boolean;
  linked: boolean;
  would_sync: boolean;
  replica?: Record<string, unknown>;
  target_id?: string;
  patch?: Record<string, unknown>;
  comments?: { id: string; author?: string; body: string }[];
  /** The target side's validation rules on the replica; invalid: one failed, nothing would be written. */
  rules?: RuleResult[];
  invalid?: boolean;
  skipped?: boolean;
  skip_reason?: string;
  log: string[];
  stage?: string;
  error?: ApiErrorBody;
}

export type RuleKind = "expr" | "required" | "email" | "e164" | "url" | "date" | "oneOf" | "range" | "maxLength" | "unique";

/** A validation rule as the API stores it (scripting.Rule). */
export interface Rule {
  field?: string;
  kind: RuleKind;
  expr?: string;
  values?: (string | number | boolean)[];
  min?: number;
  max?: number;
  message?: string;
  /** unique: only target entities this expression (over the found entity) holds for count as duplicates. */
  where?: string;
  /** unique: the target's field to search, when named differently from field. */
  target_field?: string;
}

export interface RulesOut {
  side: Side;
  version: number;
  author?: string;
  created_at?: string;
  rules: Rule[];
  expressions: string[];
}

export interface RuleResult {
  index: number;
  field?: string;
  rule: RuleKind;
  message: string;
  value?: unknown;
  passed: boolean;
  error?: string;
  /** unique: the target entity that already has the value (key or id). */
  existing?: string;
  existing_id?: string;
}

export interface TriggerPreview {
  scanned: number;
  matched: number;
  truncated: boolean;
  sample: Entity[];
  errors: number;
  last_error?: string;
}

export interface SystemTest {
  ok: boolean;
  code?: string;
  message?: string;
  ms: number;
  schema?: Schema;
}

export interface ApiErrorBody {
  code: string;
  message: string;
  script?: string;
  line?: number;
  column?: number;
  /** A validation rule's 1-based position, for rule errors. */
  rule?: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
    /** Seconds to wait, from a 429's Retry-After header. */
    readonly retryAfter?: number,
  ) {
    super(body.message || `HTTP ${status}`);
  }
  get code() {
    return this.body.code;
  }
  /** A compile error with a position, to show in the editor. */
  get position(): { line: number; column: number } | null {
    return this.body.code === "script_invalid" && this.body.line ? { line: this.body.line, column: this.body.column || 1 } : null;
  }
}

// ---------- identity ----------

export type Role = "admin" | "editor" | "viewer";
export const ROLES: Role[] = ["admin", "editor", "viewer"];

export interface User {
  id: number;
  email: string;
  name: string;
  org_admin: boolean;
}

export interface TeamRole {
  id: number;
  name: string;
  role: Role;
}

/** The organisation's settings (org admins): whether team admins see every team's name. */
export interface OrgSettings {
  team_directory: boolean;
  updated_at: string;
  updated_by: string;
}

export interface Me {
  user: User;
  teams: TeamRole[];
  csrf_token: string;
  via: "session" | "token";
}

/** The body of GET /api/me's 401. */
export interface Unauthenticated extends ApiErrorBody {
  setup_required?: boolean;
  auto_login?: boolean;
}

export interface Member {
  user_id: number;
  email: string;
  name: string;
  role: Role;
}

export interface ApiToken {
  id: number;
  name: string;
  prefix: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  created_at: string;
}

export interface NewToken {
  token: string;
  id: number;
  name: string;
  prefix: string;
  expires_at: string | null;
}

/**
 * The session the fetch wrapper works for: the CSRF token from the last
 * /api/me (or sign-in) answer, and what to do when the server says the
 * session is gone. auth.ts keeps it up to date.
 */
export const session: {
  csrf: string;
  /** Called on a 401 from any call but the sign-in ones. */
  onUnauthenticated: (err: ApiError) => void;
  /** Called on a 403 csrf_failed; returns a fresh token (or "" when there is none), after which the call is retried once. */
  refreshCsrf: () => Promise<string>;
} = {
  csrf: "",
  onUnauthenticated: () => {},
  refreshCsrf: async () => "",
};

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Calls whose 401 is an answer, not a lost session: the sign-in screen makes them. */
export function signInCall(path: string): boolean {
  return path === "/api/me" || path.startsWith("/api/auth/") || path === "/api/setup";
}

/** retryAfterSeconds reads a Retry-After header: seconds, or an HTTP date. */
export function retryAfterSeconds(h: string | null, now = Date.now()): number | undefined {
  if (!h) return undefined;
  if (/^\d+$/.test(h.trim())) return Number(h.trim());
  const t = Date.parse(h);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - now) / 1000));
}

/** The message shown for an error answer that carries little of its own. */
function explain(status: number, b: Partial<ApiErrorBody>, retryAfter?: number): string {
  if (b.code === "forbidden" || (status === 403 && !b.code)) {
    const why = (b.message ?? "").replace(/^forbidden:?\s*/i, "").replace(/\.?$/, ".");
    return "Your role does not allow this" + (why !== "." ? `: ${why}` : ".") + " Ask a team admin if you need it.";
  }
  if (b.code === "csrf_failed") return "The request was refused (CSRF check failed). Reload the page and try again.";
  if (status === 429) {
    const msg = b.message || "Too many attempts";
    if (/try again/i.test(msg)) return msg;
    return msg + (retryAfter !== undefined ? ` — try again in ${retryAfter} s.` : ". Wait a little and try again.");
  }
  return b.message || `HTTP ${status}`;
}

/** request sends JSON (or a Blob as-is, for archives) and returns the decoded answer, or throws ApiError. */
export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal, retried = false): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const raw = typeof Blob !== "undefined" && body instanceof Blob;
  if (body !== undefined) headers["Content-Type"] = raw ? "application/gzip" : "application/json";
  const unsafe = UNSAFE.has(method.toUpperCase());
  if (unsafe && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      signal,
      credentials: "same-origin",
      headers,
      body: body === undefined ? undefined : raw ? (body as Blob) : JSON.stringify(body),
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(0, { code: "network", message: "Duplex is not reachable: " + (e as Error).message });
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(res.status, { code: "bad_response", message: `HTTP ${res.status}: ${text.slice(0, 200)}` });
  }
  if (!res.ok) {
    const b = (data ?? {}) as Partial<ApiErrorBody>;
    const retryAfter = res.status === 429 ? retryAfterSeconds(res.headers.get("Retry-After")) : undefined;
    const err = new ApiError(
      res.status,
      { ...b, code: b.code || "http_" + res.status, message: explain(res.status, b, retryAfter) } as ApiErrorBody,
      retryAfter,
    );
    if (res.status === 401 && !signInCall(path)) session.onUnauthenticated(err);
    // A stale CSRF token (the session was renewed elsewhere): fetch the current one and try once more.
    if (res.status === 403 && err.code === "csrf_failed" && unsafe && !retried) {
      const fresh = await session.refreshCsrf().catch(() => "");
      if (fresh && fresh !== headers["X-CSRF-Token"]) return request<T>(method, path, body, signal, true);
    }
    throw err;
  }
  return data as T;
}

const get = <T>(p: string, signal?: AbortSignal) => request<T>("GET", p, undefined, signal);

export const api = {
  systems: () => get<System[]>("/api/systems"),
  connectorKinds: () => get<ConnectorSpec[]>("/api/connector-kinds"),
  system: (id: number) => get<System>(`/api/systems/${id}`),
  createSystem: (b: unknown) => request<System>("POST", "/api/systems", b),
  updateSystem: (id: number, b: unknown) => request<System>("PUT", `/api/systems/${id}`, b),
  deleteSystem: (id: number) => request<void>("DELETE", `/api/systems/${id}`),
  testSystem: (id: number) => request<SystemTest>("POST", `/api/systems/${id}/test`),
  schema: (id: number) => get<Schema>(`/api/systems/${id}/schema`),

  connections: () => get<Connection[]>("/api/connections"),
  connection: (id: number) => get<Connection>(`/api/connections/${id}`),
  createConnection: (b: unknown) => request<Connection>("POST", "/api/connections", b),
  saveScript: (id: number, side: Side, kind: Kind, source: string) =>
    request<ScriptVersion>("PUT", `/api/connections/${id}/scripts/${side}/${kind}`, { source }),
  validateScript: (id: number, side: Side, kind: Kind, source: string, signal?: AbortSignal) =>
    request<{ ok: true }>("POST", `/api/connections/${id}/scripts/${side}/${kind}/validate`, { source }, signal),
  versions: (id: number, side: Side, kind: Kind) => get<ScriptVersion[]>(`/api/connections/${id}/scripts/${side}/${kind}/versions`),
  rules: (id: number, side: Side) => get<RulesOut>(`/api/connections/${id}/rules/${side}`),
  saveRules: (id: number, side: Side, rules: Rule[]) => request<RulesOut>("PUT", `/api/connections/${id}/rules/${side}`, { rules }),
  validateRules: (id: number, side: Side, rules: Rule[], signal?: AbortSignal) =>
    request<{ ok: true }>("POST", `/api/connections/${id}/rules/${side}/validate`, { rules }, signal),
  preview: (id: number, side: Side, source: string, signal?: AbortSignal) =>
    request<TriggerPreview>("POST", `/api/connections/${id}/trigger-preview`, { side, source }, signal),
  activate: (id: number) => request<Connection>("POST", `/api/connections/${id}/activate`),
  pause: (id: number) => request<Connection>("POST", `/api/connections/${id}/pause`),
  setPolicy: (id: number, p: unknown) => request<Connection>("PUT", `/api/connections/${id}/conflict-policy`, p),
  testRun: (id: number, b: { side: Side; entity_id?: string; entity?: unknown }) =>
    request<TestRunResult>("POST", `/api/connections/${id}/test-run`, b),
  twins: (id: number) => get<Twin[]>(`/api/connections/${id}/twins?limit=1000`),
  retryFailed: (id: number) => request<{ retried: number }>("POST", `/api/connections/${id}/retry-failed`),

  events: (q: { connection_id?: number; status?: string; limit?: number }) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") p.set(k, String(v));
    return get<SyncEvent[]>(`/api/events?${p}`);
  },
  retry: (id: number) => request<SyncEvent>("POST", `/api/events/${id}/retry`),
  skip: (id: number, reason: string) => request<SyncEvent>("POST", `/api/events/${id}/skip`, { reason }),
  resolve: (id: number, choice: Record<string, { take: string; value?: unknown }>) =>
    request<SyncEvent>("POST", `/api/events/${id}/resolve`, choice),
  alerts: (state?: "open" | "resolved", limit = 50) => get<Alert[]>(`/api/alerts?limit=${limit}${state ? `&state=${state}` : ""}`),
  audit: (connID?: number, limit = 200) => get<AuditEntry[]>(`/api/audit?limit=${limit}${connID ? `&connection_id=${connID}` : ""}`),

  templates: () => get<Template[]>("/api/templates"),
  teamTemplate: (id: number) => get<TeamTemplate>(`/api/team-templates/${id}`),
  templateVersions: (id: number) => get<TemplateVersionInfo[]>(`/api/team-templates/${id}/versions`),
  templateVersion: (id: number, v: number) => get<TeamTemplate>(`/api/team-templates/${id}/versions/${v}`),
  setSharing: (id: number, visibility: Visibility, teams: number[]) =>
    request<TeamTemplate>("PUT", `/api/team-templates/${id}/sharing`, { visibility, teams: visibility === "shared" ? teams : [] }),
  forkTemplate: (id: number, b: { team_id?: number; name?: string; version?: number }) =>
    request<TeamTemplate>("POST", `/api/team-templates/${id}/fork`, b),
  archiveURL: (id: number, v?: number) => `/api/team-templates/${id}/archive${v ? `?version=${v}` : ""}`,
  importTemplate: (file: Blob, q: { team_id?: number; name?: string; note?: string }) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") p.set(k, String(v));
    return request<TeamTemplate>("POST", `/api/team-templates/import?${p}`, file);
  },
  saveAsTemplate: (conn: number, b: SaveAsTemplate) => request<TeamTemplate>("POST", `/api/connections/${conn}/save-as-template`, b),
  templateStatus: (conn: number) => get<TemplateStatus>(`/api/connections/${conn}/template-status`),
  upgradeTemplate: (conn: number, b: { version?: number; params?: Record<string, unknown>; discard_local_edits?: boolean }) =>
    request<Connection>("POST", `/api/connections/${conn}/upgrade-template`, b),

  me: () => get<Me>("/api/me"),
  login: (email: string, password: string) => request<Me>("POST", "/api/auth/login", { email, password }),
  autoLogin: () => request<Me>("POST", "/api/auth/auto"),
  logout: () => request<void>("POST", "/api/auth/logout"),
  setup: (b: { token: string; email: string; name: string; password: string }) => request<Me>("POST", "/api/setup", b),
  changePassword: (current: string, next: string) => request<void>("PUT", "/api/me/password", { current, new: next }),
  tokens: () => get<ApiToken[]>("/api/me/tokens"),
  createToken: (name: string, expiresInDays: number) => request<NewToken>("POST", "/api/me/tokens", { name, expires_in_days: expiresInDays }),
  revokeToken: (id: number) => request<void>("DELETE", `/api/me/tokens/${id}`),

  teams: () => get<TeamRole[]>("/api/teams"),
  /** One's teams and the owners of templates one sees; every team for org admins, and for team admins when the org's team directory is on. */
  teamDirectory: () => get<TeamRole[]>("/api/teams?all=1"),
  createTeam: (name: string) => request<TeamRole>("POST", "/api/teams", { name }),
  orgSettings: () => get<OrgSettings>("/api/org-settings"),
  setOrgSettings: (b: { team_directory: boolean }) => request<OrgSettings>("PUT", "/api/org-settings", b),
  members: (team: number) => get<Member[]>(`/api/teams/${team}/members`),
  setMember: (team: number, user: number, role: Role) => request<unknown>("PUT", `/api/teams/${team}/members/${user}`, { role }),
  removeMember: (team: number, user: number) => request<void>("DELETE", `/api/teams/${team}/members/${user}`),
  users: () => get<User[]>("/api/users"),
  createUser: (b: { email: string; name: string; password: string; org_admin: boolean }) => request<User>("POST", "/api/users", b),
  template: (name: string) => get<Template>(`/api/templates/${encodeURIComponent(name)}`),
  scriptAPI: async () => {
    const r = await fetch("/api/script-api.d.ts");
    if (!r.ok) throw new ApiError(r.status, { code: "http_" + r.status, message: "script API declarations unavailable" });
    return r.text();
  },
};
