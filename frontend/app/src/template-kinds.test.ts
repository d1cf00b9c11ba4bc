import { describe, expect, it } from "vitest";
import { fittingSystems, initialPicks, noFitNote, sideKinds } from "./templates";

const systems = [
  { id: 1, kind: "sql" },
  { id: 2, kind: "rt" },
  { id: 3, kind: "redmine" },
  { id: 4, kind: "sql" },
];
const rtRedmine = { kinds_a: ["rt"], kinds_b: ["redmine"] };

describe("systems that fit a template's sides", () => {
  it("lists only systems of the side's kinds", () => {
    expect(fittingSystems(systems, sideKinds(rtRedmine, "a")).map((s) => s.id)).toEqual([2]);
    expect(fittingSystems(systems, sideKinds(rtRedmine, "b")).map((s) => s.id)).toEqual([3]);
    expect(fittingSystems(systems, ["sql", "redmine"]).map((s) => s.id)).toEqual([1, 3, 4]);
  });
  it("lists every system when the side names no kind, or for a blank connection", () => {
    expect(fittingSystems(systems, sideKinds({ kinds_a: ["rt"] }, "b"))).toHaveLength(4);
    expect(fittingSystems(systems, sideKinds(null, "a"))).toHaveLength(4);
  });
  it("starts with fitting systems, side b on another system than side a when it can", () => {
    expect(initialPicks(systems, rtRedmine)).toEqual({ a: 2, b: 3 });
    expect(initialPicks(systems, { kinds_a: ["sql"], kinds_b: ["sql"] })).toEqual({ a: 1, b: 4 });
    expect(initialPicks(systems, null)).toEqual({ a: 1, b: 2 });
    expect(initialPicks([{ id: 1, kind: "sql" }], rtRedmine)).toEqual({ a: 0, b: 0 });
  });
  it("says which kind is missing", () => {
    expect(noFitNote(["redmine"])).toBe("No Redmine system yet");
    expect(noFitNote(["rt", "sql"])).toBe("No Request Tracker or SQL system yet");
    expect(noFitNote(["made-up"])).toBe("No made-up system yet");
  });
});
