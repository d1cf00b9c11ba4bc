import { describe, expect, it } from "vitest";
import { entriesToMap, keysOf, mapEntries, parseConstant, renderedDrafts, rowProblem, showConstant, withKind } from "./mapping";

describe("mapping helpers", () => {
  it("names the scripts of a direction", () => {
    expect(keysOf("b_to_a")).toEqual({ trigger: "b.trigger", outgoing: "b.outgoing", incoming: "a.incoming" });
    expect(keysOf("a_to_b").incoming).toBe("b.incoming");
  });
  it("reads constants as JSON scalars or text, and shows them back", () => {
    expect(parseConstant("3")).toBe(3);
    expect(parseConstant("true")).toBe(true);
    expect(parseConstant("null")).toBe(null);
    expect(parseConstant('"3"')).toBe("3");
    expect(parseConstant("new")).toBe("new");
    expect(parseConstant("{\"a\":1}")).toBe("{\"a\":1}");
    for (const v of [3, true, null, "3", "new", "true", ""]) expect(parseConstant(showConstant(v))).toEqual(v);
  });
  it("keeps the target and source when the kind changes", () => {
    expect(withKind({ target: "status", kind: "field", source: "state" }, "map")).toEqual({ target: "status", kind: "map", source: "state", map: {} });
    expect(withKind({ target: "status", kind: "map", source: "state", map: { a: "b" }, default: "x" }, "constant")).toEqual({ target: "status", kind: "constant", value: "" });
  });
  it("sorts value maps as the server writes them", () => {
    expect(mapEntries({ b: "2", a: "1" })).toEqual([["a", "1"], ["b", "2"]]);
    expect(entriesToMap([["a", "1"]])).toEqual({ a: "1" });
  });
  it("flags incomplete rows", () => {
    const rows = [{ target: "t", kind: "field", source: "" }, { target: "u", kind: "constant", value: 1 }, { target: "u", kind: "constant", value: 2 }];
    expect(rowProblem(rows[0], rows)).toBe("pick a source field");
    expect(rowProblem(rows[1], rows)).toBe("u is written twice");
    expect(rowProblem({ target: " ", kind: "field", source: "x" }, rows)).toBe("name the target field");
  });
  it("drafts only the scripts the mapping changes", () => {
    const saved = { "b.trigger": "false", "b.outgoing": "out", "a.incoming": "in" };
    expect(renderedDrafts("b_to_a", { trigger: "false", outgoing: "out", incoming: "in2" }, saved)).toEqual({ set: { "a.incoming": "in2" }, drop: ["b.trigger", "b.outgoing"] });
  });
});
