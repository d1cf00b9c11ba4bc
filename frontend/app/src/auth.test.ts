import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api, session } from "./api";
import { authState, signOut, start } from "./auth";

const ME = {
  user: { id: 1, email: "ada@example.com", name: "Ada", org_admin: false },
  teams: [{ id: 1, name: "support", role: "editor" }],
  csrf_token: "csrf-1",
  via: "session",
};

/** A fake server: answers by "METHOD path", records the calls. */
function server(routes: Record<string, [number, unknown]>) {
  const calls: string[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (path: string, init: RequestInit) => {
      const k = `${init.method} ${path}`;
      calls.push(k);
      const [status, body] = routes[k] ?? [404, { code: "not_found", message: k }];
      return new Response(status === 204 ? null : JSON.stringify(body), { status });
    }),
  );
  return calls;
}

function browser(url: string) {
  const u = new URL(url);
  const loc = { pathname: u.pathname, search: u.search, hash: u.hash };
  const store = new Map<string, string>();
  vi.stubGlobal("location", loc);
  vi.stubGlobal("history", {
    replaceState: (_: unknown, __: string, to: string) => {
      const n = new URL(to, u);
      Object.assign(loc, { pathname: n.pathname, search: n.search, hash: n.hash });
    },
  });
  vi.stubGlobal("sessionStorage", {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => store.set(k, v),
    removeItem: (k: string) => store.delete(k),
  });
  return loc;
}

const unauth = (extra: object) => [401, { code: "unauthenticated", message: "sign in", ...extra }] as [number, unknown];

beforeEach(() => browser("http://127.0.0.1:8080/#/connections/3/scripts"));
afterEach(() => vi.unstubAllGlobals());

describe("start", () => {
  it("is signed in when /api/me answers, and the fetch wrapper gets the CSRF token", async () => {
    server({ "GET /api/me": [200, ME] });
    await start();
    const s = authState();
    expect(s.status).toBe("signed-in");
    expect(s.status === "signed-in" && s.auto).toBe(false);
    expect(session.csrf).toBe("csrf-1");
  });

  it("signs the demo in automatically when the server offers it, and says so", async () => {
    const calls = server({ "GET /api/me": unauth({ auto_login: true }), "POST /api/auth/auto": [200, ME] });
    await start();
    expect(calls).toEqual(["GET /api/me", "POST /api/auth/auto"]);
    const s = authState();
    expect(s.status === "signed-in" && s.auto).toBe(true);
  });

  it("shows the form when automatic sign-in is refused (not on loopback)", async () => {
    server({ "GET /api/me": unauth({ auto_login: true }), "POST /api/auth/auto": [404, { code: "not_found", message: "no" }] });
    await start();
    expect(authState()).toMatchObject({ status: "signed-out", autoLogin: true, expired: false });
  });

  it("shows the setup form on the printed setup link when no admin exists", async () => {
    browser("http://127.0.0.1:8080/setup?token=abc123");
    server({ "GET /api/me": unauth({ setup_required: true }) });
    await start();
    expect(authState()).toEqual({ status: "setup", token: "abc123" });
  });

  it("a setup link used already says so above the sign-in form", async () => {
    browser("http://127.0.0.1:8080/setup?token=abc123");
    server({ "GET /api/me": unauth({ setup_required: false }) });
    await start();
    expect(authState()).toMatchObject({ status: "signed-out", setupRequired: false, notice: expect.stringMatching(/setup link was used already/) });
  });

  it("after setup the app leaves /setup and keeps no token in the address", async () => {
    const loc = browser("http://127.0.0.1:8080/setup?token=abc123");
    server({ "GET /api/me": unauth({ setup_required: true }), "POST /api/setup": [200, ME] });
    await start();
    const { signedIn } = await import("./auth");
    signedIn(await api.setup({ token: "abc123", email: "a@b.c", name: "A", password: "pw" }));
    expect(authState().status).toBe("signed-in");
    expect(loc).toEqual({ pathname: "/", search: "", hash: "#/connections" });
  });

  it("without the link, setup_required is a sign-in screen that says what to do", async () => {
    server({ "GET /api/me": unauth({ setup_required: true }) });
    await start();
    expect(authState()).toMatchObject({ status: "signed-out", setupRequired: true });
  });

  it("a server that cannot be reached is an error, not a sign-in form", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    await start();
    expect(authState().status).toBe("error");
  });
});

describe("a session that ends", () => {
  it("a 401 on any call brings the sign-in screen over the same route", async () => {
    const loc = browser("http://127.0.0.1:8080/#/connections/3/versions");
    server({ "GET /api/me": [200, ME], "GET /api/connections/3": unauth({}) });
    await start();
    await api.connection(3).catch(() => {});
    expect(authState()).toMatchObject({ status: "signed-out", expired: true, me: ME });
    expect(session.csrf).toBe("");
    expect(loc.hash).toBe("#/connections/3/versions"); // where the app returns after signing in
  });

  it("a 403 keeps the session", async () => {
    server({ "GET /api/me": [200, ME], "POST /api/connections/3/activate": [403, { code: "forbidden", message: "viewer" }] });
    await start();
    await api.activate(3).catch(() => {});
    expect(authState().status).toBe("signed-in");
  });

  it("signing out of the demo does not sign in again at once", async () => {
    const calls = server({ "GET /api/me": unauth({ auto_login: true }), "POST /api/auth/auto": [200, ME], "POST /api/auth/logout": [204, null] });
    await start();
    expect(authState().status).toBe("signed-in");
    await signOut();
    expect(calls.slice(2)).toEqual(["POST /api/auth/logout", "GET /api/me"]);
    expect(authState()).toMatchObject({ status: "signed-out", autoLogin: true, expired: false });
  });
});
