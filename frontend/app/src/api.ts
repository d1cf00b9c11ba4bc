// Typed access to the Duplex JSON API. Every error answer is {code, message}
// (plus script, line, column for scripts); it becomes an ApiError.

export type Side = "a" | "b";
export type Kind = "trigger" | "outgoing" | "incoming";
export const KINDS: Kind[] = ["trigger", "outgoing", "incoming"];

export interface System {
  id: number;
  name: string;
  kind: string;
  settings: Record<string, unknown>;
  secret_keys: string[];
  poll_interval_ms: number;
  rate_per_second: number;
  rate_burst: number;
  created_at: string;
  updated_at: string;
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
  conflict_policy: string;
  options: string;
  created_at: string;
  updated_at: string;
  counts: Record<string, number>;
  scripts?: Record<Side, Record<Kind, ScriptVersion>>;
}

export interface SyncEvent {
  id: number;
  connection_id: number;
  twin_id: number;
  direction: "a_to_b" | "b_to_a";
  source_id: string;
  action?: string;
  replica: string;
  previous?: string;
  status: "queued" | "done" | "failed" | "skipped" | "conflict";
  attempts: number;
  next_attempt_at: string;
  last_error: string;
  log: string;
  conflicts?: string;
  resolution?: string;
  created_at: string;
  updated_at: string;
}

export interface Twin {
  id: number;
  connection_id: number;
  a_id: string | null;
  b_id: string | null;
  origin: string;
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
  visibility?: "private" | "shared" | "org";
  name: string;
  title: string;
  description: string;
  params: TemplateParam[] | null;
  side_a: string;
  side_b: string;
  tags?: string[];
  sources?: Record<Side, Record<Kind, string>>;
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
  skipped?: boolean;
  skip_reason?: string;
  log: string[];
  stage?: string;
  error?: ApiErrorBody;
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
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
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

/** request sends JSON and returns the decoded answer, or throws ApiError. */
export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      signal,
      headers: body === undefined ? { Accept: "application/json" } : { Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
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
    throw new ApiError(res.status, { ...b, code: b.code || "http_" + res.status, message: b.message || `HTTP ${res.status}` } as ApiErrorBody);
  }
  return data as T;
}

const get = <T>(p: string, signal?: AbortSignal) => request<T>("GET", p, undefined, signal);

export const api = {
  systems: () => get<System[]>("/api/systems"),
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
  audit: (connID?: number, limit = 200) => get<AuditEntry[]>(`/api/audit?limit=${limit}${connID ? `&connection_id=${connID}` : ""}`),

  templates: () => get<Template[]>("/api/templates"),
  template: (name: string) => get<Template>(`/api/templates/${encodeURIComponent(name)}`),
  scriptAPI: async () => {
    const r = await fetch("/api/script-api.d.ts");
    if (!r.ok) throw new ApiError(r.status, { code: "http_" + r.status, message: "script API declarations unavailable" });
    return r.text();
  },
};
