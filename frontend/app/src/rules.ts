// Validation rules: the list editor's rows and their conversion to the API's
// rules, checked in the browser before the server compiles them.
import type { Rule, RuleKind, RuleResult } from "./api";

export const RULE_KINDS: { kind: RuleKind; label: string }[] = [
  { kind: "required", label: "required" },
  { kind: "email", label: "e-mail" },
  { kind: "e164", label: "phone (E.164)" },
  { kind: "url", label: "URL" },
  { kind: "date", label: "date" },
  { kind: "oneOf", label: "one of" },
  { kind: "range", label: "number range" },
  { kind: "maxLength", label: "max length" },
  { kind: "unique", label: "unique in target" },
  { kind: "expr", label: "expression" },
];

/** One row of the editor: every input as typed. */
export interface RuleRow {
  field: string;
  kind: RuleKind;
  /** expr: the expression; oneOf: the values, comma separated; unique: the optional where. */
  arg: string;
  /** unique: the target's field, when it differs from field ("" = the same). */
  target: string;
  min: string;
  max: string;
  message: string;
}

export const emptyRow = (): RuleRow => ({ field: "", kind: "required", arg: "", target: "", min: "", max: "", message: "" });

/** What a kind needs besides the field. */
export function needs(kind: RuleKind): { field: boolean; arg?: "expr" | "values" | "where"; target?: boolean; min?: boolean; max?: boolean } {
  switch (kind) {
    case "expr":
      return { field: false, arg: "expr" };
    case "oneOf":
      return { field: true, arg: "values" };
    case "range":
      return { field: true, min: true, max: true };
    case "maxLength":
      return { field: true, max: true };
    case "unique":
      return { field: true, arg: "where", target: true };
    default:
      return { field: true };
  }
}

/** "low, high, 3, true" → ["low", "high", 3, true]; quotes keep text as text ("3"). */
export function parseValues(text: string): (string | number | boolean)[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => {
      if (/^".*"$/.test(s)) return s.slice(1, -1);
      if (s === "true" || s === "false") return s === "true";
      if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
      return s;
    });
}

export function formatValues(values: Rule["values"]): string {
  return (values ?? []).map((v) => (typeof v === "string" && (/^-?\d+(\.\d+)?$/.test(v) || v === "true" || v === "false") ? `"${v}"` : String(v))).join(", ");
}

export function fromRule(r: Rule): RuleRow {
  const kind = (r.kind || (r.expr ? "expr" : "required")) as RuleKind;
  return {
    field: r.field ?? "",
    kind,
    arg: kind === "expr" ? (r.expr ?? "") : kind === "oneOf" ? formatValues(r.values) : kind === "unique" ? (r.where ?? "") : "",
    target: kind === "unique" ? (r.target_field ?? "") : "",
    min: r.min === undefined || r.min === null ? "" : String(r.min),
    max: r.max === undefined || r.max === null ? "" : String(r.max),
    message: r.message ?? "",
  };
}

/** The rule a row stands for, with only the parts its kind uses. */
export function toRule(row: RuleRow): Rule {
  const n = needs(row.kind);
  const r: Rule = { kind: row.kind };
  if (row.field.trim()) r.field = row.field.trim();
  if (n.arg === "expr") r.expr = row.arg;
  if (n.arg === "values") r.values = parseValues(row.arg);
  if (n.arg === "where" && row.arg.trim()) r.where = row.arg.trim();
  if (n.target && row.target.trim()) r.target_field = row.target.trim();
  if (n.min && row.min.trim() !== "") r.min = Number(row.min);
  if (n.max && row.max.trim() !== "") r.max = Number(row.max);
  if (row.message.trim()) r.message = row.message.trim();
  return r;
}

/** What is wrong with a row before asking the server; null: nothing. */
export function rowProblem(row: RuleRow): string | null {
  const n = needs(row.kind);
  if (n.field && !row.field.trim()) return "needs a field";
  if (n.arg === "expr" && !row.arg.trim()) return "needs an expression";
  if (n.arg === "values" && parseValues(row.arg).length === 0) return "needs at least one value";
  for (const [name, v] of [["min", row.min], ["max", row.max]] as const) {
    if (v.trim() !== "" && !Number.isFinite(Number(v))) return `${name} is not a number`;
  }
  if (row.kind === "range" && row.min.trim() === "" && row.max.trim() === "") return "needs min, max or both";
  if (row.kind === "maxLength" && !(Number.isInteger(Number(row.max)) && row.max.trim() !== "" && Number(row.max) >= 0)) return "needs a whole max";
  if (row.kind === "range" && row.min.trim() !== "" && row.max.trim() !== "" && Number(row.min) > Number(row.max)) return "min is over max";
  return null;
}

/** True when the rows differ from the saved rules. */
export function rulesDirty(saved: Rule[], rows: RuleRow[]): boolean {
  return JSON.stringify(saved.map((r) => toRule(fromRule(r)))) !== JSON.stringify(rows.map(toRule));
}

/** One line for a rule result: "email · contact = "x" — must be an e-mail address". */
export function ruleLine(r: RuleResult): string {
  const value = r.field ? ` · ${r.field} = ${JSON.stringify(r.value ?? null)}` : "";
  const existing = r.existing ? ` · existing ${r.existing}` : "";
  return `${r.passed ? "✓" : "✗"} ${r.rule}${value}${existing} — ${r.message}${r.error ? ` (${r.error})` : ""}`;
}
