// Typed access to the Duplex JSON API. Every error answer is {code, message}
// (plus script, line, column for scripts); it becomes an ApiError.
//
// The body types come from api.gen.ts, which `go generate ./server` writes
// from the server's OpenAPI ops table (a Go test fails when it is stale);
// this file names them for the app and keeps what the server cannot say:
// unions of values the server sends as plain strings, input shapes, and the
// fetch wrapper.
import type * as gen from "./api.gen";

export type { ErrorCode, JsonValue } from "./api.gen";
export { ERROR_CODES } from "./api.gen";

import type { Direction, ImpactDraft, ImpactResult } from "./impact";

export type Side = gen.StoreSide;
/** A script's kind; "rules" versions are a side's validation rules, edited apart. */
export type Kind = Exclude<gen.StoreScriptKind, "rules">;
export const KINDS: Kind[] = ["trigger", "outgoing", "incoming"];

export type System = gen.ServerSystemOut;
/** A peer link with its status (docs/peers.md). */
export type PeerLink = gen.PeeringView;

// ConnectorSpec is what GET /api/connector-kinds says about one connector
// kind (connectors.Spec): the system form is built from it.
export type ConnectorSetting = gen.ConnectorsSetting;
export type ConnectorSpec = gen.ConnectorsSpec;

export type ScriptVersion = gen.StoreScriptVersion;
export type Connection = gen.ServerConnectionOut;

/** A JSON field of the API: JSON text from older servers, the value itself from newer ones (read it with parseJSON). */
export type JsonField = gen.JsonValue | undefined;

export type SyncEvent = gen.ServerEventOut;

/** An alert (GET /api/alerts): a connection or system that started failing; internal/alerts opens and resolves it. */
export type Alert = gen.StoreAlert;
export type Twin = gen.ServerTwinOut;
export type AuditEntry = gen.StoreAuditEntry;
export type TemplateParam = gen.ScriptsParam;

/** GET /api/templates lists built-ins (named) and team templates (also an id, their team, latest version and visibility). */
export type Template = gen.ServerTemplateItem;
/** A built-in template (GET /api/templates/{name}). */
export type BuiltinTemplate = gen.ScriptsTemplate;

export type Visibility = gen.StoreVisibility;
export const VISIBILITIES: Visibility[] = ["private", "shared", "org"];
export type Sources = Record<Side, Record<Kind, string>>;

/** A team template version's content (scripts.Body on the server). */
export type TemplateBody = gen.ScriptsBody;
export type TemplateVersionInfo = gen.StoreTemplateVersion;
export type TeamTemplate = gen.ServerTeamTemplateOut;
/** One file of the template folder that differs between two versions. */
export type FileDiff = gen.ScriptsFileDiff;
export type TemplateStatus = gen.ServerTemplateStatus;

/** A parameter pulled out of a connection's scripts: its literal as the scripts spell it. */
export type ParamSpec = Pick<gen.ScriptsParamSpec, "name" | "literal"> & Partial<gen.ScriptsParamSpec>;
/** The body of save-as-template: a name and the parameters; the rest may be left out. */
export type SaveAsTemplate = Pick<gen.ServerSaveAsIn, "name"> & Partial<Omit<gen.ServerSaveAsIn, "params">> & { params: ParamSpec[] };

export type Entity = gen.ConnectorsEntity;
export type FieldSpec = gen.ConnectorsFieldSpec;
export type Schema = gen.ConnectorsSchema;
export type TestRunResult = gen.ServerTestRunOut;

export type RuleKind = "expr" | "required" | "email" | "e164" | "url" | "date" | "oneOf" | "range" | "maxLength" | "unique";

/** A validation rule as the API stores it (scripting.Rule). */
export type Rule = gen.ScriptingRule;
export type RulesOut = gen.ServerRulesOut;
export type RuleResult = gen.ScriptingRuleResult;
export type TriggerPreview = gen.EngineTriggerPreview;
export type SystemTest = gen.ServerSystemTestOut;

/** The codes the app gives failures that carry no server code: no answer, an answer that is not JSON, an error without a body. */
export type AppErrorCode = "network" | "bad_response" | `http_${number}`;

/** An error answer; its code is one of ERROR_CODES (so comparing with a code the server never sends fails to compile) or the app's own. */
export type ApiErrorBody = Omit<gen.ServerApiError, "code"> & { code: gen.ErrorCode | AppErrorCode };

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

export type Role = gen.IdentityRole;
export const ROLES: Role[] = ["admin", "editor", "viewer"];

export type User = gen.IdentityUser;
/** A team and one's role in it. */
export type TeamRole = gen.ServerTeamRoleOut;
/** The organisation's settings (org admins): whether team admins see every team's name. */
export type OrgSettings = gen.StoreOrgSettings;
export type Me = gen.ServerMeOut;

/** The body of GET /api/me's 401. */
export interface Unauthenticated extends ApiErrorBody {
  setup_required?: boolean;
  auto_login?: boolean;
}

export type Member = gen.ServerMemberOut;
export type ApiToken = gen.IdentityAPIToken;
export type NewToken = gen.ServerTokenOut;

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
      { ...b, code: b.code || `http_${res.status}`, message: explain(res.status, b, retryAfter) } as ApiErrorBody,
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
  createSystem: (b: Partial<gen.ServerSystemIn>) => request<System>("POST", "/api/systems", b),
  updateSystem: (id: number, b: Partial<gen.ServerSystemIn>) => request<System>("PUT", `/api/systems/${id}`, b),
  deleteSystem: (id: number) => request<void>("DELETE", `/api/systems/${id}`),
  testSystem: (id: number) => request<SystemTest>("POST", `/api/systems/${id}/test`),
  schema: (id: number) => get<Schema>(`/api/systems/${id}/schema`),

  connections: () => get<Connection[]>("/api/connections"),
  connection: (id: number) => get<Connection>(`/api/connections/${id}`),
  createConnection: (b: Partial<gen.ServerConnectionIn>) => request<Connection>("POST", "/api/connections", b),
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
  setPolicy: (id: number, p: gen.EnginePolicy) => request<Connection>("PUT", `/api/connections/${id}/conflict-policy`, p),
  testRun: (id: number, b: Pick<gen.ServerTestRunIn, "side"> & Partial<gen.ServerTestRunIn>) =>
    request<TestRunResult>("POST", `/api/connections/${id}/test-run`, b),
  impact: (id: number, b: ImpactDraft, signal?: AbortSignal) => request<ImpactResult>("POST", `/api/connections/${id}/impact`, b, signal),
  mapping: (id: number, d: Direction) => get<gen.ServerMappingOut>(`/api/connections/${id}/mapping/${d}`),
  saveMapping: (id: number, d: Direction, mapping: gen.MappingMapping) =>
    request<gen.ServerMappingSavedOut>("PUT", `/api/connections/${id}/mapping/${d}`, { mapping }),
  renderMapping: (id: number, d: Direction, mapping: gen.MappingMapping, signal?: AbortSignal) =>
    request<gen.MappingScripts>("POST", `/api/connections/${id}/mapping/${d}/render`, { mapping }, signal),
  suggestMapping: (id: number, d: Direction, mapping: gen.MappingMapping) =>
    request<gen.ServerMappingOut>("POST", `/api/connections/${id}/mapping/${d}/suggest`, { mapping }),
  twins: (id: number) => get<Twin[]>(`/api/connections/${id}/twins?limit=1000`),
  retryFailed: (id: number) => request<gen.ServerCountOut>("POST", `/api/connections/${id}/retry-failed`),

  events: (q: { connection_id?: number; status?: string; limit?: number }) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") p.set(k, String(v));
    return get<SyncEvent[]>(`/api/events?${p}`);
  },
  retry: (id: number) => request<SyncEvent>("POST", `/api/events/${id}/retry`),
  skip: (id: number, reason: string) => request<SyncEvent>("POST", `/api/events/${id}/skip`, { reason }),
  resolve: (id: number, choice: Record<string, gen.EngineResolution>) =>
    request<SyncEvent>("POST", `/api/events/${id}/resolve`, choice),
  alerts: (state?: "open" | "resolved", limit = 50) => get<Alert[]>(`/api/alerts?limit=${limit}${state ? `&state=${state}` : ""}`),
  peerLinks: () => get<PeerLink[]>("/api/peer-links"),
  invitePeer: (b: Partial<gen.PeeringInviteIn>) => request<gen.PeeringInvited>("POST", "/api/peer-links", b),
  acceptPeer: (b: Partial<gen.PeeringAcceptIn>) => request<PeerLink>("POST", "/api/peer-links/accept", b),
  peerLinkState: (id: number, action: "pause" | "resume" | "revoke") => request<PeerLink>("POST", `/api/peer-links/${id}/${action}`),
  audit: (connID?: number, limit = 200) => get<AuditEntry[]>(`/api/audit?limit=${limit}${connID ? `&connection_id=${connID}` : ""}`),

  templates: () => get<Template[]>("/api/templates"),
  teamTemplate: (id: number) => get<TeamTemplate>(`/api/team-templates/${id}`),
  templateVersions: (id: number) => get<TemplateVersionInfo[]>(`/api/team-templates/${id}/versions`),
  templateVersion: (id: number, v: number) => get<TeamTemplate>(`/api/team-templates/${id}/versions/${v}`),
  setSharing: (id: number, visibility: Visibility, teams: number[]) =>
    request<TeamTemplate>("PUT", `/api/team-templates/${id}/sharing`, { visibility, teams: visibility === "shared" ? teams : [] }),
  forkTemplate: (id: number, b: Partial<gen.ServerForkTemplateIn>) =>
    request<TeamTemplate>("POST", `/api/team-templates/${id}/fork`, b),
  archiveURL: (id: number, v?: number) => `/api/team-templates/${id}/archive${v ? `?version=${v}` : ""}`,
  importTemplate: (file: Blob, q: { team_id?: number; name?: string; note?: string }) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") p.set(k, String(v));
    return request<TeamTemplate>("POST", `/api/team-templates/import?${p}`, file);
  },
  saveAsTemplate: (conn: number, b: SaveAsTemplate) => request<TeamTemplate>("POST", `/api/connections/${conn}/save-as-template`, b),
  templateStatus: (conn: number) => get<TemplateStatus>(`/api/connections/${conn}/template-status`),
  upgradeTemplate: (conn: number, b: Partial<gen.ServerUpgradeTemplateIn>) =>
    request<Connection>("POST", `/api/connections/${conn}/upgrade-template`, b),

  me: () => get<Me>("/api/me"),
  login: (email: string, password: string) => request<Me>("POST", "/api/auth/login", { email, password }),
  autoLogin: () => request<Me>("POST", "/api/auth/auto"),
  logout: () => request<void>("POST", "/api/auth/logout"),
  setup: (b: gen.ServerSetupIn) => request<Me>("POST", "/api/setup", b),
  changePassword: (current: string, next: string) => request<void>("PUT", "/api/me/password", { current, new: next }),
  tokens: () => get<ApiToken[]>("/api/me/tokens"),
  createToken: (name: string, expiresInDays: number) => request<NewToken>("POST", "/api/me/tokens", { name, expires_in_days: expiresInDays }),
  revokeToken: (id: number) => request<void>("DELETE", `/api/me/tokens/${id}`),

  teams: () => get<TeamRole[]>("/api/teams"),
  /** One's teams and the owners of templates one sees; every team for org admins, and for team admins when the org's team directory is on. */
  teamDirectory: () => get<TeamRole[]>("/api/teams?all=1"),
  createTeam: (name: string) => request<gen.IdentityTeam>("POST", "/api/teams", { name }),
  orgSettings: () => get<OrgSettings>("/api/org-settings"),
  setOrgSettings: (b: gen.ServerOrgSettingsIn) => request<OrgSettings>("PUT", "/api/org-settings", b),
  members: (team: number) => get<Member[]>(`/api/teams/${team}/members`),
  setMember: (team: number, user: number, role: Role) => request<Member>("PUT", `/api/teams/${team}/members/${user}`, { role }),
  removeMember: (team: number, user: number) => request<void>("DELETE", `/api/teams/${team}/members/${user}`),
  users: () => get<User[]>("/api/users"),
  createUser: (b: gen.ServerCreateUserIn) => request<User>("POST", "/api/users", b),
  template: (name: string) => get<BuiltinTemplate>(`/api/templates/${encodeURIComponent(name)}`),
  scriptAPI: async () => {
    const r = await fetch("/api/script-api.d.ts");
    if (!r.ok) throw new ApiError(r.status, { code: `http_${r.status}`, message: "script API declarations unavailable" });
    return r.text();
  },
};
