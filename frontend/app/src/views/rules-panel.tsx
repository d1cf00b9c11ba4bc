import { useEffect, useState } from "preact/hooks";
import { api, ApiError, type RulesOut, type Side } from "../api";
import { denied } from "../logic";
import { emptyRow, fromRule, needs, RULE_KINDS, rowProblem, rulesDirty, toRule, type RuleRow } from "../rules";
import { ErrorBox, Loading, toast, useAsync } from "../ui";
import type { Ctx } from "./connection";

type Check = { state: "idle" | "checking" | "ok" } | { state: "error"; rule?: number; line?: number; column?: number; message: string };

/**
 * A side's validation rules: a list of rows (field, ready-made kind or
 * expression, message), checked on each replica before anything is applied
 * to that side. Drafts are compiled by the server as you type; Save stores
 * them as the rules' next version.
 */
export function RulesPanel({ ctx, side }: { ctx: Ctx; side: Side }) {
  const saved = useAsync(() => api.rules(ctx.conn.id, side), [ctx.conn.id, side, ctx.conn.updated_at]);
  const [rows, setRows] = useState<RuleRow[]>();
  const [check, setCheck] = useState<Check>({ state: "idle" });
  const [saving, setSaving] = useState(false);
  const noEdit = denied(ctx.role, "edit");
  const noSave = denied(ctx.role, "save");

  // The saved rules become the rows when there is no draft.
  const base: RulesOut | undefined = saved.data;
  useEffect(() => {
    if (base && (!rows || !rulesDirty(base.rules, rows))) setRows(base.rules.map(fromRule));
  }, [base?.version]);

  const problems = (rows ?? []).map(rowProblem);
  const dirty = !!base && !!rows && rulesDirty(base.rules, rows);

  // Server compile of the draft, debounced, once the rows look complete.
  useEffect(() => {
    if (!rows || noEdit || problems.some((p) => p)) return setCheck({ state: "idle" });
    const ctrl = new AbortController();
    const t = setTimeout(async () => {
      setCheck({ state: "checking" });
      try {
        await api.validateRules(ctx.conn.id, side, rows.map(toRule), ctrl.signal);
        setCheck({ state: "ok" });
      } catch (e) {
        if ((e as Error).name === "AbortError") return;
        const b = e instanceof ApiError ? e.body : undefined;
        setCheck({ state: "error", rule: b?.rule, line: b?.line, column: b?.column, message: (e as Error).message });
      }
    }, 300);
    return () => {
      clearTimeout(t);
      ctrl.abort();
    };
  }, [JSON.stringify(rows)]);

  if (saved.error) return <ErrorBox error={saved.error} retry={saved.reload} />;
  if (!base || !rows) return <Loading what="the rules" />;

  const set = (i: number, p: Partial<RuleRow>) => setRows(rows.map((r, j) => (j === i ? { ...r, ...p } : r)));
  const save = async () => {
    setSaving(true);
    try {
      const out = await api.saveRules(ctx.conn.id, side, rows.map(toRule));
      setRows(out.rules.map(fromRule));
      await ctx.reload();
      saved.reload();
      toast(`Saved the rules of side ${side.toUpperCase()} (version ${out.version})`);
    } catch (e) {
      const b = e instanceof ApiError ? e.body : undefined;
      setCheck({ state: "error", rule: b?.rule, line: b?.line, column: b?.column, message: (e as Error).message });
      toast("Rules not saved: fix the marked rule", "error");
    } finally {
      setSaving(false);
    }
  };

  return (
    <div class={`pane-editor rules ${check.state === "error" ? "has-error" : ""}`} data-rules={side}>
      <div class="pane-head">
        <strong>Validation rules</strong>
        <span class="muted small">side {side.toUpperCase()} · checked on the replica before anything is written here</span>
        <span class="spacer" />
        {dirty && <span class="dot" title="unsaved" />}
        {base.version > 0 && <span class="muted small">v{base.version}</span>}
      </div>
      <table class="rules-table">
        <tbody>
          {rows.map((r, i) => {
            const n = needs(r.kind);
            const bad = problems[i] || (check.state === "error" && check.rule === i + 1);
            return (
              <tr key={i} class={bad ? "bad-row" : ""} data-rule={i + 1}>
                <td>
                  <input placeholder={n.field ? "field" : "field (optional)"} value={r.field} disabled={!!noEdit} onInput={(e) => set(i, { field: e.currentTarget.value })} aria-label="field" />
                </td>
                <td>
                  <select value={r.kind} disabled={!!noEdit} onChange={(e) => set(i, { kind: e.currentTarget.value as RuleRow["kind"] })} aria-label="rule">
                    {RULE_KINDS.map((k) => (
                      <option key={k.kind} value={k.kind}>
                        {k.label}
                      </option>
                    ))}
                  </select>
                </td>
                <td class="rule-args">
                  {n.arg && (
                    <input
                      class={n.arg === "expr" || n.arg === "where" ? "mono" : ""}
                      placeholder={
                        n.arg === "expr"
                          ? `expr, e.g. status != "closed" || resolution != ""`
                          : n.arg === "where"
                            ? `where (optional), over the found entity, e.g. status != "closed"`
                            : "values: low, high, 3"
                      }
                      value={r.arg}
                      disabled={!!noEdit}
                      onInput={(e) => set(i, { arg: e.currentTarget.value })}
                      aria-label={n.arg}
                    />
                  )}
                  {n.target && (
                    <input placeholder="target field (optional)" value={r.target} disabled={!!noEdit} onInput={(e) => set(i, { target: e.currentTarget.value })} aria-label="target field" />
                  )}
                  {n.min && <input class="num" placeholder="min" value={r.min} disabled={!!noEdit} onInput={(e) => set(i, { min: e.currentTarget.value })} aria-label="min" />}
                  {n.max && <input class="num" placeholder="max" value={r.max} disabled={!!noEdit} onInput={(e) => set(i, { max: e.currentTarget.value })} aria-label="max" />}
                </td>
                <td>
                  <input placeholder="message (optional)" value={r.message} disabled={!!noEdit} onInput={(e) => set(i, { message: e.currentTarget.value })} aria-label="message" />
                </td>
                <td>
                  <button class="btn small" disabled={!!noEdit} title="Remove this rule" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
                    ✕
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div class="pane-status" data-testid="rules-status">
        {problems.some((p) => p) ? (
          <span class="bad">✗ rule {problems.findIndex((p) => p) + 1}: {problems.find((p) => p)}</span>
        ) : check.state === "error" ? (
          <span class="bad">
            ✗ {check.rule ? `rule ${check.rule}` : ""}
            {check.line ? ` at ${check.line}:${check.column}` : ""}: {check.message}
          </span>
        ) : check.state === "ok" ? (
          <span class="ok">✓ {rows.length ? "compiles" : "no rules"}</span>
        ) : check.state === "checking" ? (
          <span class="muted">checking…</span>
        ) : (
          <span class="muted">{rows.length ? `${rows.length} rules` : "no rules: every replica is applied"}</span>
        )}
      </div>
      <div class="toolbar">
        <button class="btn" disabled={!!noEdit} onClick={() => setRows([...rows, emptyRow()])} data-testid={`add-rule-${side}`}>
          Add rule
        </button>
        <span class="spacer" />
        <button class="btn" disabled={!dirty || saving} onClick={() => setRows(base.rules.map(fromRule))}>
          Discard
        </button>
        <button
          class="btn primary"
          disabled={!dirty || saving || !!noSave || problems.some((p) => p) || check.state === "error"}
          title={noSave}
          onClick={() => void save()}
          data-testid={`save-rules-${side}`}
        >
          {saving ? "Saving…" : "Save rules"}
        </button>
      </div>
    </div>
  );
}
