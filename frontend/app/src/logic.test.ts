import { describe, expect, it } from "vitest";
import { activity, ago, can, denied, diffLines, diffStats, dirtyKeys, health, href, logLines, markerRange, parseJSON, editedValue, valueText, parseRoute, pickableTeams, roleIn, setupToken, teamName, tokenState, waitText } from "./logic";
import type { SyncEvent, Twin } from "./api";

describe("routes", () => {
  it("parses every view and round-trips through href", () => {
    const cases = ["#/connections", "#/connections/new", "#/connections/new/support-escalation", "#/connections/7/versions", "#/connections/7/test?side=b&entity=3", "#/systems", "#/systems/new", "#/systems/2"];
    for (const h of cases) expect(href(parseRoute(h))).toBe(h);
  });
  it("has a page for peer links", () => {
    expect(parseRoute("#/peers")).toEqual({ view: "peers" });
    expect(href({ view: "peers" })).toBe("#/peers");
    expect(parseRoute("#/peers/x").view).toBe("not-found");
  });
  it("defaults to the connection list and the scripts tab", () => {
    expect(parseRoute("")).toEqual({ view: "connections" });
    expect(parseRoute("#/connections/3")).toEqual({ view: "connection", id: 3, tab: "scripts", query: {} });
  });
  it("rejects unknown tabs and paths", () => {
    expect(parseRoute("#/connections/3/nope").view).toBe("not-found");
    expect(parseRoute("#/connections/x").view).toBe("not-found");
    expect(parseRoute("#/elsewhere").view).toBe("not-found");
  });
});

describe("health", () => {
  it("is paused when inactive, failing with failed events or conflicts, else active", () => {
    expect(health({ active: false, counts: { failed: 3 } })).toBe("paused");
    expect(health({ active: false, counts: { failed: 3 }, paused_reason: "quarantined: 3 script runs hit a limit" })).toBe("quarantined");
    expect(health({ active: false, counts: {}, paused_reason: "" })).toBe("paused");
    expect(health({ active: true, counts: { done: 9 } })).toBe("active");
    expect(health({ active: true, counts: { failed: 1 } })).toBe("failing");
    expect(health({ active: true, counts: { conflict: 2 } })).toBe("failing");
  });
});

describe("diffLines", () => {
  it("finds one changed line among equal ones", () => {
    const d = diffLines("a\nb\nc", "a\nB\nc");
    expect(d.map((l) => l.op + ":" + l.text)).toEqual(["same:a", "del:b", "add:B", "same:c"]);
    expect(diffStats(d)).toEqual({ added: 1, removed: 1 });
  });
  it("numbers lines of both versions", () => {
    const d = diffLines("x\ny", "w\nx\ny\nz");
    expect(d).toEqual([
      { op: "add", text: "w", b: 1 },
      { op: "same", text: "x", a: 1, b: 2 },
      { op: "same", text: "y", a: 2, b: 3 },
      { op: "add", text: "z", b: 4 },
    ]);
  });
  it("reports identical texts as unchanged", () => {
    expect(diffStats(diffLines("same\ntext", "same\ntext"))).toEqual({ added: 0, removed: 0 });
  });
});

describe("markerRange", () => {
  it("underlines the word at the error", () => {
    expect(markerRange(["status == foo"], 1, 11)).toEqual({ startLineNumber: 1, startColumn: 11, endLineNumber: 1, endColumn: 14 });
  });
  it("underlines the last character for an error past the end (unexpected EOF)", () => {
    // "todev" in labels && -> the server says 1:20 on a 19-character line
    const line = '"todev" in labels &&';
    expect(markerRange([line], 1, line.length + 1)).toEqual({ startLineNumber: 1, startColumn: line.length, endLineNumber: 1, endColumn: line.length + 1 });
  });
  it("keeps a visible range on an empty line and clamps the line", () => {
    expect(markerRange(["a", ""], 2, 1)).toEqual({ startLineNumber: 2, startColumn: 1, endLineNumber: 2, endColumn: 2 });
    expect(markerRange(["abc"], 9, 2).startLineNumber).toBe(1);
  });
  it("underlines a single punctuation character", () => {
    expect(markerRange(["replica.b = ;"], 1, 13)).toEqual({ startLineNumber: 1, startColumn: 13, endLineNumber: 1, endColumn: 14 });
  });
});

describe("activity", () => {
  const ev = (id: number, direction: "a_to_b" | "b_to_a", twin: number, src: string) =>
    ({ id, direction, twin_id: twin, source_id: src, status: "done" }) as SyncEvent;
  const twins = [{ id: 1, a_id: "3", b_id: "12" }, { id: 2, a_id: "4", b_id: null }] as Twin[];
  it("names the other side through the twin, in both directions", () => {
    const items = activity([ev(1, "a_to_b", 1, "3"), ev(2, "b_to_a", 1, "12"), ev(3, "a_to_b", 2, "4"), ev(4, "a_to_b", 9, "5")], twins);
    expect(items.map((i) => [i.from, i.sourceId, i.targetId])).toEqual([
      ["a", "3", "12"],
      ["b", "12", "3"],
      ["a", "4", null],
      ["a", "5", null],
    ]);
  });
});

describe("formatting", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  it("says how long ago", () => {
    expect(ago("2026-01-01T11:59:58Z", now)).toBe("just now");
    expect(ago("2026-01-01T11:59:00Z", now)).toBe("60s ago".replace("60s", "1 min"));
    expect(ago("2026-01-01T09:00:00Z", now)).toBe("3 h ago");
    expect(ago("0001-01-01T00:00:00Z", now)).toBe("never");
  });
  it("reads event logs stored as JSON or text", () => {
    expect(logLines('["one","two"]')).toEqual(["one", "two"]);
    expect(logLines("plain\ntext")).toEqual(["plain", "text"]);
    expect(logLines("")).toEqual([]);
    // Newer servers send the log as a JSON value rather than text.
    expect(logLines(["one", "two"])).toEqual(["one", "two"]);
    expect(logLines(null)).toEqual([]);
    expect(parseJSON('{"a":[1]}')).toEqual(parseJSON({ a: [1] }));
    expect(parseJSON("not json")).toBe("not json");
    expect(parseJSON("")).toBeUndefined();
  });
  it("lists changed drafts only", () => {
    expect(dirtyKeys({ "a.trigger": "x", "b.incoming": "y" }, { "a.trigger": "x", "b.incoming": "z", "a.outgoing": "" })).toEqual(["b.incoming"]);
  });
});

describe("identity", () => {
  const me = (org_admin: boolean, teams: { id: number; name: string; role: "admin" | "editor" | "viewer" }[]) => ({
    user: { id: 1, email: "a@example.com", name: "A", org_admin, disabled: false, created_at: "", updated_at: "" },
    teams,
  });
  const ada = me(false, [
    { id: 1, name: "support", role: "viewer" },
    { id: 2, name: "engineering", role: "editor" },
    { id: 3, name: "finance", role: "admin" },
  ]);

  it("the role is the one in the row's team; an org admin is admin everywhere", () => {
    expect(roleIn(ada, 1)).toBe("viewer");
    expect(roleIn(ada, 2)).toBe("editor");
    expect(roleIn(ada, 9)).toBeUndefined();
    expect(roleIn(ada, undefined)).toBe("admin"); // a row without a team: the best role
    expect(roleIn(me(true, []), 9)).toBe("admin");
  });

  it("viewers get the reason instead of the button", () => {
    expect(denied("viewer", "edit")).toBe("viewers cannot edit");
    expect(denied("viewer", "test")).toBe("viewers cannot run tests that read remote data");
    expect(denied("viewer", "activate")).toBe("viewers cannot activate or pause connections");
    expect(denied("editor", "activate")).toBeUndefined();
    expect(denied("editor", "members")).toBe("only team admins can manage members");
    expect(denied("admin", "members")).toBeUndefined();
    expect(denied("editor", "system")).toBe("only team admins can change systems and their credentials");
    expect(denied(undefined, "save")).toBe("people outside this team cannot save changes");
    expect(can("editor", "save")).toBe(true);
  });

  it("the team picker offers the teams where one is editor or admin; an org admin every team", () => {
    expect(pickableTeams(ada).map((t) => t.name)).toEqual(["engineering", "finance"]);
    const all = [
      { id: 1, name: "support", role: "admin" as const },
      { id: 4, name: "ops", role: "admin" as const },
    ];
    expect(pickableTeams(me(true, []), all)).toEqual(all);
    expect(pickableTeams(me(false, [{ id: 1, name: "support", role: "viewer" }]))).toEqual([]);
    expect(pickableTeams(ada, undefined, "admin").map((t) => t.name)).toEqual(["finance"]); // systems
  });

  it("names a row's team", () => {
    expect(teamName(ada.teams, 2)).toBe("engineering");
    expect(teamName(ada.teams, 7)).toBe("team 7");
    expect(teamName(ada.teams, undefined)).toBe("");
  });

  it("finds the setup token in the printed link or in the hash", () => {
    expect(setupToken({ pathname: "/setup", search: "?token=abc", hash: "" })).toBe("abc");
    expect(setupToken({ pathname: "/setup/", search: "", hash: "" })).toBe("");
    expect(setupToken({ pathname: "/", search: "", hash: "#/setup?token=xyz" })).toBe("xyz");
    expect(setupToken({ pathname: "/", search: "?token=abc", hash: "#/connections" })).toBeUndefined();
  });

  it("says how long to wait and whether a token still works", () => {
    expect(waitText(42)).toBe("42 s");
    expect(waitText(120)).toBe("2 min");
    expect(waitText(61)).toBe("1 min 1 s");
    const now = Date.parse("2026-06-01T00:00:00Z");
    expect(tokenState({ expires_at: null, revoked_at: null }, now)).toBe("active");
    expect(tokenState({ expires_at: "2026-05-01T00:00:00Z", revoked_at: null }, now)).toBe("expired");
    expect(tokenState({ expires_at: "2026-07-01T00:00:00Z", revoked_at: "2026-05-02T00:00:00Z" }, now)).toBe("revoked");
  });

  it("routes the account pages", () => {
    expect(parseRoute("#/tokens")).toEqual({ view: "tokens" });
    expect(parseRoute("#/password")).toEqual({ view: "password" });
    expect(parseRoute("#/team")).toEqual({ view: "team" });
    expect(parseRoute("#/team/4")).toEqual({ view: "team", id: 4 });
    expect(parseRoute("#/team/x").view).toBe("not-found");
    for (const h of ["#/tokens", "#/password", "#/team", "#/team/4"]) expect(href(parseRoute(h))).toBe(h);
  });

  it("routes the team template pages", () => {
    expect(parseRoute("#/connections/3/save-as-template")).toEqual({ view: "save-template", id: 3 });
    expect(parseRoute("#/connections/3/upgrade")).toEqual({ view: "upgrade", id: 3 });
    expect(parseRoute("#/templates/5?v=2&compare=1")).toEqual({ view: "template", id: 5, query: { v: "2", compare: "1" } });
    expect(parseRoute("#/templates/import")).toEqual({ view: "template-import" });
    expect(parseRoute("#/templates/x").view).toBe("not-found");
    expect(parseRoute("#/connections/3/versions").view).toBe("connection");
    for (const h of ["#/connections/3/save-as-template", "#/connections/3/upgrade", "#/templates/5", "#/templates/5?v=2", "#/templates/import"])
      expect(href(parseRoute(h))).toBe(h);
  });

  it("gates saving as a template and upgrading to editors", () => {
    expect(denied("viewer", "template")).toBe("viewers cannot save connections as templates");
    expect(denied("viewer", "upgrade")).toBe("viewers cannot upgrade connections to a new template version");
    expect(denied("editor", "template")).toBeUndefined();
    expect(denied(undefined, "upgrade")).toBe("people outside this team cannot upgrade connections to a new template version");
  });

  it("reads an edited conflict value without asking for JSON quotes", () => {
    expect(editedValue("solved", "pending")).toBe("solved");
    expect(editedValue('"solved"', "pending")).toBe("solved");
    expect(editedValue("42", "pending")).toBe("42");
    expect(editedValue("42", 3)).toBe(42);
    expect(editedValue('["a","b"]', ["a"])).toEqual(["a", "b"]);
    expect(editedValue("not json", 3)).toBe("not json");
    expect(valueText("pending")).toBe("pending");
    expect(valueText(["a"])).toBe('["a"]');
  });
});
