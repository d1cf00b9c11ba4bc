import { describe, expect, it } from "vitest";
import { actionWords, attemptsWords, auditDetail, cleanMessage, detailWords, list, outcome, partialApply, partialWords, plural, policyWords, replicaTitle, titles } from "./words";

describe("words", () => {
  it("counts with the right plural", () => {
    expect(plural(1, "conflict")).toBe("1 conflict");
    expect(plural(0, "conflict")).toBe("0 conflicts");
    expect(plural(2, "entity", "entities")).toBe("2 entities");
    expect(list(["a"])).toBe("a");
    expect(list(["a", "b", "c"])).toBe("a, b and c");
  });

  it("says what a test run would do in one sentence", () => {
    const base = { matched: true, linked: false, would_sync: true };
    expect(outcome({ ...base, patch: { title: "x", priority: 2 } }, "engineering")).toBe("Creates an item on engineering with fields title and priority.");
    expect(outcome({ ...base, linked: true, target_id: "7", patch: {} }, "engineering")).toBe("Nothing to write: engineering #7 already has these values.");
    expect(outcome({ ...base, linked: true, target_id: "7", patch: { status: "solved" }, comments: [{ id: "1", body: "hi", created_at: "" }] }, "support")).toBe(
      "Updates support #7: sets field status and adds 1 comment.",
    );
    expect(outcome({ ...base, matched: false, would_sync: false }, "engineering")).toBe("Nothing is sent: the trigger did not match and the item is not linked to engineering yet.");
    expect(outcome({ ...base, invalid: true, patch: { title: "" } }, "engineering")).toBe("A validation rule fails: nothing is written to engineering.");
    expect(outcome({ ...base, stage: "outgoing", error: { code: "script_error", message: "boom" } }, "b")).toMatch(/^The outgoing stops with an error/);
  });

  it("says the conflict policy in words", () => {
    expect(policyWords('{"default":"manual"}', "support", "engineering")).toBe("you decide (conflicts wait here)");
    expect(policyWords(undefined, "support", "engineering")).toBe("support (side A) wins");
    expect(policyWords({ default: "manual" }, "support", "engineering")).toBe("you decide (conflicts wait here)");
    expect(policyWords(null, "support", "engineering")).toBe("support (side A) wins");
    expect(policyWords('{"default":"newest","fields":{"priority":"b"}}', "support", "engineering")).toBe("the newest change wins; for priority, engineering (side B) wins");
  });

  it("reads audit entries", () => {
    expect(actionWords("event.skip")).toBe("skipped an event");
    expect(actionWords("identity.session.start")).toBe("signed in");
    expect(actionWords("sync.update")).toBe("wrote an update");
    expect(actionWords("widget.frob_all")).toBe("widget frob all");
    expect(detailWords('{"event_id":4,"reason":"waits for the fix"}')).toBe("event id: 4 · reason: waits for the fix");
    expect(detailWords("plain words")).toBe("plain words");
    expect(auditDetail({ action: "connection.conflict_policy", detail: '{"default":"manual","fields":{"priority":"b"}}' }, "support", "engineering")).toBe(
      "now: you decide (conflicts wait here); for priority, engineering (side B) wins",
    );
    expect(auditDetail({ action: "event.skip", detail: "event 4: later" }, "support", "engineering")).toBe("event 4: later");
    // No JSON in the log: a patch as field = value, a long text cut, a resolution in words.
    expect(detailWords('{"action":"update","target_id":"2","patch":{"status":"solved"}}')).toBe('action: update · target id: 2 · patch: status = "solved"');
    expect(detailWords({ patch: { body: "a\n\n" + "x".repeat(100), labels: ["a", "b"] } })).toBe(`patch: body = "a ${"x".repeat(77)}…", labels = "a", "b"`);
    expect(auditDetail({ action: "event.resolve", detail: 'event 4: {"status":{"take":"value","value":"done"},"title":{"take":"target"}}' }, "s", "e")).toBe(
      'event 4: status: "done" (edited), title: kept the current value',
    );
    expect(detailWords('event 9: {"a":1}')).toBe("event 9: a = 1");
  });

  it("drops the GoError prefix and the position the app shows anyway", () => {
    expect(cleanMessage("b.incoming.js:1:11: SyntaxError: Unexpected token")).toBe("SyntaxError: Unexpected token");
    expect(cleanMessage("GoError: T-3 is not ready at fail (native)")).toBe("T-3 is not ready at fail (native)");
    expect(cleanMessage("unexpected EOF (1:20)")).toBe("unexpected EOF (1:20)");
  });

  it("names every synced item, also on the way back", () => {
    const t = titles([
      { twin_id: 1, replica: '{"status":"solved"}' },
      { twin_id: 1, replica: '{"title":"Export fails","priority":2}' },
      { twin_id: 2, replica: '{"status":"new"}' },
    ]);
    expect(t.get(1)).toBe("Export fails");
    expect(t.has(2)).toBe(false);
  });

  it("reads JSON fields sent as text or as values alike", () => {
    // The events and twins API sends replicas, conflicts, logs and policies
    // as JSON text today and as JSON values on newer servers.
    expect(policyWords({ default: "manual" }, "support", "engineering")).toBe(policyWords('{"default":"manual"}', "support", "engineering"));
    expect(detailWords({ event_id: 4, reason: "later" })).toBe(detailWords('{"event_id":4,"reason":"later"}'));
    expect(replicaTitle({ subject: "Printer" })).toBe("Printer");
    expect(replicaTitle('{"subject":"Printer"}')).toBe("Printer");
    expect(replicaTitle(["x"])).toBe("");
    expect(replicaTitle(null)).toBe("");
  });

  it("names a row of the way back by its twin's replicas, also when its first event is gone", () => {
    const t = titles([{ twin_id: 3, replica: { status: "solved" } }], [{ id: 3, sent_ab: '{"title":"Export fails"}', sent_ba: { status: "solved" } }]);
    expect(t.get(3)).toBe("Export fails");
    const back = titles([], [{ id: 4, sent_ba: { subject: "Only back" } }]);
    expect(back.get(4)).toBe("Only back");
  });

  it("counts every attempt across a person's retries", () => {
    expect(attemptsWords({ attempts: 1 })).toBe("1 attempt");
    expect(attemptsWords({ attempts: 3, total_attempts: 3 })).toBe("3 attempts");
    expect(attemptsWords({ attempts: 2, total_attempts: 10 })).toBe("10 attempts (2 since the last retry)");
    expect(attemptsWords({ attempts: 0, total_attempts: 8 })).toBe("8 attempts (0 since the last retry)");
  });
});

describe("partial writes", () => {
  it("reads an event's partial write and says what was saved, refused and left for the retry", () => {
    const p = partialApply({ partial: '{"target_id":"12","applied":["subject","priority"],"refused":["status"]}' });
    expect(p).toEqual({ target_id: "12", applied: ["subject", "priority"], refused: ["status"] });
    expect(partialWords(p!, "Redmine", "failed")).toBe("Redmine #12 saved subject and priority and refused status. A retry sends only status.");
    expect(partialWords({ ...p!, applied: [] }, "Redmine", "failed")).toBe("Redmine #12 saved nothing and refused status. A retry sends only status.");
    expect(partialWords(p!, "Redmine", "done")).toContain("a retry wrote the rest");
  });
  it("has none for an event without one or with something else", () => {
    expect(partialApply({})).toBeUndefined();
    expect(partialApply({ partial: "not json" })).toBeUndefined();
    expect(partialApply({ partial: '{"applied":["a"]}' })).toBeUndefined();
  });
});
