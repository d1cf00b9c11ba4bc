// Team templates, loaded on demand (a chunk of its own, like the account
// pages): saving a connection as a template, a template's page (versions,
// sources, diffs, sharing, fork, export), importing an archive, and
// upgrading a connection made from a template.
import { useMemo, useRef, useState } from "preact/hooks";
import {
  api,
  ApiError,
  KINDS,
  VISIBILITIES,
  type Connection,
  type Kind,
  type Side,
  type Sources,
  type TeamTemplate,
  type TemplateBody,
  type Template as TemplateItem,
  type TemplateParam,
  type Visibility,
} from "../api";
import { currentMe, useAuth, useRole, useTeamDirectory, useTeams } from "../auth";
import { ago, denied, pickableTeams, pretty, teamName, type DiffLine } from "../logic";
import {
  diffBodies,
  extractPreview,
  forkTargets,
  literalFromSelection,
  PARAM_TYPES,
  parseUnified,
  rowStats,
  suggestName,
  TEMPLATE_NAME,
  templateDenied,
  visibilityChoices,
  type ParamDraft,
  type ParamType,
  type UnifiedRow,
} from "../templates";
import { Empty, ErrorBox, Json, Loaded, toast, useAction, useAsync } from "../ui";
import { savedSources } from "./connection";
import { TeamTag } from "./team-picker";

const value = (e: Event) => (e.currentTarget as HTMLInputElement).value;
const SCRIPT_KEYS = (["a", "b"] as Side[]).flatMap((s) => KINDS.map((k) => `${s}.${k}` as const));

function sourcesOf(c: Connection): Sources {
  const flat = savedSources(c);
  const out = { a: {}, b: {} } as Sources;
  for (const key of SCRIPT_KEYS) {
    const [side, kind] = key.split(".") as [Side, Kind];
    out[side][kind] = flat[key] ?? "";
  }
  return out;
}

// ---------- diff rendering ----------

function DiffRows({ rows }: { rows: (DiffLine | UnifiedRow)[] }) {
  return (
    <pre>
      {rows.map((l, i) =>
        l.op === "hunk" ? (
          <div key={i} class="dl hunk">
            {l.text}
          </div>
        ) : (
          <div key={i} class={`dl ${l.op}`}>
            <span class="ln">{l.a ?? ""}</span>
            <span class="ln">{l.b ?? ""}</span>
            <span class="mark">{l.op === "add" ? "+" : l.op === "del" ? "−" : " "}</span>
            {l.text}
          </div>
        ),
      )}
    </pre>
  );
}

/** FileDiffs shows changed files of a template folder, each with its rows. */
export function FileDiffs({ files }: { files: { path: string; status: string; rows: (DiffLine | UnifiedRow)[] }[] }) {
  if (files.length === 0) return <Empty title="No differences">The two versions hold the same files.</Empty>;
  return (
    <div data-testid="template-diff">
      {files.map((f) => {
        const st = rowStats(f.rows);
        return (
          <div class="diff" key={f.path} data-file={f.path}>
            <div class="diff-head">
              <code>{f.path}</code> <span class="muted small">{f.status}</span> <span class="add">+{st.added}</span> <span class="del">−{st.removed}</span>
            </div>
            <DiffRows rows={f.rows} />
          </div>
        );
      })}
    </div>
  );
}

function ParamsTable({ params }: { params: TemplateParam[] | null }) {
  if (!params?.length) return <p class="muted">No parameters.</p>;
  return (
    <table class="grid compact" data-testid="params">
      <thead>
        <tr>
          <th>Parameter</th>
          <th>Type</th>
          <th>Default</th>
          <th>Description</th>
        </tr>
      </thead>
      <tbody>
        {params.map((p) => (
          <tr key={p.name}>
            <td>
              <code>{`{{${p.name}}}`}</code>
            </td>
            <td>{p.type}</td>
            <td>
              <code>{JSON.stringify(p.default)}</code>
            </td>
            <td>{p.description}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

// ---------- save a connection as a template ----------

export function SaveTemplateView({ id }: { id: number }) {
  const a = useAsync(async () => {
    const [conn, templates] = await Promise.all([api.connection(id), api.templates()]);
    return { conn, templates: templates.filter((t) => t.id && t.team_id === conn.team_id) };
  }, [id]);
  return (
    <div class="page wide">
      <Loaded a={a} what="connection">
        {({ conn, templates }) => <SaveTemplateForm conn={conn} existing={templates} />}
      </Loaded>
    </div>
  );
}

type Existing = Pick<TemplateItem, "id" | "name" | "title" | "description" | "params" | "latest_version" | "visibility">;

function SaveTemplateForm({ conn, existing }: { conn: Connection; existing: Existing[] }) {
  const role = useRole(conn.team_id);
  const sources = useMemo(() => sourcesOf(conn), [conn]);
  const [name, setName] = useState(conn.name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "template");
  const [title, setTitle] = useState(conn.name);
  const [description, setDescription] = useState("");
  const [visibility, setVisibility] = useState<"private" | "org">("private");
  const [note, setNote] = useState("");
  const [rows, setRows] = useState<ParamDraft[]>([]);
  const [script, setScript] = useState<(typeof SCRIPT_KEYS)[number]>("a.trigger");
  const [preview, setPreview] = useState(false);
  const [selErr, setSelErr] = useState<string>();
  const area = useRef<HTMLTextAreaElement>(null);
  const act = useAction();

  const same = existing.find((t) => t.name === name);
  const check = useMemo(() => extractPreview(sources, rows), [sources, rows]);
  const nameOK = TEMPLATE_NAME.test(name);
  const why = denied(role, "template");
  const [side, kind] = script.split(".") as [Side, Kind];
  const shown = preview ? check.sources[side]?.[kind] ?? "" : sources[side][kind];

  const addRow = (literal: string) =>
    setRows((r) => [...r, { literal, name: literal ? suggestName(literal, r.map((x) => x.name), r.length + 1) : "", type: "", description: "" }]);
  const fromSelection = () => {
    const el = area.current;
    if (!el || preview) return setSelErr("select a literal in a script (not in the preview)");
    const r = literalFromSelection(el.value, el.selectionStart, el.selectionEnd);
    setSelErr(r.error);
    if (!r.error) addRow(r.literal);
  };
  // Publishing a new version: start from the last one's title, description and parameters.
  const fillFrom = (t: Existing) => {
    setTitle(t.title);
    setDescription(t.description);
    setRows(
      (t.params ?? []).map((p) => ({
        name: p.name,
        literal: JSON.stringify(p.default),
        type: (p.type ?? "") as ParamType | "",
        description: p.description,
      })),
    );
  };
  const setRow = (i: number, patch: Partial<ParamDraft>) => setRows((r) => r.map((x, j) => (j === i ? { ...x, ...patch } : x)));

  const submit = async (e: Event) => {
    e.preventDefault();
    const params = rows.map((r) => ({ name: r.name, literal: r.literal.trim(), type: r.type || undefined, description: r.description }));
    const t = await act.run(
      () =>
        api.saveAsTemplate(conn.id, {
          name,
          title,
          description,
          params,
          note,
          ...(same ? {} : { visibility }),
        }),
      same ? `Version ${same.latest_version! + 1} of ${name} published` : `Template ${name} saved`,
    );
    if (t) location.hash = `#/templates/${t.id}`;
  };

  return (
    <>
      <header class="page-head">
        <div>
          <div class="crumbs">
            <a href="#/connections">Connections</a> / <a href={`#/connections/${conn.id}/scripts`}>{conn.name}</a> /
          </div>
          <h1>
            Save as template <TeamTag id={conn.team_id} />
          </h1>
          <p class="muted">
            The template holds this connection's saved scripts and options. Literals you pull out become parameters: every occurrence turns into{" "}
            <code>{"{{name}}"}</code> and the literal becomes the default. The connection itself stays as it is.
          </p>
        </div>
      </header>
      <form class="form" onSubmit={submit} data-testid="save-template">
        <div class="two">
          <label class="field">
            <span>Name</span>
            <input name="template-name" required value={name} onInput={(e) => setName(value(e))} />
            {!nameOK && <small class="inline-error">letters, digits, ".", "_" and "-", starting with a letter or digit</small>}
            {same && (
              <small class="notice" data-testid="new-version">
                The team has a template named {name} (version {same.latest_version}, {same.visibility}): saving publishes version{" "}
                {same.latest_version! + 1}. <a href={`#/templates/${same.id}`}>See it</a> ·{" "}
                <button type="button" class="btn small" onClick={() => fillFrom(same)} data-testid="fill-from-latest">
                  Start from version {same.latest_version}
                </button>
              </small>
            )}
          </label>
          <label class="field">
            <span>Title</span>
            <input name="template-title" value={title} onInput={(e) => setTitle(value(e))} />
          </label>
        </div>
        <label class="field">
          <span>Description</span>
          <textarea name="template-description" rows={2} value={description} onInput={(e) => setDescription(value(e))} />
        </label>
        <div class="two">
          {same ? (
            <div class="field">
              <span>Visibility</span>
              <div>
                {same.visibility} <small class="muted">(change it on the template's page)</small>
              </div>
            </div>
          ) : (
            <label class="field">
              <span>Visibility</span>
              <select name="visibility" value={visibility} onChange={(e) => setVisibility(value(e) as "private" | "org")}>
                {visibilityChoices(role).map((c) => (
                  <option key={c.value} value={c.value} disabled={!!c.disabled} title={c.disabled}>
                    {c.label}
                    {c.disabled ? ` (${c.disabled})` : ""}
                  </option>
                ))}
              </select>
              <small class="muted">Share it with named teams afterwards, on its page.</small>
            </label>
          )}
          <label class="field">
            <span>{same ? "Note for this version" : "Note"}</span>
            <input name="note" placeholder={same ? "what changed" : "first version"} value={note} onInput={(e) => setNote(value(e))} />
          </label>
        </div>

        <h3 class="gap">Parameters</h3>
        <div class="toolbar">
          <div class="seg" role="tablist">
            {SCRIPT_KEYS.map((k) => (
              <button type="button" key={k} class={k === script ? "on" : ""} onClick={() => setScript(k)} data-script-tab={k}>
                {k}
              </button>
            ))}
          </div>
          <label class="check">
            <input type="checkbox" checked={preview} onChange={(e) => setPreview((e.currentTarget as HTMLInputElement).checked)} /> preview with parameters
          </label>
        </div>
        <textarea
          ref={area}
          class="mono"
          readOnly
          rows={Math.min(16, Math.max(3, shown.split("\n").length))}
          value={shown}
          data-testid="template-source"
          aria-label={`${script} source`}
        />
        <div class="actions">
          <button type="button" class="btn" onClick={fromSelection} disabled={preview} data-testid="use-selection">
            Use the selection as a parameter
          </button>
          <button type="button" class="btn" onClick={() => addRow("")} data-testid="add-param">
            Type a literal…
          </button>
          {selErr && <span class="inline-error">{selErr}</span>}
        </div>
        {rows.length > 0 && (
          <table class="grid compact" data-testid="param-rows">
            <thead>
              <tr>
                <th>Literal (as the scripts spell it)</th>
                <th>Name</th>
                <th>Type</th>
                <th>Default</th>
                <th>Description</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => {
                const c = check.checks[i];
                return (
                  <tr key={i} data-param={i}>
                    <td>
                      <input class="mono" name="literal" value={r.literal} onInput={(e) => setRow(i, { literal: value(e) })} placeholder='"ENG"' />
                      <div class="muted small">{c.count ? `${c.count}× in ${c.places.join(", ")}` : ""}</div>
                    </td>
                    <td>
                      <input name="param-name" value={r.name} onInput={(e) => setRow(i, { name: value(e) })} />
                    </td>
                    <td>
                      <select name="param-type" value={r.type} onChange={(e) => setRow(i, { type: value(e) as ParamType | "" })}>
                        <option value="">{c.type ? `${c.type} (from the literal)` : "from the literal"}</option>
                        {PARAM_TYPES.map((t) => (
                          <option key={t} value={t}>
                            {t}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td data-testid="param-default">{c.default !== undefined ? <code>{JSON.stringify(c.default)}</code> : "—"}</td>
                    <td>
                      <input name="param-description" value={r.description} onInput={(e) => setRow(i, { description: value(e) })} />
                    </td>
                    <td>
                      <button type="button" class="btn small" onClick={() => setRows((x) => x.filter((_, j) => j !== i))} aria-label="remove parameter">
                        ✕
                      </button>
                      {c.error && (
                        <div class="inline-error small" data-testid="param-error">
                          {c.error}
                        </div>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {act.error && <ErrorBox error={act.error} />}
        <div class="actions">
          <button class="btn primary" type="submit" disabled={act.busy || !!why || !nameOK || !check.ok} title={why} data-testid="save-template-submit">
            {act.busy ? "Saving…" : same ? `Publish version ${same.latest_version! + 1}` : "Save template"}
          </button>
          <a class="btn" href={`#/connections/${conn.id}/scripts`}>
            Cancel
          </a>
          <span class="muted small">Only saved scripts go into the template.</span>
        </div>
      </form>
    </>
  );
}

// ---------- a template's page ----------

export function TemplateView({ id, query }: { id: number; query: Record<string, string> }) {
  const a = useAsync(async () => {
    const [t, versions] = await Promise.all([api.teamTemplate(id), api.templateVersions(id)]);
    return { t, versions };
  }, [id]);
  return (
    <div class="page wide">
      <Loaded a={a} what="template">
        {({ t, versions }) => <TemplatePage t={t} versions={versions} query={query} reload={a.reload} />}
      </Loaded>
    </div>
  );
}

function TemplatePage({ t, versions, query, reload }: { t: TeamTemplate; versions: Awaited<ReturnType<typeof api.templateVersions>>; query: Record<string, string>; reload: () => Promise<void> }) {
  const me = currentMe(useAuth())!;
  const mine = useTeams();
  const teams = useTeamDirectory() ?? mine; // the owner may be a team one is not in
  const shown = Number(query.v) || t.latest_version;
  const compare = Number(query.compare) || 0;
  const role = useRole(t.team_id);
  return (
    <>
      <header class="page-head">
        <div>
          <div class="crumbs">
            <a href="#/connections/new">Templates</a> /
          </div>
          <h1>
            {t.title || t.name} <span class="pill">{t.visibility}</span> <span class="tag team">team {teamName(teams, t.team_id)}</span>
            {role && <span class={`pill role-${role}`}>{role}</span>}
          </h1>
          <p class="muted">
            <code>{t.name}</code> · version {t.latest_version}
            {t.forked_from_id && (
              <>
                {" "}
                · forked from <a href={`#/templates/${t.forked_from_id}`}>template {t.forked_from_id}</a> version {t.forked_from_version}
              </>
            )}
            {t.description && <> · {t.description}</>}
          </p>
        </div>
        <div class="head-actions">
          <a class="btn primary" href={`#/connections/new/team-${t.id}`} data-testid="use-template">
            New connection from it
          </a>
          <a class="btn" href={api.archiveURL(t.id, shown)} download data-testid="export">
            Export v{shown} (.tar.gz)
          </a>
        </div>
      </header>
      {!templateDenied(me, t, "publish", teams) ? null : (
        <p class="muted small" data-testid="read-only">
          Read-only for you: {templateDenied(me, t, "publish", teams)}.
        </p>
      )}
      <div class="split versions">
        <div>
          <h3>Versions</h3>
          <table class="grid compact" data-testid="template-versions">
            <thead>
              <tr>
                <th>v</th>
                <th>Note</th>
                <th>Author</th>
                <th>When</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.version} class={v.version === shown ? "on" : ""} data-version={v.version}>
                  <td>
                    <a href={`#/templates/${t.id}?v=${v.version}`}>v{v.version}</a>
                    {v.version !== shown && (
                      <div>
                        <a class="small" href={`#/templates/${t.id}?v=${shown}&compare=${v.version}`} title={`diff between v${v.version} and v${shown}`} data-testid="compare">
                          diff
                        </a>
                      </div>
                    )}
                  </td>
                  <td>{v.note || <span class="muted">—</span>}</td>
                  <td>{v.author}</td>
                  <td title={v.created_at}>{ago(v.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Sharing t={t} reload={reload} />
          <Fork t={t} version={shown} />
        </div>
        <div>
          {compare ? (
            <VersionDiff id={t.id} from={Math.min(compare, shown)} to={Math.max(compare, shown)} />
          ) : (
            <VersionContent id={t.id} version={shown} />
          )}
        </div>
      </div>
    </>
  );
}

function VersionContent({ id, version }: { id: number; version: number }) {
  const a = useAsync(() => api.templateVersion(id, version), [id, version]);
  const [file, setFile] = useState("a.trigger");
  return (
    <Loaded a={a} what="version">
      {(v) => {
        const b = v.body!;
        const fixtures = Object.keys(b.fixtures ?? {});
        const [side, kind] = file.split(".") as [Side, Kind];
        return (
          <div data-testid="version-content">
            <h3>
              Version {version} <span class="muted small">{v.version?.note}</span>
            </h3>
            <dl class="sides">
              <dt>A</dt>
              <dd>
                {b.side_a} {b.kinds_a?.length ? <small class="muted" data-kinds="a">(fits {b.kinds_a.join(", ")})</small> : null}
              </dd>
              <dt>B</dt>
              <dd>
                {b.side_b} {b.kinds_b?.length ? <small class="muted" data-kinds="b">(fits {b.kinds_b.join(", ")})</small> : null}
              </dd>
            </dl>
            <ParamsTable params={b.params} />
            <div class="toolbar">
              <div class="seg">
                {SCRIPT_KEYS.map((k) => (
                  <button type="button" key={k} class={k === file ? "on" : ""} onClick={() => setFile(k)}>
                    {k}
                  </button>
                ))}
              </div>
            </div>
            <pre class="json" data-testid="version-source">
              {b.sources?.[side]?.[kind] ?? ""}
            </pre>
            <h3>Fixtures</h3>
            {fixtures.length === 0 ? (
              <p class="muted">No fixtures.</p>
            ) : (
              fixtures.map((f) => (
                <details key={f} data-fixture={f}>
                  <summary>
                    <code>testdata/{f}</code>
                  </summary>
                  <Json value={b.fixtures![f]} />
                </details>
              ))
            )}
            {b.options !== undefined && b.options !== null && (
              <>
                <h3>Options</h3>
                <pre class="json">{pretty(b.options)}</pre>
              </>
            )}
          </div>
        );
      }}
    </Loaded>
  );
}

function VersionDiff({ id, from, to }: { id: number; from: number; to: number }) {
  const a = useAsync(async () => {
    const [x, y] = await Promise.all([api.templateVersion(id, from), api.templateVersion(id, to)]);
    return diffBodies(x.body as TemplateBody, y.body as TemplateBody);
  }, [id, from, to]);
  return (
    <div>
      <h3>
        v{from} → v{to} <a class="small" href={`#/templates/${id}?v=${to}`}>close the diff</a>
      </h3>
      <Loaded a={a} what="diff">
        {(files) => <FileDiffs files={files.map((f) => ({ path: f.path, status: f.status, rows: f.lines }))} />}
      </Loaded>
    </div>
  );
}

function Sharing({ t, reload }: { t: TeamTemplate; reload: () => Promise<void> }) {
  const me = currentMe(useAuth())!;
  const teams = useTeams();
  const why = templateDenied(me, t, "share", teams);
  const [vis, setVis] = useState<Visibility>(t.visibility as Visibility);
  const [shared, setShared] = useState<number[]>(t.shared_with ?? []);
  const [extra, setExtra] = useState("");
  const act = useAction();
  const directory = useTeamDirectory();
  const others = (directory ?? teams).filter((x) => x.id !== t.team_id);
  // Teams the directory does not name (deleted, or it has not answered yet).
  const unnamed = shared.filter((id) => !others.some((x) => x.id === id));
  const toggle = (id: number, on: boolean) => setShared((s) => (on ? [...s, id] : s.filter((x) => x !== id)));
  const save = async (e: Event) => {
    e.preventDefault();
    const ids = [...shared];
    for (const part of extra.split(/[\s,]+/)) if (/^\d+$/.test(part) && !ids.includes(Number(part))) ids.push(Number(part));
    const r = await act.run(() => api.setSharing(t.id, vis, ids), "Sharing saved");
    if (r) {
      setExtra("");
      setShared(r.shared_with ?? []);
      await reload();
    }
  };
  if (why && t.shared_with === undefined)
    return (
      <p class="muted small gap" data-testid="sharing">
        Visibility: {t.visibility}. {why}.
      </p>
    );
  return (
    <form class="form gap" onSubmit={save} data-testid="sharing">
      <h3>Who sees it</h3>
      <fieldset disabled={!!why} title={why}>
        {VISIBILITIES.map((v) => (
          <label class="check" key={v}>
            <input type="radio" name="visibility" value={v} checked={vis === v} onChange={() => setVis(v)} />{" "}
            {v === "private" ? "private: this team only" : v === "shared" ? "shared: this team and the teams below" : "org: every team"}
          </label>
        ))}
        {vis === "shared" && (
          <div class="field">
            {others.map((x) => (
              <label class="check" key={x.id}>
                <input type="checkbox" name="share-team" value={x.id} checked={shared.includes(x.id)} onChange={(e) => toggle(x.id, (e.currentTarget as HTMLInputElement).checked)} />{" "}
                {x.name}
              </label>
            ))}
            {unnamed.map((id) => (
              <label class="check" key={id}>
                <input type="checkbox" checked onChange={() => toggle(id, false)} /> team {id}
              </label>
            ))}
            <label class="field">
              <span>Other teams, by id</span>
              <input name="share-ids" placeholder="e.g. 4, 7" value={extra} onInput={(e) => setExtra(value(e))} />
              <small class="muted">Teams you may see by name are listed above (an org admin decides whether that is every team); give any other team by its id.</small>
            </label>
          </div>
        )}
      </fieldset>
      {act.error && <ErrorBox error={act.error} />}
      <div class="actions">
        <button class="btn" type="submit" disabled={!!why || act.busy} title={why} data-testid="save-sharing">
          Save sharing
        </button>
      </div>
    </form>
  );
}

function Fork({ t, version }: { t: TeamTemplate; version: number }) {
  const me = currentMe(useAuth())!;
  const teams = useTeams();
  const targets = forkTargets(me, teams, t);
  const why = templateDenied(me, t, "fork", teams);
  const [team, setTeam] = useState<number | undefined>(targets.find((x) => x.id !== t.team_id)?.id ?? targets[0]?.id);
  const [name, setName] = useState(t.name);
  const act = useAction();
  const fork = async (e: Event) => {
    e.preventDefault();
    const r = await act.run(() => api.forkTemplate(t.id, { team_id: team, name, version }), `Forked into team ${teamName(teams, team)}`);
    if (r) location.hash = `#/templates/${r.id}`;
  };
  return (
    <form class="form gap" onSubmit={fork} data-testid="fork">
      <h3>Fork</h3>
      <p class="muted small">A copy of version {version} in one of your teams, private to it; you change the copy, never this template.</p>
      <div class="row">
        <label class="field">
          <span>Into team</span>
          <select name="fork-team" value={team} disabled={!!why} onChange={(e) => setTeam(Number(value(e)))}>
            {targets.map((x) => (
              <option key={x.id} value={x.id}>
                {x.name}
              </option>
            ))}
          </select>
        </label>
        <label class="field grow">
          <span>Name</span>
          <input name="fork-name" value={name} disabled={!!why} onInput={(e) => setName(value(e))} />
        </label>
        <button class="btn end" type="submit" disabled={!!why || act.busy || !TEMPLATE_NAME.test(name) || team === undefined} title={why} data-testid="fork-submit">
          Fork v{version}
        </button>
      </div>
      {act.error && <ErrorBox error={act.error} />}
    </form>
  );
}

// ---------- import an archive ----------

export function ImportView() {
  const me = currentMe(useAuth())!;
  const all = useTeams();
  const teams = pickableTeams(me, all, "editor");
  const [team, setTeam] = useState<number>();
  const [file, setFile] = useState<File>();
  const [name, setName] = useState("");
  const [note, setNote] = useState("");
  const act = useAction();
  const why = templateDenied(me, { team_id: 0, visibility: "private" }, "import", all);
  const chosen = team ?? teams[0]?.id;
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    const r = await act.run(() => api.importTemplate(file, { team_id: chosen, name: name.trim(), note: note.trim() }), "Archive imported");
    if (r) location.hash = `#/templates/${r.id}`;
  };
  return (
    <div class="page">
      <header class="page-head">
        <div>
          <div class="crumbs">
            <a href="#/connections/new">Templates</a> /
          </div>
          <h1>Import a template archive</h1>
          <p class="muted">
            A <code>.tar.gz</code> of one template folder (as exported, or <code>tar czf x.tar.gz -C scripts support-escalation</code>). Onto a name the team
            already has, it publishes the next version.
          </p>
        </div>
      </header>
      <form class="form narrow" onSubmit={submit} data-testid="import">
        <label class="field">
          <span>Archive</span>
          <input type="file" name="archive" accept=".tar.gz,.tgz,application/gzip" onChange={(e) => setFile((e.currentTarget as HTMLInputElement).files?.[0])} />
        </label>
        <label class="field">
          <span>Into team</span>
          <select name="import-team" value={chosen} onChange={(e) => setTeam(Number(value(e)))} disabled={!!why}>
            {teams.map((x) => (
              <option key={x.id} value={x.id}>
                {x.name}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>Name (optional)</span>
          <input name="import-name" placeholder="the archive's folder name" value={name} onInput={(e) => setName(value(e))} />
        </label>
        <label class="field">
          <span>Note (optional)</span>
          <input name="import-note" placeholder="imported" value={note} onInput={(e) => setNote(value(e))} />
        </label>
        {act.error && <ErrorBox error={act.error} />}
        <div class="actions">
          <button class="btn primary" type="submit" disabled={!!why || !file || act.busy} title={why} data-testid="import-submit">
            {act.busy ? "Importing…" : "Import"}
          </button>
        </div>
      </form>
    </div>
  );
}

// ---------- upgrade a connection to the template's latest version ----------

export function UpgradeView({ id }: { id: number }) {
  const a = useAsync(async () => {
    const [conn, status] = await Promise.all([api.connection(id), api.templateStatus(id)]);
    const latest = await api.templateVersion(status.template_id, status.latest).catch(() => undefined);
    return { conn, status, latest };
  }, [id]);
  return (
    <div class="page wide">
      <Loaded a={a} what="template status">
        {(d) => <Upgrade {...d} reload={a.reload} />}
      </Loaded>
    </div>
  );
}

function Upgrade({ conn, status, latest, reload }: { conn: Connection; status: Awaited<ReturnType<typeof api.templateStatus>>; latest?: TeamTemplate; reload: () => Promise<void> }) {
  const role = useRole(conn.team_id);
  const why = denied(role, "upgrade");
  const specs = latest?.body?.params ?? [];
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(specs.map((p) => [p.name, JSON.stringify(p.name in status.params ? status.params[p.name] : p.default)])),
  );
  const [conflict, setConflict] = useState<string>();
  const [paramErr, setParamErr] = useState<string>();
  const act = useAction();
  const files = status.diff.map((f) => ({ path: f.path, status: f.status, rows: parseUnified(f.unified) }));

  const upgrade = async (discard: boolean) => {
    const params: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(values)) {
      try {
        params[k] = JSON.parse(v);
      } catch {
        setParamErr(`${k} is not valid JSON (strings need double quotes)`);
        return;
      }
    }
    setParamErr(undefined);
    let refused: ApiError | undefined;
    const r = await act.run(async () => {
      try {
        return await api.upgradeTemplate(conn.id, { version: status.latest, params, discard_local_edits: discard });
      } catch (e) {
        if (e instanceof ApiError && e.status === 409 && !discard) {
          refused = e;
          return undefined;
        }
        throw e;
      }
    });
    if (refused) {
      setConflict(refused.message);
      return;
    }
    if (r) {
      toast(`Upgraded to version ${status.latest} of ${status.name}`);
      location.hash = `#/connections/${conn.id}/scripts`;
    }
  };

  return (
    <>
      <header class="page-head">
        <div>
          <div class="crumbs">
            <a href="#/connections">Connections</a> / <a href={`#/connections/${conn.id}/scripts`}>{conn.name}</a> /
          </div>
          <h1>Template update</h1>
          <p class="muted">
            From team template <a href={`#/templates/${status.template_id}`}>{status.name}</a>: this connection is on version {status.version}, the latest is{" "}
            {status.latest}.
          </p>
        </div>
        <button class="btn" type="button" onClick={() => void reload()}>
          Refresh
        </button>
      </header>
      {!status.update_available ? (
        <Empty title="Up to date">This connection uses the template's latest version.</Empty>
      ) : (
        <>
          {status.local_edits.length > 0 && (
            <div class="notice" data-testid="local-edits">
              Edited here since the template rendered them: {status.local_edits.join(", ")}. Upgrading replaces them (they stay in each script's Versions).
            </div>
          )}
          <h3>
            What changes, v{status.version} → v{status.latest}
          </h3>
          <FileDiffs files={files} />
          {specs.length > 0 && <h3 class="gap">Parameters</h3>}
          {specs.map((p) => (
            <label class="field" key={p.name}>
              <span>
                {p.name} <small class="muted">{[p.type, p.description].filter(Boolean).join(" · ")}</small>
                {!(p.name in status.params) && <small class="pill">new in v{status.latest}</small>}
              </span>
              <input class="mono" name={`param-${p.name}`} value={values[p.name]} onInput={(e) => setValues({ ...values, [p.name]: value(e) })} />
            </label>
          ))}
          {paramErr && <div class="inline-error">{paramErr}</div>}
          {act.error && <ErrorBox error={act.error} />}
          {conflict ? (
            <div class="state error" role="alert" data-testid="upgrade-conflict">
              <strong>Scripts were edited in this connection</strong>
              <div>{conflict}</div>
              <div class="actions">
                <button class="btn primary" type="button" onClick={() => void upgrade(true)} disabled={act.busy} data-testid="discard-and-upgrade">
                  Discard my edits and upgrade
                </button>
                <button class="btn" type="button" onClick={() => setConflict(undefined)}>
                  Keep them
                </button>
              </div>
            </div>
          ) : (
            <div class="actions">
              <button class="btn primary" type="button" onClick={() => void upgrade(false)} disabled={act.busy || !!why} title={why} data-testid="upgrade">
                {act.busy ? "Upgrading…" : `Upgrade to version ${status.latest}`}
              </button>
              <span class="muted small">Each changed script is saved as its next version; the connection keeps running.</span>
            </div>
          )}
        </>
      )}
    </>
  );
}
