import { describe, expect, it } from "vitest";
import { emptyRow, fromRule, needs, parseValues, RULE_KINDS, rowProblem, ruleLine, rulesDirty, toRule, type RuleRow } from "./rules";
import type { Rule } from "./api";

const row = (p: Partial<RuleRow>): RuleRow => ({ ...emptyRow(), ...p });

describe("validation rules", () => {
  it("parses oneOf values: numbers, booleans, quoted text", () => {
    expect(parseValues(`low, high , 3, true, "4", `)).toEqual(["low", "high", 3, true, "4"]);
  });
  it("keeps only what a kind uses", () => {
    expect(toRule(row({ field: " email ", kind: "email", arg: "ignored", max: "3" }))).toEqual({ kind: "email", field: "email" });
    expect(toRule(row({ field: "n", kind: "range", min: "0", max: "10", message: "0 to 10" }))).toEqual({ kind: "range", field: "n", min: 0, max: 10, message: "0 to 10" });
    expect(toRule(row({ kind: "expr", arg: `status != "x"` }))).toEqual({ kind: "expr", expr: `status != "x"` });
  });
  it("round-trips rules through rows", () => {
    const rules: Rule[] = [
      { kind: "oneOf", field: "p", values: ["low", 2, "3", false] },
      { kind: "maxLength", field: "title", max: 80 },
      { kind: "range", field: "n", min: 1 },
      { kind: "expr", field: "due", expr: "due != nil", message: "needs a due date" },
    ];
    expect(rules.map((r) => toRule(fromRule(r)))).toEqual(rules);
    expect(rulesDirty(rules, rules.map(fromRule))).toBe(false);
    const rows = rules.map(fromRule);
    rows[1].max = "81";
    expect(rulesDirty(rules, rows)).toBe(true);
  });
  it("says what a row lacks before the server is asked", () => {
    expect(rowProblem(row({ kind: "email" }))).toBe("needs a field");
    expect(rowProblem(row({ kind: "expr" }))).toBe("needs an expression");
    expect(rowProblem(row({ field: "x", kind: "oneOf", arg: " , " }))).toBe("needs at least one value");
    expect(rowProblem(row({ field: "x", kind: "range" }))).toBe("needs min, max or both");
    expect(rowProblem(row({ field: "x", kind: "range", min: "5", max: "1" }))).toBe("min is over max");
    expect(rowProblem(row({ field: "x", kind: "range", min: "a" }))).toBe("min is not a number");
    expect(rowProblem(row({ field: "x", kind: "maxLength", max: "2.5" }))).toBe("needs a whole max");
    expect(rowProblem(row({ field: "x", kind: "maxLength", max: "10" }))).toBeNull();
  });
  it("describes a result with field, value and message", () => {
    expect(ruleLine({ index: 0, rule: "email", field: "contact", value: "x", message: "must be an e-mail address", passed: false })).toBe(
      `✗ email · contact = "x" — must be an e-mail address`,
    );
    expect(ruleLine({ index: 1, rule: "expr", message: "ok", passed: true })).toBe("✓ expr — ok");
  });
  it("offers unique with its field, an optional where and target field", () => {
    expect(RULE_KINDS.map((k) => k.kind)).toContain("unique");
    expect(needs("unique")).toEqual({ field: true, arg: "where", target: true });
    expect(rowProblem(row({ kind: "unique" }))).toBe("needs a field");
    expect(rowProblem(row({ kind: "unique", field: "ticket_ref" }))).toBeNull();
    expect(toRule(row({ kind: "unique", field: "ticket_ref", max: "3" }))).toEqual({ kind: "unique", field: "ticket_ref" });
    const r: Rule = { kind: "unique", field: "ticket", target_field: "ticket_ref", where: `status != "closed"`, message: "one open issue per ticket" };
    expect(toRule(fromRule(r))).toEqual(r);
    expect(toRule(row({ kind: "email", field: "x", target: "y" }))).toEqual({ kind: "email", field: "x" });
    expect(ruleLine({ index: 1, rule: "unique", field: "ticket", value: "T-5", existing: "ENG-9", message: "one open issue per ticket", passed: false })).toBe(
      `✗ unique · ticket = "T-5" · existing ENG-9 — one open issue per ticket`,
    );
  });
});
