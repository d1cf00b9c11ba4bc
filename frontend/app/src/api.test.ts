import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, ERROR_CODES, request, retryAfterSeconds, session } from "./api";

function answer(status: number, body: unknown) {
  return vi.fn(async () => new Response(typeof body === "string" ? body : JSON.stringify(body), { status }));
}

afterEach(() => vi.unstubAllGlobals());

/** failure awaits a call that must fail and returns its error. */
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("the call succeeded");
    },
    (e) => e as ApiError,
  );

describe("request", () => {
  it("turns a script error into an ApiError with its position", async () => {
    vi.stubGlobal("fetch", answer(422, { code: "script_invalid", message: "trigger:1:20: unexpected token EOF", script: "trigger", line: 1, column: 20 }));
    const err = await failure(api.validateScript(1, "a", "trigger", '"x" in labels &&'));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("script_invalid");
    expect(err.position).toEqual({ line: 1, column: 20 });
  });
  it("has no position for other errors", async () => {
    vi.stubGlobal("fetch", answer(404, { code: "not_found", message: "connection 9: not found" }));
    const err = await failure(api.connection(9));
    expect(err.status).toBe(404);
    expect(err.position).toBeNull();
    expect(err.message).toBe("connection 9: not found");
  });
  it("sends JSON bodies to the right route", async () => {
    const f = answer(200, { id: 7, version: 3 });
    vi.stubGlobal("fetch", f);
    await api.saveScript(4, "b", "incoming", "entity.title = replica.title;");
    const [path, init] = f.mock.calls[0] as unknown as [string, RequestInit];
    expect(path).toBe("/api/connections/4/scripts/b/incoming");
    expect(init.method).toBe("PUT");
    expect(JSON.parse(init.body as string)).toEqual({ source: "entity.title = replica.title;" });
  });
  it("reports an unreachable server and a non-JSON answer plainly", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    expect((await failure(request("GET", "/api/systems"))).code).toBe("network");
    vi.stubGlobal("fetch", answer(502, "<html>bad gateway</html>"));
    const err = await failure(request("GET", "/api/systems"));
    expect(err.code).toBe("bad_response");
    expect(err.message).toContain("502");
  });
  it("returns nothing for 204", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response(null, { status: 204 })));
    expect(await api.deleteSystem(3)).toBeUndefined();
  });
});

describe("the session in the fetch wrapper", () => {
  const calls = (f: ReturnType<typeof vi.fn>) => f.mock.calls as unknown as [string, RequestInit][];
  const header = (init: RequestInit, name: string) => (init.headers as Record<string, string>)[name];
  afterEach(() => {
    session.csrf = "";
    session.onUnauthenticated = () => {};
    session.refreshCsrf = async () => "";
  });

  it("sends the CSRF token on unsafe methods only, and the cookie with every call", async () => {
    session.csrf = "tok-123";
    const f = vi.fn(async () => new Response("{}", { status: 200 }));
    vi.stubGlobal("fetch", f);
    for (const m of ["GET", "HEAD", "OPTIONS"]) await request(m, "/api/systems");
    for (const m of ["POST", "PUT", "PATCH", "DELETE", "post"]) await request(m, "/api/systems/1", m === "DELETE" ? undefined : {});
    const sent = calls(f).map(([, init]) => [init.method, header(init, "X-CSRF-Token")]);
    expect(sent).toEqual([
      ["GET", undefined],
      ["HEAD", undefined],
      ["OPTIONS", undefined],
      ["POST", "tok-123"],
      ["PUT", "tok-123"],
      ["PATCH", "tok-123"],
      ["DELETE", "tok-123"],
      ["post", "tok-123"],
    ]);
    expect(calls(f).every(([, init]) => init.credentials === "same-origin")).toBe(true);
  });

  it("sends no CSRF header before there is a session", async () => {
    const f = answer(200, {});
    vi.stubGlobal("fetch", f);
    await api.login("a@example.com", "pw");
    expect(header(calls(f)[0][1], "X-CSRF-Token")).toBeUndefined();
  });

  it("reports a 401 as a lost session, except on the sign-in calls themselves", async () => {
    const lost = vi.fn();
    session.onUnauthenticated = lost;
    vi.stubGlobal("fetch", answer(401, { code: "unauthenticated", message: "sign in" }));
    const err = await failure(api.connections());
    expect(err.status).toBe(401);
    expect(lost).toHaveBeenCalledTimes(1);
    expect(lost.mock.calls[0][0]).toBe(err);
    await failure(api.tokens());
    expect(lost).toHaveBeenCalledTimes(2); // /api/me/tokens is not /api/me
    vi.stubGlobal("fetch", answer(401, { code: "invalid_credentials", message: "wrong email or password" }));
    expect((await failure(api.login("a@example.com", "x"))).code).toBe("invalid_credentials");
    await failure(api.me());
    await failure(api.setup({ token: "t", email: "e", name: "n", password: "p" }));
    expect(lost).toHaveBeenCalledTimes(2);
  });

  it("explains a 403 forbidden and does not sign out", async () => {
    const lost = vi.fn();
    session.onUnauthenticated = lost;
    vi.stubGlobal("fetch", answer(403, { code: "forbidden", message: "forbidden: this needs the editor role in team 2; you are viewer" }));
    const err = await failure(api.activate(3));
    expect(err.status).toBe(403);
    expect(err.code).toBe("forbidden");
    expect(err.message).toBe("Your role does not allow this: this needs the editor role in team 2; you are viewer. Ask a team admin if you need it.");
    expect(lost).not.toHaveBeenCalled();
  });

  it("keeps a 429's Retry-After and says how long to wait", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify({ code: "rate_limited", message: "too many sign-in attempts" }), { status: 429, headers: { "Retry-After": "42" } })));
    const err = await failure(api.login("a@example.com", "x"));
    expect(err.code).toBe("rate_limited");
    expect(err.retryAfter).toBe(42);
    expect(err.message).toBe("too many sign-in attempts — try again in 42 s.");
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify({ code: "rate_limited", message: "too many failed sign-ins: try again in 42 s" }), { status: 429, headers: { "Retry-After": "42" } })));
    expect((await failure(api.login("a@example.com", "x"))).message).toBe("too many failed sign-ins: try again in 42 s");
  });

  it("reads Retry-After as seconds or as a date", () => {
    expect(retryAfterSeconds("7")).toBe(7);
    expect(retryAfterSeconds(null)).toBeUndefined();
    expect(retryAfterSeconds("soon")).toBeUndefined();
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterSeconds("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30);
  });

  it("on csrf_failed fetches the current token and retries once", async () => {
    session.csrf = "old";
    session.refreshCsrf = vi.fn(async () => (session.csrf = "new"));
    const f = vi
      .fn()
      .mockResolvedValueOnce(new Response(JSON.stringify({ code: "csrf_failed", message: "bad token" }), { status: 403 }))
      .mockResolvedValueOnce(new Response(JSON.stringify({ id: 1 }), { status: 200 }));
    vi.stubGlobal("fetch", f);
    expect(await api.pause(1)).toEqual({ id: 1 });
    expect(calls(f).map(([, i]) => header(i, "X-CSRF-Token"))).toEqual(["old", "new"]);
  });

  it("gives up after one retry when the token stays refused", async () => {
    session.csrf = "old";
    let n = 0;
    session.refreshCsrf = vi.fn(async () => (session.csrf = "t" + ++n));
    const f = vi.fn(async () => new Response(JSON.stringify({ code: "csrf_failed", message: "bad token" }), { status: 403 }));
    vi.stubGlobal("fetch", f);
    const err = await failure(api.pause(1));
    expect(err.code).toBe("csrf_failed");
    expect(f).toHaveBeenCalledTimes(2);
  });
});

describe("generated error codes", () => {
  it("lists each server code once, and the app's own codes are not among them", () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    for (const c of ERROR_CODES) expect(c).toMatch(/^[a-z]+(_[a-z0-9]+)*$/);
    // request() and the sign-in form match on these; the server must declare them.
    for (const c of ["forbidden", "csrf_failed", "script_invalid", "invalid_credentials", "rate_limited", "unauthenticated"]) expect(ERROR_CODES).toContain(c);
    for (const c of ["network", "bad_response"]) expect(ERROR_CODES).not.toContain(c);
  });
});
