import { describe, expect, it } from "vitest";
import { differing, impactDrafts, impactSummary, testRunDraft, testRunWords, type ImpactResult, type ImpactTotals } from "./impact";

describe("impactDrafts", () => {
  it("groups drafts by the direction they run in", () => {
    const drafts = { "a.incoming": "in a", "a.outgoing": "out a", "b.trigger": "trig b" };
    expect(impactDrafts(drafts, ["a.incoming", "a.outgoing", "b.trigger"])).toEqual([
      { direction: "a_to_b", outgoing: "out a" },
      { direction: "b_to_a", trigger: "trig b", incoming: "in a" },
    ]);
  });
  it("leaves out drafts that are not dirty, and directions without any", () => {
    expect(impactDrafts({ "b.incoming": "x", "a.trigger": "saved" }, ["b.incoming"])).toEqual([{ direction: "a_to_b", incoming: "x" }]);
    expect(impactDrafts({}, [])).toEqual([]);
  });
});

const zero: ImpactTotals = {
  entities: 0, unchanged: 0, replica_differs: 0, patch_differs: 0, would_fail: 0, now_succeeds: 0,
  starts_syncing: 0, stops_syncing: 0, validation_fails: 0, not_replayable: 0, inexact: 0,
};

describe("impactSummary", () => {
  it("names only the outcomes that occur, unchanged last", () => {
    expect(impactSummary({ ...zero, entities: 6, patch_differs: 3, would_fail: 1, unchanged: 2 })).toBe("6 entities: 3 patch differs, 1 would fail, 2 unchanged");
    expect(impactSummary({ ...zero, entities: 1, unchanged: 1 })).toBe("1 entity: 1 unchanged");
  });
  it("lists the differing entities only", () => {
    const res: ImpactResult = {
      direction: "b_to_a", changes: 2, partial: false, totals: { ...zero, entities: 2, unchanged: 1, patch_differs: 1 },
      entities: [
        { entity_id: "1", event_id: 1, twin_id: 1, outcome: "unchanged" },
        { entity_id: "2", event_id: 2, twin_id: 2, outcome: "patch_differs", patch: { status: { old: "solved", new: "done" } } },
      ],
    };
    expect(differing(res).map((e) => e.entity_id)).toEqual(["2"]);
  });
});

describe("testRunDraft", () => {
  const drafts = { "a.outgoing": "out a", "b.incoming": "in b", "b.trigger": "trig b", "a.incoming": "saved" };
  const dirty = ["a.outgoing", "b.incoming", "b.trigger"];
  it("takes the pieces of the direction that starts at the side", () => {
    expect(testRunDraft(drafts, dirty, "a")).toEqual({ outgoing: "out a", incoming: "in b" });
    expect(testRunDraft(drafts, dirty, "b")).toEqual({ trigger: "trig b" });
    expect(testRunDraft(drafts, [], "a")).toBeUndefined();
  });
  it("says what runs", () => {
    expect(testRunWords(undefined, "a")).toBe("the saved versions of the trigger and scripts");
    expect(testRunWords({ outgoing: "x", incoming: "y" }, "a")).toBe("your unsaved changes to A's outgoing script, B's incoming script (the rest: saved versions)");
    expect(testRunWords({ trigger: "x" }, "b", (s) => (s === "a" ? "Jira" : "Linear"))).toBe("your unsaved changes to Linear's trigger (the rest: saved versions)");
  });
});
