import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { plural } from "../words";
import { api, KINDS, type Connection, type Kind, type Role, type Side, type System } from "../api";
import { useRole } from "../auth";
import { TeamTag } from "./team-picker";
import { counts, denied, dirtyKeys, health, type Tab } from "../logic";
import { setUnsaved } from "../guard";
import { ErrorBox, HealthPill, Loaded, useAction, useAsync } from "../ui";
import { systemName } from "./connections";
import { ScriptsTab } from "./scripts-tab";
import { ActivityTab, ConflictsTab, QueueTab, SettingsTab, TestTab, VersionsTab } from "./tabs";

export type Key = `${Side}.${Kind}`;
export const keyOf = (side: Side, kind: Kind) => `${side}.${kind}` as Key;

export function savedSources(c: Connection): Record<string, string> {
  const out: Record<string, string> = {};
  for (const side of ["a", "b"] as Side[]) for (const kind of KINDS) out[keyOf(side, kind)] = c.scripts?.[side]?.[kind]?.source ?? "";
  return out;
}

export interface Ctx {
  conn: Connection;
  systems: System[];
  reload: () => Promise<void>;
  name: (side: Side) => string;
  drafts: Record<string, string>;
  setDraft: (k: Key, v: string) => void;
  /** resetDrafts drops drafts (all, or keys); with sync (the default) the editors show the saved text again. */
  resetDrafts: (keys?: Key[], sync?: boolean) => void;
  epoch: number;
  query: Record<string, string>;
  /** The user's role in the connection's team; buttons it may not use are disabled with the reason. */
  role: Role | undefined;
}

const TAB_LABELS: [Tab, string][] = [
  ["scripts", "Scripts"],
  ["test", "Test run"],
  ["versions", "Versions"],
  ["queue", "Queue & errors"],
  ["conflicts", "Conflicts"],
  ["activity", "Activity"],
  ["settings", "Settings"],
];

export function ConnectionView({ id, tab, query }: { id: number; tab: Tab; query: Record<string, string> }) {
  const a = useAsync(async () => {
    const [conn, systems] = await Promise.all([api.connection(id), api.systems()]);
    return { conn, systems };
  }, [id], 4000);
  const [drafts, setDrafts] = useState<Record<string, string>>({});
  const [epoch, setEpoch] = useState(0);
  const saved = useMemo(() => (a.data ? savedSources(a.data.conn) : {}), [a.data]);
  const ref = useRef({ saved, drafts });
  ref.current = { saved, drafts };
  useEffect(() => setUnsaved(() => dirtyKeys(ref.current.saved, ref.current.drafts).length), []);
  const role = useRole(a.data?.conn.team_id);

  return (
    <div class="page wide">
      <Loaded a={a} what="connection">
        {({ conn, systems }) => {
          const ctx: Ctx = {
            conn,
            systems,
            reload: a.reload,
            name: (side) => systemName(systems, side === "a" ? conn.system_a_id : conn.system_b_id),
            drafts,
            setDraft: (k, v) => setDrafts((d) => ({ ...d, [k]: v })),
            epoch,
            resetDrafts: (keys, sync = true) => {
              if (sync) setEpoch((e) => e + 1);
              setDrafts((d) => {
                if (!keys) return {};
                const n = { ...d };
                for (const k of keys) delete n[k];
                return n;
              });
            },
            query,
            role,
          };
          return (
            <>
              <Header ctx={ctx} dirty={dirtyKeys(saved, drafts).length} />
              {conn.template_id ? <TemplateBanner conn={conn} /> : null}
              <nav class="tabs" role="tablist">
                {TAB_LABELS.map(([t, label]) => {
                  const n = counts(conn);
                  const badge = t === "queue" ? n.failed : t === "conflicts" ? n.conflicts : 0;
                  return (
                    <a key={t} role="tab" aria-selected={t === tab} class={t === tab ? "on" : ""} href={`#/connections/${id}/${t}`}>
                      {label}
                      {badge > 0 && <span class="badge">{badge}</span>}
                    </a>
                  );
                })}
              </nav>
              <section class="tab-body">
                {tab === "scripts" && <ScriptsTab ctx={ctx} />}
                {tab === "test" && <TestTab ctx={ctx} />}
                {tab === "versions" && <VersionsTab ctx={ctx} />}
                {tab === "queue" && <QueueTab ctx={ctx} />}
                {tab === "conflicts" && <ConflictsTab ctx={ctx} />}
                {tab === "activity" && <ActivityTab ctx={ctx} />}
                {tab === "settings" && <SettingsTab ctx={ctx} />}
              </section>
            </>
          );
        }}
      </Loaded>
    </div>
  );
}

function Header({ ctx, dirty }: { ctx: Ctx; dirty: number }) {
  const { conn } = ctx;
  const act = useAction();
  const n = counts(conn);
  const toggle = async () => {
    const r = await act.run(() => (conn.active ? api.pause(conn.id) : api.activate(conn.id)), conn.active ? "Paused" : "Activated: syncing now");
    if (r) await ctx.reload();
  };
  return (
    <header class="page-head">
      <div>
        <div class="crumbs">
          <a href="#/connections">Connections</a> /
        </div>
        <h1>
          {conn.name} <HealthPill h={health(conn)} /> <TeamTag id={conn.team_id} />
          {ctx.role === "viewer" && <span class="pill role-viewer">viewer</span>}
          {dirty > 0 && <span class="pill unsaved">{dirty} unsaved</span>}
        </h1>
        <p class="muted">
          A: <strong>{ctx.name("a")}</strong> ⇄ B: <strong>{ctx.name("b")}</strong>
          {conn.template_id ? (
            <>
              {" "}
              · from team template <a href={`#/templates/${conn.template_id}`}>{conn.template || `#${conn.template_id}`}</a> v{conn.template_version}
            </>
          ) : (
            conn.template && <> · from template {conn.template}</>
          )} · {n.synced} synced · {n.queued} queued · {n.failed} failed · {plural(n.conflicts, "conflict")}
        </p>
        {conn.paused_reason && (
          <p class="bad" data-testid="paused-reason">
            {conn.paused_reason}. Fix the script (the test run tries it safely), then Activate: that clears the quarantine and
            re-reads both sides for what changed meanwhile.
          </p>
        )}
      </div>
      <div class="head-actions">
        {act.error && <ErrorBox error={act.error} />}
        {denied(ctx.role, "template") ? (
          <button class="btn" disabled title={denied(ctx.role, "template")} data-testid="save-as-template">
            Save as template
          </button>
        ) : (
          <a class="btn" href={`#/connections/${conn.id}/save-as-template`} data-testid="save-as-template">
            Save as template
          </a>
        )}
        <button class={`btn ${conn.active ? "" : "primary"}`} onClick={toggle} disabled={act.busy || !!denied(ctx.role, "activate")} title={denied(ctx.role, "activate")} data-testid="toggle-active">
          {conn.active ? "Pause" : "Activate"}
        </button>
      </div>
    </header>
  );
}

/** TemplateBanner says when the connection's team template has a newer version; the diff and the upgrade are on their own page. */
function TemplateBanner({ conn }: { conn: Connection }) {
  const st = useAsync(() => api.templateStatus(conn.id), [conn.id, conn.template_version], 30000);
  const s = st.data;
  if (!s?.update_available) return null;
  return (
    <div class="notice banner" data-testid="template-update">
      Template <strong>{s.name}</strong> updated: version {s.latest} is out (this connection is on {s.version}
      {s.diff.length ? `; ${s.diff.length} file${s.diff.length > 1 ? "s" : ""} changed` : ""}).{" "}
      <a href={`#/connections/${conn.id}/upgrade`} data-testid="review-upgrade">
        Review the diff and upgrade
      </a>
    </div>
  );
}
