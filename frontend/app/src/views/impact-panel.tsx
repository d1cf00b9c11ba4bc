import type { Side } from "../api";
import { differing, impactSummary, shown, type FieldChange, type ImpactEntity, type ImpactResult } from "../impact";
import type { Ctx } from "./connection";

/**
 * What the unsaved drafts would have done to the recent synced changes:
 * per direction the totals, then each entity that differs with its diff
 * (old = saved version, new = draft) and a link to a test run of it.
 */
export function ImpactPanel({ ctx, results, onClose }: { ctx: Ctx; results: ImpactResult[]; onClose: () => void }) {
  return (
    <section class="impact" data-testid="impact">
      <div class="toolbar">
        <strong>Impact of the unsaved changes</strong>
        <span class="muted small">replayed over recent synced changes from what Duplex stored; nothing was read or written</span>
        <span class="spacer" />
        <button class="btn" onClick={onClose}>
          Close
        </button>
      </div>
      {results.map((r) => {
        const src: Side = r.direction === "a_to_b" ? "a" : "b";
        const dst: Side = src === "a" ? "b" : "a";
        const diff = differing(r);
        return (
          <div key={r.direction} data-direction={r.direction}>
            <h3>
              {ctx.name(src)} → {ctx.name(dst)}
            </h3>
            <p data-testid="impact-totals">
              {r.changes} changes read · {impactSummary(r.totals)}
              {r.totals.inexact > 0 && <span class="muted"> · {r.totals.inexact} approximate</span>}
            </p>
            {r.partial && <p class="warn small">Partial: the time budget ran out before every entity was replayed.</p>}
            {r.draft_error && <p class="error small">The draft does not compile: {r.draft_error}</p>}
            {diff.length > 0 && (
              <ul class="impact-list">
                {diff.map((e) => (
                  <Entity key={e.event_id} ctx={ctx} side={src} e={e} />
                ))}
              </ul>
            )}
          </div>
        );
      })}
    </section>
  );
}

function Entity({ ctx, side, e }: { ctx: Ctx; side: Side; e: ImpactEntity }) {
  return (
    <li data-entity={e.entity_id}>
      <span class={`badge ${e.outcome}`}>{e.outcome.replace(/_/g, " ")}</span> {ctx.name(side)} {e.entity_id}
      {e.target_id ? ` → ${e.target_id}` : ""}{" "}
      <a class="small" href={`#/connections/${ctx.conn.id}/test?side=${side}&entity=${encodeURIComponent(e.entity_id)}`}>
        test run
      </a>
      {e.error && (
        <div class="error small mono">
          {e.stage}
          {e.line ? ` line ${e.line}` : ""}: {e.error}
        </div>
      )}
      {e.reason && <div class="muted small">{e.reason}</div>}
      {e.rules?.map((r) => (
        <div key={r.index} class="error small">
          rule {r.index + 1} ({r.rule} {r.field}): {r.message}
        </div>
      ))}
      <Changes what="patch" m={e.patch} />
      <Changes what="replica" m={e.replica} />
      {e.inexact?.length ? <div class="muted small">approximate: {e.inexact.join(", ")}</div> : null}
    </li>
  );
}

function Changes({ what, m }: { what: string; m?: Record<string, FieldChange> }) {
  if (!m) return null;
  return (
    <table class="diff small mono">
      <tbody>
        {Object.keys(m)
          .sort()
          .map((k) => (
            <tr key={k}>
              <td>
                {what}.{k}
              </td>
              <td class="old">{shown(m[k].old)}</td>
              <td>→</td>
              <td class="new">{shown(m[k].new)}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}
