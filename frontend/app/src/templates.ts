// Pure logic of the team-template views (templates.test.ts): the parameter
// model of "Save as template", diffs between versions, and who may do what.
import { KINDS, type Kind, type Me, type Role, type Side, type Sources, type TeamRole, type TeamTemplate, type TemplateBody } from "./api";
import { atLeast, diffLines, pickableTeams, roleIn, teamName, type DiffLine } from "./logic";

// ---------- names ----------

/** A template's name (and archive folder): as scripts.ValidName on the server. */
export const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** A parameter's name: it is spelled {{name}} in the scripts. */
export const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const PARAM_TYPES = ["string", "number", "boolean", "object", "array"] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

export function typeOfJSON(v: unknown): ParamType | "" {
  if (typeof v === "string") return "string";
  if (typeof v === "number") return "number";
  if (typeof v === "boolean") return "boolean";
  if (Array.isArray(v)) return "array";
  if (v !== null && typeof v === "object") return "object";
  return "";
}

// ---------- parameters pulled out of the scripts ----------

/** One row of the "Save as template" parameter table, as the user fills it in. */
export interface ParamDraft {
  name: string;
  /** The exact JSON text as the scripts spell it: `"ENG"`, `42`, `{"new": "open"}`. */
  literal: string;
  /** "" = the literal's own type. */
  type: ParamType | "";
  description: string;
}

/** What the form shows for a row: the default and type it will get, where it is used, or why it is refused. */
export interface ParamCheck {
  type?: ParamType;
  default?: unknown;
  /** Scripts that contain the literal ("a.trigger"). */
  places: string[];
  /** Occurrences in all scripts. */
  count: number;
  error?: string;
}

const SIDES: Side[] = ["a", "b"];

function forEachSource(src: Partial<Sources>, fn: (key: string, text: string) => void) {
  for (const side of SIDES) for (const kind of KINDS) {
    const text = src[side]?.[kind as Kind];
    if (text !== undefined) fn(`${side}.${kind}`, text);
  }
}

function occurrences(text: string, lit: string): number {
  if (!lit) return 0;
  let n = 0;
  for (let i = text.indexOf(lit); i >= 0; i = text.indexOf(lit, i + lit.length)) n++;
  return n;
}

/** checkParam reads one row on its own: JSON, type, where the literal is. */
export function checkParam(src: Partial<Sources>, d: ParamDraft): ParamCheck {
  const out: ParamCheck = { places: [], count: 0 };
  const lit = d.literal.trim();
  if (!d.name) out.error = "name it";
  else if (!PARAM_NAME.test(d.name)) out.error = "name: letters, digits and _ only, not starting with a digit";
  if (!lit) return { ...out, error: out.error ?? "select or type the literal it replaces" };
  let value: unknown;
  try {
    value = JSON.parse(lit);
  } catch {
    return { ...out, error: out.error ?? `${lit} is not a JSON value (strings need double quotes: "todev")` };
  }
  const type = typeOfJSON(value);
  if (!type) return { ...out, error: out.error ?? "null has no type: pick another literal" };
  out.type = type;
  out.default = value;
  forEachSource(src, (key, text) => {
    const n = occurrences(text, lit);
    if (n) {
      out.places.push(key);
      out.count += n;
    }
  });
  if (!out.error && d.type && d.type !== type) out.error = `type ${d.type}, but ${lit} is ${type === "array" || type === "object" ? "an" : "a"} ${type}`;
  if (!out.error && out.count === 0) out.error = `${lit} is in none of the scripts`;
  return out;
}

/**
 * extractPreview does what the server's Extract will do with the rows:
 * every occurrence of each literal becomes {{name}}, longest literal first.
 * It returns the template's scripts and each row's check (with the errors
 * the server would answer, so the form can say them before saving).
 */
export function extractPreview(src: Partial<Sources>, drafts: ParamDraft[]): { sources: Partial<Sources>; checks: ParamCheck[]; ok: boolean } {
  const checks = drafts.map((d) => checkParam(src, d));
  const seen = new Map<string, number>();
  drafts.forEach((d, i) => {
    if (!d.name) return;
    if (seen.has(d.name) && !checks[i].error) checks[i].error = `${d.name} is named twice`;
    seen.set(d.name, i);
    let already = false;
    forEachSource(src, (_, text) => (already ||= text.includes(`{{${d.name}}}`)));
    if (already && !checks[i].error) checks[i].error = `the scripts already contain {{${d.name}}}`;
  });
  const out: Partial<Sources> = {};
  for (const side of SIDES) if (src[side]) out[side] = { ...src[side] } as Record<Kind, string>;
  const order = drafts.map((d, i) => ({ d, i, lit: d.literal.trim() })).filter((x) => !checks[x.i].error);
  order.sort((x, y) => y.lit.length - x.lit.length);
  for (const { d, i, lit } of order) {
    let found = false;
    for (const side of SIDES) {
      const kinds = out[side];
      if (!kinds) continue;
      for (const kind of KINDS) {
        const text = kinds[kind];
        if (text !== undefined && text.includes(lit)) {
          found = true;
          kinds[kind] = text.split(lit).join(`{{${d.name}}}`);
        }
      }
    }
    // A shorter literal inside a longer one that was replaced first is gone.
    if (!found) checks[i].error = `${lit} is only inside another parameter's literal`;
  }
  return { sources: out, checks, ok: checks.every((c) => !c.error) };
}

/**
 * literalFromSelection turns text selected in a script into the literal to
 * replace: a selection inside double quotes (todev in "todev") takes the
 * quotes with it; anything else must already be one JSON value.
 */
export function literalFromSelection(source: string, start: number, end: number): { literal: string; error?: string } {
  let s = start;
  let e = end;
  while (s < e && /\s/.test(source[s])) s++;
  while (e > s && /\s/.test(source[e - 1])) e--;
  let lit = source.slice(s, e);
  if (!lit) return { literal: "", error: "select a literal in a script first" };
  if (!lit.startsWith('"') && source[s - 1] === '"' && source[e] === '"') lit = `"${lit}"`;
  try {
    JSON.parse(lit);
  } catch {
    return { literal: lit, error: `${lit} is not a JSON literal: select a string in double quotes, a number, true/false, or a whole {…} or […]` };
  }
  return { literal: lit };
}

/** suggestName proposes a parameter name from a literal ("todev" → todev, 42 → param1). */
export function suggestName(literal: string, taken: string[], n = 1): string {
  let base = "";
  try {
    const v = JSON.parse(literal);
    if (typeof v === "string") base = v.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 30);
  } catch {
    /* not JSON: no name from it */
  }
  if (!base || !PARAM_NAME.test(base)) base = "param";
  let name = base === "param" ? `param${n}` : base;
  for (let i = 2; taken.includes(name); i++) name = `${base}${i}`;
  return name;
}

// ---------- diffs ----------

/** Files of a version in the folder layout of an archive (as scripts.Body.Files). */
export function bodyFiles(b: TemplateBody): Record<string, string> {
  const meta: Record<string, unknown> = { title: b.title, description: b.description, side_a: b.side_a, side_b: b.side_b };
  if (b.tags?.length) meta.tags = b.tags;
  meta.params = b.params ?? [];
  if (b.options !== undefined && b.options !== null) meta.options = b.options;
  const out: Record<string, string> = { "template.json": JSON.stringify(meta, null, 2) + "\n" };
  for (const side of SIDES)
    for (const kind of KINDS) out[`${side}.${kind}.${kind === "trigger" ? "expr" : "js"}`] = b.sources?.[side]?.[kind] ?? "";
  for (const [name, fx] of Object.entries(b.fixtures ?? {})) out["testdata/" + name] = JSON.stringify(fx, null, 2) + "\n";
  return out;
}

export interface FileChange {
  path: string;
  status: "added" | "removed" | "changed";
  lines: DiffLine[];
}

/** diffBodies compares two versions file by file; unchanged files are left out. */
export function diffBodies(a: TemplateBody, b: TemplateBody): FileChange[] {
  const fa = bodyFiles(a);
  const fb = bodyFiles(b);
  const paths = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  const out: FileChange[] = [];
  for (const p of paths) {
    if (fa[p] === fb[p]) continue;
    const status = !(p in fa) ? "added" : !(p in fb) ? "removed" : "changed";
    out.push({ path: p, status, lines: diffLines(fa[p] ?? "", fb[p] ?? "") });
  }
  return out;
}

export type UnifiedRow = DiffLine | { op: "hunk"; text: string };

/** parseUnified reads the server's unified diff (template-status) into rows to render; file headers are dropped. */
export function parseUnified(text: string): UnifiedRow[] {
  const rows: UnifiedRow[] = [];
  let a = 0;
  let b = 0;
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  for (const l of lines) {
    if (l.startsWith("--- ") || l.startsWith("+++ ")) continue;
    const h = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(l);
    if (h) {
      a = Number(h[1]);
      b = Number(h[2]);
      rows.push({ op: "hunk", text: l });
    } else if (l.startsWith("+")) rows.push({ op: "add", text: l.slice(1), b: b++ });
    else if (l.startsWith("-")) rows.push({ op: "del", text: l.slice(1), a: a++ });
    else if (l.startsWith("\\")) continue; // "\ No newline at end of file"
    else rows.push({ op: "same", text: l.startsWith(" ") ? l.slice(1) : l, a: a++, b: b++ });
  }
  return rows;
}

export function rowStats(rows: { op: string }[]) {
  return { added: rows.filter((r) => r.op === "add").length, removed: rows.filter((r) => r.op === "del").length };
}

// ---------- who may do what ----------

export type TemplateAction = "publish" | "share" | "fork" | "import";

type Who = Pick<Me, "user" | "teams">;

/** forkTargets: the teams the user may fork into (editor there) that see the template, as far as the app knows. */
export function forkTargets(me: Who, all: TeamRole[] | undefined, t: Pick<TeamTemplate, "team_id" | "visibility" | "shared_with">): TeamRole[] {
  const teams = pickableTeams(me, all, "editor");
  // shared_with is only known to the owner team's members; otherwise the server decides.
  if (t.visibility === "shared" && t.shared_with)
    return teams.filter((x) => x.id === t.team_id || t.shared_with!.includes(x.id));
  if (t.visibility === "private") return teams.filter((x) => x.id === t.team_id);
  return teams;
}

/**
 * templateDenied says why a button on a template page is disabled, or
 * undefined when the user may use it: publishing needs an editor of the
 * owner team, sharing an admin there; others fork instead.
 */
export function templateDenied(
  me: Who,
  t: Pick<TeamTemplate, "team_id" | "visibility" | "shared_with">,
  action: TemplateAction,
  all?: TeamRole[],
): string | undefined {
  const role: Role | undefined = roleIn(me, t.team_id);
  const owner = teamName(all ?? me.teams, t.team_id);
  switch (action) {
    case "publish":
      if (atLeast(role, "editor")) return undefined;
      if (role) return `${role}s cannot publish versions`;
      return `only team ${owner} changes this template: fork it to change it in your team`;
    case "share":
      if (atLeast(role, "admin")) return undefined;
      return `only admins of team ${owner} can change who sees it`;
    case "fork":
      return forkTargets(me, all, t).length ? undefined : "forking needs the editor role in a team that sees this template";
    case "import":
      return pickableTeams(me, all, "editor").length ? undefined : "importing needs the editor role in a team";
  }
}

/** visibilityChoices: what "Save as template" offers a new template (org only for team admins). */
export function visibilityChoices(role: Role | undefined): { value: "private" | "org"; label: string; disabled?: string }[] {
  return [
    { value: "private", label: "private: this team only" },
    { value: "org", label: "org: every team", disabled: atLeast(role, "admin") ? undefined : "only team admins can publish a template org-wide" },
  ];
}

// ---------- systems that fit a template's sides ----------

/** How the app names a connector kind in a sentence. */
const KIND_TITLES: Record<string, string> = {
  azuredevops: "Azure DevOps",
  github: "GitHub",
  http: "HTTP",
  jira: "Jira",
  redmine: "Redmine",
  rt: "Request Tracker",
  servicenow: "ServiceNow",
  sql: "SQL",
  tryton: "Tryton",
  zendesk: "Zendesk",
};
export const kindTitle = (kind: string) => KIND_TITLES[kind] ?? kind;

/** The connector kinds a template's side fits; empty or absent: any. */
export function sideKinds(t: { kinds_a?: string[]; kinds_b?: string[] } | null | undefined, side: Side): string[] {
  return (side === "a" ? t?.kinds_a : t?.kinds_b) ?? [];
}

/** The systems a side may join: those of a kind it fits (all when it names none). */
export function fittingSystems<S extends { kind: string }>(systems: S[], kinds: string[]): S[] {
  return kinds.length === 0 ? systems : systems.filter((s) => kinds.includes(s.kind));
}

/** What the form says when no system fits a side: "No Redmine system yet". */
export function noFitNote(kinds: string[]): string {
  return `No ${kinds.map(kindTitle).join(" or ")} system yet`;
}

/** The systems the form starts with: the first fitting one per side, side b preferring another than side a's. */
export function initialPicks<S extends { id: number; kind: string }>(systems: S[], t: { kinds_a?: string[]; kinds_b?: string[] } | null): { a: number; b: number } {
  const a = fittingSystems(systems, sideKinds(t, "a"));
  const b = fittingSystems(systems, sideKinds(t, "b"));
  const first = a[0]?.id ?? 0;
  return { a: first, b: (b.find((s) => s.id !== first) ?? b[0])?.id ?? 0 };
}
