import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, request } from "./api";

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
