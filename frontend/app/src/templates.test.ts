import { describe, expect, it } from "vitest";
import type { Me, TemplateBody } from "./api";
import {
  bodyFiles,
  checkParam,
  diffBodies,
  extractPreview,
  forkTargets,
  literalFromSelection,
  parseUnified,
  rowStats,
  suggestName,
  templateDenied,
  visibilityChoices,
  type ParamDraft,
} from "./templates";

const src = {
  a: { trigger: '"todev" in labels', outgoing: 'replica.project = "ENG";\nreplica.map = {"new": "open", "x": "ENG"};', incoming: "entity.n = 42;" },
  b: { trigger: "false", outgoing: 'replica.state = entity.state; // "ENG"', incoming: "" },
};
const p = (name: string, literal: string, type: ParamDraft["type"] = ""): ParamDraft => ({ name, literal, type, description: "" });

describe("parameters pulled out of the scripts", () => {
  it("reads a literal's type, default and where it is used", () => {
    const c = checkParam(src, p("label", '"todev"'));
    expect(c).toMatchObject({ type: "string", default: "todev", places: ["a.trigger"], count: 1 });
    expect(c.error).toBeUndefined();
    expect(checkParam(src, p("project", '"ENG"'))).toMatchObject({ places: ["a.outgoing", "b.outgoing"], count: 3 });
    expect(checkParam(src, p("n", "42"))).toMatchObject({ type: "number", default: 42 });
    expect(checkParam(src, p("m", '{"new": "open", "x": "ENG"}'))).toMatchObject({ type: "object", default: { new: "open", x: "ENG" } });
  });

  it("says why a row would be refused, before the server does", () => {
    expect(checkParam(src, p("label", "todev")).error).toMatch(/not a JSON value/);
    expect(checkParam(src, p("1abc", '"todev"')).error).toMatch(/^name:/);
    expect(checkParam(src, p("", '"todev"')).error).toBe("name it");
    expect(checkParam(src, p("x", "")).error).toMatch(/select or type/);
    expect(checkParam(src, p("x", "null")).error).toMatch(/no type/);
    expect(checkParam(src, p("x", '"nowhere"')).error).toMatch(/in none of the scripts/);
    expect(checkParam(src, p("x", '"todev"', "number")).error).toBe('type number, but "todev" is a string');
    expect(checkParam(src, p("x", '"todev"', "string")).error).toBeUndefined();
  });

  it("replaces longest literals first, as the server does, and flags what that swallows", () => {
    const r = extractPreview(src, [p("project", '"ENG"'), p("map", '{"new": "open", "x": "ENG"}'), p("label", '"todev"')]);
    expect(r.ok).toBe(true);
    expect(r.sources.a!.outgoing).toBe("replica.project = {{project}};\nreplica.map = {{map}};");
    expect(r.sources.a!.trigger).toBe("{{label}} in labels");
    expect(r.sources.b!.outgoing).toBe("replica.state = entity.state; // {{project}}");
    // The original is untouched.
    expect(src.a.trigger).toBe('"todev" in labels');

    const only = { a: { trigger: '{"x": "ENG"}', outgoing: "", incoming: "" } };
    const r2 = extractPreview(only, [p("k", '"ENG"'), p("obj", '{"x": "ENG"}')]);
    expect(r2.ok).toBe(false);
    expect(r2.checks[0].error).toMatch(/only inside another/);
    expect(r2.checks[1].error).toBeUndefined();
  });

  it("refuses a name given twice or already in the scripts", () => {
    const r = extractPreview(src, [p("x", '"todev"'), p("x", "42")]);
    expect(r.checks[1].error).toBe("x is named twice");
    const r2 = extractPreview({ a: { trigger: "{{x}}", outgoing: "42", incoming: "" } }, [p("x", "42")]);
    expect(r2.checks[0].error).toMatch(/already contain \{\{x\}\}/);
  });

  it("takes a selection inside quotes with its quotes", () => {
    const s = '"todev" in labels';
    expect(literalFromSelection(s, 1, 6)).toEqual({ literal: '"todev"' });
    expect(literalFromSelection(s, 0, 7)).toEqual({ literal: '"todev"' });
    expect(literalFromSelection("x = 42 ;", 3, 7)).toEqual({ literal: "42" });
    expect(literalFromSelection("x = foo;", 4, 7).error).toMatch(/not a JSON literal/);
    expect(literalFromSelection("abc", 1, 1).error).toMatch(/select a literal/);
  });

  it("proposes names", () => {
    expect(suggestName('"todev"', [])).toBe("todev");
    expect(suggestName('"Engineering Team"', [])).toBe("engineering_team");
    expect(suggestName("42", [], 3)).toBe("param3");
    expect(suggestName('"todev"', ["todev"])).toBe("todev2");
  });
});

const body = (over: Partial<TemplateBody> = {}): TemplateBody => ({
  title: "Esc",
  description: "",
  side_a: "desk",
  side_b: "tracker",
  params: [{ name: "label", type: "string", description: "", default: "todev" }],
  sources: { a: { trigger: "{{label}} in labels", outgoing: "replica.t = entity.t;\n", incoming: "" }, b: { trigger: "false", outgoing: "", incoming: "" } },
  ...over,
});

describe("diffs", () => {
  it("lays a version out as its archive folder", () => {
    const f = bodyFiles(body({ fixtures: { "a-x.json": { side: "a" } } }));
    expect(Object.keys(f).sort()).toEqual(
      ["a.incoming.js", "a.outgoing.js", "a.trigger.expr", "b.incoming.js", "b.outgoing.js", "b.trigger.expr", "template.json", "testdata/a-x.json"].sort(),
    );
    expect(JSON.parse(f["template.json"]).params[0].name).toBe("label");
  });

  it("compares two versions file by file, leaving out equal files", () => {
    const v2 = body({ sources: { ...body().sources, a: { ...body().sources.a, outgoing: "replica.t = entity.t;\nreplica.r = entity.r;\n" } }, fixtures: { "n.json": {} } });
    const d = diffBodies(body(), v2);
    expect(d.map((f) => [f.path, f.status])).toEqual([
      ["a.outgoing.js", "changed"],
      ["testdata/n.json", "added"],
    ]);
    expect(rowStats(d[0].lines)).toEqual({ added: 1, removed: 0 });
    expect(diffBodies(body(), body())).toEqual([]);
  });

  it("reads the server's unified diff with line numbers", () => {
    const u = "--- a/a.outgoing.js\n+++ b/a.outgoing.js\n@@ -1,2 +1,3 @@\n replica.t = entity.t;\n-old\n+new\n+more\n";
    const rows = parseUnified(u);
    expect(rows).toEqual([
      { op: "hunk", text: "@@ -1,2 +1,3 @@" },
      { op: "same", text: "replica.t = entity.t;", a: 1, b: 1 },
      { op: "del", text: "old", a: 2 },
      { op: "add", text: "new", b: 2 },
      { op: "add", text: "more", b: 3 },
    ]);
    expect(rowStats(rows)).toEqual({ added: 2, removed: 1 });
    expect(parseUnified("")).toEqual([]);
  });
});

const me = (teams: Me["teams"], org = false): Pick<Me, "user" | "teams"> => ({ user: { id: 1, email: "x@y", name: "x", org_admin: org, disabled: false, created_at: "", updated_at: "" }, teams });
const all = [
  { id: 1, name: "support", role: "admin" as const },
  { id: 2, name: "eng", role: "editor" as const },
  { id: 3, name: "ops", role: "viewer" as const },
];

describe("who may do what on a template", () => {
  const owned = { team_id: 1, visibility: "shared" as const, shared_with: [2] };

  it("lets the owner team's editors publish and its admins share", () => {
    expect(templateDenied(me([{ id: 1, name: "support", role: "admin" }]), owned, "publish")).toBeUndefined();
    expect(templateDenied(me([{ id: 1, name: "support", role: "admin" }]), owned, "share")).toBeUndefined();
    const editor = me([{ id: 1, name: "support", role: "editor" }]);
    expect(templateDenied(editor, owned, "publish")).toBeUndefined();
    expect(templateDenied(editor, owned, "share")).toBe("only admins of team support can change who sees it");
    const viewer = me([{ id: 1, name: "support", role: "viewer" }]);
    expect(templateDenied(viewer, owned, "publish")).toBe("viewers cannot publish versions");
    expect(templateDenied(viewer, owned, "fork")).toMatch(/editor role/);
  });

  it("never lets another team change it: fork instead", () => {
    const other = me([{ id: 2, name: "eng", role: "admin" }]);
    const seen = { team_id: 1, visibility: "shared" as const }; // shared_with is not shown outside the owner team
    expect(templateDenied(other, seen, "publish", all)).toBe("only team support changes this template: fork it to change it in your team");
    expect(templateDenied(other, seen, "share", all)).toMatch(/only admins of team support/);
    expect(templateDenied(other, seen, "fork", all)).toBeUndefined();
    expect(forkTargets(other, all, seen).map((t) => t.id)).toEqual([2]);
  });

  it("offers forks only into teams that see the template", () => {
    const both = me([
      { id: 1, name: "support", role: "editor" },
      { id: 2, name: "eng", role: "editor" },
      { id: 3, name: "ops", role: "editor" },
    ]);
    expect(forkTargets(both, undefined, owned).map((t) => t.id)).toEqual([1, 2]);
    expect(forkTargets(both, undefined, { team_id: 1, visibility: "private" }).map((t) => t.id)).toEqual([1]);
    expect(forkTargets(both, undefined, { team_id: 1, visibility: "org" }).map((t) => t.id)).toEqual([1, 2, 3]);
    expect(templateDenied(me([{ id: 3, name: "ops", role: "viewer" }]), { team_id: 1, visibility: "org" }, "import")).toMatch(/editor role/);
    // An org admin is admin of every team.
    expect(templateDenied(me([], true), owned, "share", all)).toBeUndefined();
  });

  it("offers org visibility to team admins only", () => {
    expect(visibilityChoices("admin").every((c) => !c.disabled)).toBe(true);
    expect(visibilityChoices("editor")[1].disabled).toBe("only team admins can publish a template org-wide");
  });
});
