import { useEffect, useMemo, useState } from "preact/hooks";
import { ruleLine } from "../rules";
import { api, ApiError, KINDS, type Kind, type ScriptVersion, type Side, type SyncEvent, type TestRunResult } from "../api";
import { activity, ago, denied, diffLines, dirtyKeys, diffStats, editedValue, logLines, parseJSON, valueText } from "../logic";
import { Empty, ErrorBox, Json, Loaded, StatusPill, toast, useAction, useAsync } from "../ui";
import { actionWords, attemptsWords, auditDetail, cleanMessage, outcome, partialApply, partialWords, plural, policyWords, replicaTitle, titles } from "../words";
import { keyOf, savedSources, type Ctx } from "./connection";
import { testRunDraft, testRunWords } from "../impact";

// ---------------- test run ----------------

export function TestTab({ ctx }: { ctx: Ctx }) {
  const [side, setSide] = useState<Side>((ctx.query.side as Side) || "a");
  const [mode, setMode] = useState<"id" | "paste">("id");
  const [entityId, setEntityId] = useState(ctx.query.entity ?? "");
  const [pasted, setPasted] = useState('{\n  "id": "new-1",\n  "key": "T-900",\n  "fields": {"subject": "Example", "labels": ["todev"]}\n}');
  const [result, setResult] = useState<TestRunResult>();
  const [pasteErr, setPasteErr] = useState<string>();
  const act = useAction();
  // Entity ids to pick from (reads the system: not for viewers).
  const candidates = useAsync(() => (denied(ctx.role, "test") ? Promise.resolve(undefined) : api.preview(ctx.conn.id, side, "true")), [side, ctx.role]);

  // The unsaved drafts of the direction from this side (code editors or
  // mapping views: the drafts Impact sends) run instead of the saved ones.
  const dirtyAll = dirtyKeys(savedSources(ctx.conn), ctx.drafts);
  const draft = testRunDraft(ctx.drafts, dirtyAll, side);
  const run = async (e?: Event) => {
    e?.preventDefault();
    let body: Parameters<typeof api.testRun>[1] = { side, entity_id: entityId.trim(), ...(draft && { draft }) };
    if (mode === "paste") {
      try {
        body = { side, entity: JSON.parse(pasted), ...(draft && { draft }) };
      } catch (err) {
        setPasteErr("Not valid JSON: " + (err as Error).message);
        return;
      }
    }
    setPasteErr(undefined);
    setResult(undefined);
    const r = await act.run(() => api.testRun(ctx.conn.id, body));
    if (r) setResult(r);
  };
  useEffect(() => {
    if (ctx.query.entity) void run();
  }, []);

  const other: Side = side === "a" ? "b" : "a";
  return (
    <div class="test-run">
      <form class="toolbar" onSubmit={run}>
        <label>
          Side{" "}
          <select value={side} onChange={(e) => setSide((e.currentTarget as HTMLSelectElement).value as Side)} name="side">
            <option value="a">A · {ctx.name("a")}</option>
            <option value="b">B · {ctx.name("b")}</option>
          </select>
        </label>
        <div class="seg">
          <button type="button" class={mode === "id" ? "on" : ""} onClick={() => setMode("id")}>
            Pick by id
          </button>
          <button type="button" class={mode === "paste" ? "on" : ""} onClick={() => setMode("paste")}>
            Paste entity
          </button>
        </div>
        {mode === "id" && (
          <>
            <input name="entity" list="entity-ids" placeholder="entity id" value={entityId} onInput={(e) => setEntityId((e.currentTarget as HTMLInputElement).value)} />
            <datalist id="entity-ids">
              {candidates.data?.sample.map((en) => (
                <option key={en.id} value={en.id}>
                  {en.key}
                </option>
              ))}
            </datalist>
          </>
        )}
        <button class="btn primary" type="submit" disabled={act.busy || (mode === "id" && !entityId.trim()) || !!denied(ctx.role, "test")} title={denied(ctx.role, "test")} data-testid="run-test">
          {act.busy ? "Running…" : "Run test"}
        </button>
        <span class="muted small">Writes nothing.</span>
      </form>
      <div class={draft ? "notice small" : "muted small"} data-testid="test-run-what">
        Testing {testRunWords(draft, side, ctx.name)}.
        {!draft && dirtyAll.length > 0 && ` Your unsaved changes belong to the direction from ${ctx.name(other)}: test side ${other.toUpperCase()} to run them.`}
      </div>
      {mode === "paste" && (
        <label class="field">
          <span>Entity JSON (id, key, fields, comments)</span>
          <textarea class="mono" rows={8} value={pasted} onInput={(e) => setPasted((e.currentTarget as HTMLTextAreaElement).value)} />
        </label>
      )}
      {pasteErr && <div class="inline-error">{pasteErr}</div>}
      {act.error && act.error instanceof ApiError && act.error.code === "script_invalid" ? (
        <div class="inline-error" role="alert" data-testid="draft-invalid">
          Your unsaved {act.error.body.script?.replace(/^.*\//, "") || "draft"} does not compile
          {act.error.position ? ` at line ${act.error.position.line}, column ${act.error.position.column}` : ""}: {act.error.message.replace(/^.*?:\d+:\d+:\s+/, "")}. Nothing ran.
        </div>
      ) : (
        act.error && <ErrorBox error={act.error} />
      )}
      {result && <TestResult r={result} ctx={ctx} />}
      {!result && !act.busy && !act.error && <Empty title="No test run yet">Pick an entity of side {side.toUpperCase()} and run: you see the trigger result, the replica, the patch the other side would get, and the script log.</Empty>}
    </div>
  );
}

function TestResult({ r, ctx }: { r: TestRunResult; ctx: Ctx }) {
  const other: Side = r.side === "a" ? "b" : "a";
  return (
    <div class="result" data-testid="test-result">
      <div class="checks">
        <span class={`pill ${r.matched ? "active" : "paused"}`}>trigger {r.matched ? "matched" : "did not match"}</span>
        <span class={`pill ${r.linked ? "active" : "paused"}`}>{r.linked ? "already linked" : "not linked yet"}</span>
        <span class={`pill ${r.would_sync ? "active" : "paused"}`}>{r.would_sync ? "would sync" : "would not sync"}</span>
        <span class={`pill ${r.drafts?.length ? "unsaved" : ""}`} data-testid="ran-drafts">
          {r.drafts?.length ? `ran unsaved: ${r.drafts.join(", ")}` : "ran the saved versions"}
        </span>
        {r.skipped && <span class="pill failing">skipped: {r.skip_reason}</span>}
        {r.rules && r.rules.length > 0 && (
          <span class={`pill ${r.invalid ? "failing" : "active"}`} data-testid="rules-pill">
            {r.invalid ? `rules failed: nothing would be written` : r.rules.length === 1 ? "1 rule passes" : `${r.rules.length} rules pass`}
          </span>
        )}
        {r.error && (
          <span class="pill failing">
            {r.stage} failed{r.error.line ? ` at ${r.error.line}:${r.error.column}` : ""}
          </span>
        )}
      </div>
      <p class="outcome" data-testid="outcome">
        {outcome(r, ctx.name(other))}
      </p>
      {r.error && <div class="inline-error">{cleanMessage(r.error.message)}</div>}
      {r.rules && r.rules.length > 0 && (
        <ul class="rule-results" data-testid="rule-results">
          {r.rules.map((x) => (
            <li key={x.index} class={x.passed ? "ok" : "bad"}>
              {ruleLine(x)}
            </li>
          ))}
        </ul>
      )}
      <div class="cols3">
        <div>
          <h3>Replica</h3>
          <Json value={r.replica} label="replica" />
        </div>
        <div>
          <h3>
            Patch for {ctx.name(other)} {r.replica && r.would_sync && (r.target_id ? <span class="muted small">update #{r.target_id}</span> : <span class="muted small">would create</span>)}
          </h3>
          <Json value={r.patch} label="patch" />
          {r.comments && r.comments.length > 0 && (
            <>
              <h4>Comments to add</h4>
              <ul class="comments">
                {r.comments.map((c, i) => (
                  <li key={i}>{c.body}</li>
                ))}
              </ul>
            </>
          )}
        </div>
        <div>
          <h3>Log</h3>
          {r.log.length ? <pre class="log">{r.log.join("\n")}</pre> : <div class="muted">The scripts logged nothing.</div>}
        </div>
      </div>
    </div>
  );
}

// ---------------- versions ----------------

export function VersionsTab({ ctx }: { ctx: Ctx }) {
  const [pick, setPick] = useState<`${Side}.${Kind}`>("a.outgoing");
  const [side, kind] = pick.split(".") as [Side, Kind];
  const vs = useAsync(() => api.versions(ctx.conn.id, side, kind), [pick, ctx.conn.updated_at]);
  const [from, setFrom] = useState<number>();
  const [to, setTo] = useState<number>();
  const act = useAction();
  useEffect(() => {
    setFrom(undefined);
    setTo(undefined);
  }, [pick]);

  const restore = async (v: ScriptVersion) => {
    const k = keyOf(side, kind);
    if (ctx.drafts[k] !== undefined && !confirm("This script has unsaved changes in the editor; restoring replaces them. Continue?")) return;
    const saved = await act.run(() => api.saveScript(ctx.conn.id, side, kind, v.source), `Restored v${v.version} as a new version`);
    if (saved) {
      ctx.resetDrafts([k]);
      await ctx.reload();
      await vs.reload();
    }
  };

  return (
    <div class="versions">
      <div class="toolbar">
        <label>
          Script{" "}
          <select name="script" value={pick} onChange={(e) => setPick((e.currentTarget as HTMLSelectElement).value as `${Side}.${Kind}`)}>
            {(["a", "b"] as Side[]).flatMap((s) =>
              KINDS.map((k) => (
                <option key={s + k} value={`${s}.${k}`}>
                  {s.toUpperCase()} · {ctx.name(s)} · {k}
                </option>
              )),
            )}
          </select>
        </label>
      </div>
      {act.error && <ErrorBox error={act.error} />}
      <Loaded a={vs} what="versions">
        {(list) => {
          const sorted = [...list].sort((x, y) => y.version - x.version);
          if (sorted.length === 0) return <Empty title="No versions" />;
          const latest = sorted[0];
          const right = sorted.find((v) => v.version === to) ?? latest;
          const left = sorted.find((v) => v.version === from) ?? sorted.find((v) => v.version < right.version) ?? right;
          return (
            <div class="split">
              <table class="grid compact" data-testid="versions">
                <thead>
                  <tr>
                    <th>Version</th>
                    <th>Author</th>
                    <th>Saved</th>
                    <th title="compare from">From</th>
                    <th title="compare to">To</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {sorted.map((v) => (
                    <tr key={v.id} data-version={v.version}>
                      <td>
                        v{v.version} {v === latest && <span class="pill active">current</span>}
                      </td>
                      <td>{v.author}</td>
                      <td title={v.created_at}>{ago(v.created_at)}</td>
                      <td>
                        <input type="radio" name="from" aria-label={`compare from v${v.version}`} checked={v === left} onChange={() => setFrom(v.version)} />
                      </td>
                      <td>
                        <input type="radio" name="to" aria-label={`compare to v${v.version}`} checked={v === right} onChange={() => setTo(v.version)} />
                      </td>
                      <td>
                        {v !== latest && (
                          <button class="btn small" disabled={act.busy || !!denied(ctx.role, "save")} title={denied(ctx.role, "save")} onClick={() => restore(v)} data-testid={`restore-${v.version}`}>
                            Restore
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <Diff a={left} b={right} />
            </div>
          );
        }}
      </Loaded>
    </div>
  );
}

function Diff({ a, b }: { a: ScriptVersion; b: ScriptVersion }) {
  const d = useMemo(() => diffLines(a.source, b.source), [a.source, b.source]);
  const st = diffStats(d);
  return (
    <div class="diff" data-testid="diff">
      <div class="diff-head">
        v{a.version} → v{b.version} <span class="add">+{st.added}</span> <span class="del">−{st.removed}</span>
        {a === b && <span class="muted small"> (the first version; nothing to compare)</span>}
      </div>
      <pre>
        {d.map((l, i) => (
          <div key={i} class={`dl ${l.op}`}>
            <span class="ln">{l.a ?? ""}</span>
            <span class="ln">{l.b ?? ""}</span>
            <span class="mark">{l.op === "add" ? "+" : l.op === "del" ? "−" : " "}</span>
            {l.text}
          </div>
        ))}
      </pre>
    </div>
  );
}

// ---------------- queue & errors ----------------

/** The queue tab's list from the address (?status=queued, as the alerts view links), failed by default. */
function queueStatus(s: string | undefined): "failed" | "queued" | "skipped" {
  return s === "queued" || s === "skipped" ? s : "failed";
}

export function QueueTab({ ctx }: { ctx: Ctx }) {
  const [status, setStatus] = useState<"failed" | "queued" | "skipped">(queueStatus(ctx.query.status));
  const evs = useAsync(() => api.events({ connection_id: ctx.conn.id, status, limit: 200 }), [status, ctx.conn.id], 3000);
  const act = useAction();
  const retryAll = async () => {
    const r = await act.run(() => api.retryFailed(ctx.conn.id));
    if (r) {
      toast(`${plural(r.retried ?? 0, "event")} queued again`);
      await evs.reload();
      await ctx.reload();
    }
  };
  return (
    <div>
      <div class="toolbar">
        <div class="seg">
          {(["failed", "queued", "skipped"] as const).map((s) => (
            <button key={s} class={status === s ? "on" : ""} onClick={() => setStatus(s)}>
              {s}
            </button>
          ))}
        </div>
        <span class="spacer" />
        {status === "failed" && (
          <button class="btn" onClick={retryAll} disabled={act.busy || !evs.data?.length || !!denied(ctx.role, "retry")} title={denied(ctx.role, "retry")} data-testid="retry-all">
            Retry all failed
          </button>
        )}
      </div>
      {act.error && <ErrorBox error={act.error} />}
      <Loaded a={evs} what="events">
        {(list) =>
          list.length === 0 ? (
            <Empty title={status === "failed" ? "No failed events" : status === "queued" ? "The queue is empty" : "Nothing skipped"}>
              {status === "failed" ? "Every change so far went through." : ""}
            </Empty>
          ) : (
            <div class="events">
              {list.map((ev) => (
                <EventCard key={ev.id} ev={ev} ctx={ctx} onChange={async () => (await evs.reload(), await ctx.reload())} />
              ))}
            </div>
          )
        }
      </Loaded>
    </div>
  );
}

function EventCard({ ev, ctx, onChange }: { ev: SyncEvent; ctx: Ctx; onChange: () => Promise<void> }) {
  const [open, setOpen] = useState(ev.status === "failed");
  const [reason, setReason] = useState<string | null>(null);
  const act = useAction();
  const from: Side = ev.direction === "a_to_b" ? "a" : "b";
  const to: Side = from === "a" ? "b" : "a";
  const partial = partialApply(ev);
  const retry = async () => (await act.run(() => api.retry(ev.id), `Event ${ev.id} queued again`)) && onChange();
  const skip = async (e: Event) => {
    e.preventDefault();
    if (!reason?.trim()) return;
    if (await act.run(() => api.skip(ev.id, reason.trim()), `Event ${ev.id} skipped`)) await onChange();
  };
  return (
    <div class={`event st-${ev.status}`} data-event={ev.id}>
      <div class="event-head" onClick={() => setOpen(!open)}>
        <StatusPill s={ev.status} />
        <span>
          <span class="muted">event {ev.id}</span> · {ctx.name(from)} <strong>#{ev.source_id}</strong> → {ctx.name(to)}
          {ev.action === "delete" && " (delete)"}
        </span>
        <span class="muted small">
          <span data-testid="attempts">{attemptsWords(ev)}</span> · {ago(ev.updated_at)}
          {ev.status === "queued" && ev.attempts > 0 && ` · next ${ago(ev.next_attempt_at).replace(" ago", "")}`}
        </span>
        <span class="spacer" />
        {ev.status === "failed" && (
          <>
            <button class="btn small" onClick={(e) => (e.stopPropagation(), retry())} disabled={act.busy || !!denied(ctx.role, "retry")} title={denied(ctx.role, "retry")}>
              Retry
            </button>
            <button class="btn small" onClick={(e) => (e.stopPropagation(), setReason(reason === null ? "" : null))} disabled={act.busy || !!denied(ctx.role, "retry")} title={denied(ctx.role, "retry")}>
              Skip…
            </button>
          </>
        )}
      </div>
      {ev.last_error && <div class="inline-error">{cleanMessage(ev.last_error)}</div>}
      {partial && (
        <div class="partial small" data-testid="partial">
          {partialWords(partial, ctx.name(to), ev.status)}
        </div>
      )}
      {reason !== null && (
        <form class="row" onSubmit={skip}>
          <input autoFocus placeholder="Why skip this change? (kept in the audit log)" value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
          <button class="btn small primary" type="submit" disabled={!reason.trim() || act.busy}>
            Skip event
          </button>
        </form>
      )}
      {act.error && <ErrorBox error={act.error} />}
      {open && (
        <div class="cols2">
          <div>
            <h4>Replica</h4>
            <Json value={parseJSON(ev.replica)} label="replica" />
          </div>
          <div>
            <h4>Log</h4>
            {logLines(ev.log).length ? <pre class="log">{logLines(ev.log).join("\n")}</pre> : <div class="muted">No log.</div>}
          </div>
        </div>
      )}
    </div>
  );
}

// ---------------- conflicts ----------------

interface FieldConflict {
  field: string;
  base: unknown;
  target: unknown;
  incoming: unknown;
}

export function ConflictsTab({ ctx }: { ctx: Ctx }) {
  const evs = useAsync(() => api.events({ connection_id: ctx.conn.id, status: "conflict", limit: 200 }), [ctx.conn.id], 4000);
  return (
    <div>
      <p class="muted">
        Changes that met a change of the same field on the other side, waiting for you (policy: <strong data-testid="policy-words">{policyWords(ctx.conn.conflict_policy, ctx.name("a"), ctx.name("b"))}</strong>, see Settings).
      </p>
      <Loaded a={evs} what="conflicts">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No conflicts">With a manual policy, conflicting edits wait here.</Empty>
          ) : (
            list.map((ev) => <ConflictCard key={ev.id} ev={ev} ctx={ctx} onDone={async () => (await evs.reload(), await ctx.reload())} />)
          )
        }
      </Loaded>
    </div>
  );
}

function ConflictCard({ ev, ctx, onDone }: { ev: SyncEvent; ctx: Ctx; onDone: () => Promise<void> }) {
  const conflicts = (parseJSON(ev.conflicts) as FieldConflict[] | undefined) ?? [];
  const [choice, setChoice] = useState<Record<string, { take: string; value: string }>>(() =>
    Object.fromEntries(conflicts.map((c) => [c.field, { take: "source", value: valueText(c.incoming) }])),
  );
  const act = useAction();
  const from: Side = ev.direction === "a_to_b" ? "a" : "b";
  const to: Side = from === "a" ? "b" : "a";
  const submit = async () => {
    const body: Record<string, { take: string; value?: unknown }> = {};
    for (const [f, c] of Object.entries(choice)) {
      const like = conflicts.find((x) => x.field === f);
      body[f] = c.take !== "value" ? { take: c.take } : { take: "value", value: editedValue(c.value, like?.incoming ?? like?.target) };
    }
    if (await act.run(() => api.resolve(ev.id, body), `Conflict ${ev.id} resolved; the change is queued`)) await onDone();
  };
  const show = (v: unknown) => (v === undefined ? <span class="muted">—</span> : <code>{JSON.stringify(v)}</code>);
  return (
    <div class="event st-conflict" data-event={ev.id}>
      <div class="event-head">
        <StatusPill s="conflict" />
        <span>
          <span class="muted">event {ev.id}</span> · {ctx.name(from)} <strong>#{ev.source_id}</strong> → {ctx.name(to)}
        </span>
        <span class="muted small">{ago(ev.updated_at)}</span>
      </div>
      <table class="grid compact">
        <thead>
          <tr>
            <th>Field of {ctx.name(to)}</th>
            <th>Base (last sync)</th>
            <th>{ctx.name(to)} now</th>
            <th>Incoming from {ctx.name(from)}</th>
            <th>Keep</th>
          </tr>
        </thead>
        <tbody>
          {conflicts.map((c) => {
            const ch = choice[c.field];
            const set = (take: string, value = ch.value) => setChoice({ ...choice, [c.field]: { take, value } });
            return (
              <tr key={c.field}>
                <td>
                  <strong>{c.field}</strong>
                </td>
                <td>{show(c.base)}</td>
                <td>{show(c.target)}</td>
                <td>{show(c.incoming)}</td>
                <td>
                  <div class="seg">
                    <button class={ch.take === "source" ? "on" : ""} onClick={() => set("source")}>
                      incoming
                    </button>
                    <button class={ch.take === "target" ? "on" : ""} onClick={() => set("target")}>
                      current
                    </button>
                    <button class={ch.take === "value" ? "on" : ""} onClick={() => set("value")}>
                      edit
                    </button>
                  </div>
                  {ch.take === "value" && <input class="mono" value={ch.value} onInput={(e) => set("value", (e.currentTarget as HTMLInputElement).value)} />}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {act.error && <ErrorBox error={act.error} />}
      <div class="actions">
        <button class="btn primary" onClick={submit} disabled={act.busy || !!denied(ctx.role, "resolve")} title={denied(ctx.role, "resolve")}>
          Resolve
        </button>
      </div>
    </div>
  );
}

// ---------------- activity ----------------

export function ActivityTab({ ctx }: { ctx: Ctx }) {
  const a = useAsync(async () => {
    const [events, twins, audit] = await Promise.all([api.events({ connection_id: ctx.conn.id, limit: 100 }), api.twins(ctx.conn.id), api.audit(ctx.conn.id, 50)]);
    return { items: activity(events, twins), names: titles(events, twins), audit };
  }, [ctx.conn.id], 2000);
  const link = (side: Side, id: string | null) =>
    id ? (
      <a href={`#/connections/${ctx.conn.id}/test?side=${side}&entity=${encodeURIComponent(id)}`} title={`Test run with ${ctx.name(side)} ${id}`}>
        {ctx.name(side)} #{id}
      </a>
    ) : (
      <span class="muted">{ctx.name(side)} (not created yet)</span>
    );
  return (
    <Loaded a={a} what="activity">
      {({ items, names, audit }) => (
        <div class="cols2 activity">
          <div>
            <h3>Synced items</h3>
            {items.length === 0 ? (
              <Empty title="Nothing synced yet">{ctx.conn.active ? "Changes that match a trigger show up here within a poll interval." : "The connection is paused: activate it to start syncing."}</Empty>
            ) : (
              <ul class="timeline" data-testid="activity">
                {items.map(({ event: ev, from, sourceId, targetId }) => {
                  const to: Side = from === "a" ? "b" : "a";
                  return (
                    <li key={ev.id} class={`st-${ev.status}`} data-event={ev.id}>
                      <StatusPill s={ev.status} />
                      <span class="what">
                        {link(from, sourceId)} <span class="arrow">→</span> {link(to, targetId)}
                        {ev.action === "delete" && " (delete)"}
                        {ev.unlinked_pair && <span class="muted small" title={ev.unlinked_pair}> · pair unlinked</span>}
                        {partialApply(ev) && <span class="muted small"> · {ev.status === "done" ? "applied in two steps" : "applied in part"}</span>}
                        {(names.get(ev.twin_id) || replicaTitle(ev.replica)) && <span class="muted small item-title"> · {names.get(ev.twin_id) || replicaTitle(ev.replica)}</span>}
                      </span>
                      <span class="muted small" title={ev.updated_at}>
                        {ago(ev.updated_at)}
                      </span>
                      {ev.last_error && <div class="inline-error small">{cleanMessage(ev.last_error)}</div>}
                    </li>
                  );
                })}
              </ul>
            )}
          </div>
          <div>
            <h3>Audit log</h3>
            {audit.length === 0 ? (
              <Empty title="No entries" />
            ) : (
              <ul class="audit">
                {audit.map((e) => (
                  <li key={e.id} data-action={e.action}>
                    <strong>{e.actor}</strong> {actionWords(e.action)}{" "}
                    <span class="muted small" title={e.at}>
                      {ago(e.at)}
                    </span>
                    {e.detail && <div class="small muted">{auditDetail(e, ctx.name("a"), ctx.name("b"))}</div>}
                  </li>
                ))}
              </ul>
            )}
          </div>
        </div>
      )}
    </Loaded>
  );
}

// ---------------- settings ----------------

type PolicyRule = "a" | "b" | "newest" | "manual";

export function SettingsTab({ ctx }: { ctx: Ctx }) {
  const current = (parseJSON(ctx.conn.conflict_policy) as { default?: PolicyRule; fields?: Record<string, PolicyRule> } | undefined) ?? {};
  const [def, setDef] = useState<PolicyRule>(current.default || "a");
  // Per-field overrides as rows (field, rule), not JSON: people pick words.
  const [rows, setRows] = useState<{ field: string; rule: PolicyRule }[]>(() => Object.entries(current.fields ?? {}).map(([field, rule]) => ({ field, rule })));
  const act = useAction();
  const named = rows.filter((r) => r.field.trim());
  const fields = Object.fromEntries(named.map((r) => [r.field.trim(), r.rule]));
  const dup = named.length !== Object.keys(fields).length;
  const save = async (e: Event) => {
    e.preventDefault();
    if (await act.run(() => api.setPolicy(ctx.conn.id, { default: def, fields }), "Conflict policy saved")) await ctx.reload();
  };
  const setRow = (i: number, r: Partial<{ field: string; rule: PolicyRule }>) => setRows(rows.map((x, j) => (j === i ? { ...x, ...r } : x)));
  const options = (
    <>
      <option value="a">Side A wins ({ctx.name("a")})</option>
      <option value="b">Side B wins ({ctx.name("b")})</option>
      <option value="newest">The newest change wins</option>
      <option value="manual">Ask me (conflicts wait in the Conflicts tab)</option>
    </>
  );
  return (
    <form class="form narrow" onSubmit={save}>
      <h2>Conflict policy</h2>
      <p class="muted">When both sides changed the same field since the last sync.</p>
      <p data-testid="policy-now">
        Now: <strong>{policyWords(ctx.conn.conflict_policy, ctx.name("a"), ctx.name("b"))}</strong>.
      </p>
      <label class="field">
        <span>Default</span>
        <select name="default" value={def} onChange={(e) => setDef((e.currentTarget as HTMLSelectElement).value as PolicyRule)}>
          {options}
        </select>
      </label>
      <div class="field">
        <span>Per-field overrides</span>
        {rows.length === 0 && <div class="muted small">None: every field follows the default.</div>}
        {rows.map((r, i) => (
          <div class="row" key={i} data-testid="policy-override">
            <input placeholder="field, e.g. priority" aria-label="field" value={r.field} onInput={(e) => setRow(i, { field: (e.currentTarget as HTMLInputElement).value })} />
            <select aria-label={`rule for ${r.field || "this field"}`} value={r.rule} onChange={(e) => setRow(i, { rule: (e.currentTarget as HTMLSelectElement).value as PolicyRule })}>
              {options}
            </select>
            <button type="button" class="btn small" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
              Remove
            </button>
          </div>
        ))}
        <div>
          <button type="button" class="btn small" onClick={() => setRows([...rows, { field: "", rule: def === "a" ? "b" : "a" }])}>
            Add a field
          </button>
        </div>
      </div>
      {dup && <div class="inline-error">A field is listed twice: keep one row per field.</div>}
      {act.error && <ErrorBox error={act.error} />}
      <div class="actions">
        <button class="btn primary" disabled={act.busy || dup || !!denied(ctx.role, "save")} title={denied(ctx.role, "save")}>
          Save policy
        </button>
      </div>
    </form>
  );
}
