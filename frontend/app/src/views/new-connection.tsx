import { useState } from "preact/hooks";
import { api, type System, type Template } from "../api";
import { ErrorBox, Loaded, useAction, useAsync } from "../ui";
import { TeamPicker } from "./team-picker";
import { useTeamDirectory, useTeams } from "../auth";
import { teamName } from "../logic";
import { fittingSystems, initialPicks, noFitNote, sideKinds } from "../templates";

const BLANK = {
  a: { trigger: "false", outgoing: "// Fill `replica` from `entity`; only what is set here crosses over.\n", incoming: "// Apply `replica` to `entity`.\n" },
  b: { trigger: "false", outgoing: "// Fill `replica` from `entity`; only what is set here crosses over.\n", incoming: "// Apply `replica` to `entity`.\n" },
};

// templateKey names a template in the route: a team template by id, as
// two teams may use one name (and a built-in's).
const templateKey = (t: Template) => (t.id ? `team-${t.id}` : t.name);

export function NewConnectionView({ template }: { template?: string }) {
  const a = useAsync(async () => {
    const [templates, systems] = await Promise.all([api.templates(), api.systems()]);
    return { templates, systems };
  }, []);
  return (
    <div class="page">
      <header class="page-head">
        <div>
          <div class="crumbs">
            <a href="#/connections">Connections</a> /
          </div>
          <h1>New connection</h1>
        </div>
      </header>
      <Loaded a={a} what="templates">
        {({ templates, systems }) => {
          if (template === undefined) return <Gallery templates={templates} />;
          const t = template === "blank" ? null : templates.find((x) => templateKey(x) === template);
          if (t === undefined) return <ErrorBox error={new Error(`No template named "${template}".`)} />;
          return <CreateForm template={t} systems={systems} />;
        }}
      </Loaded>
    </div>
  );
}

function Gallery({ templates }: { templates: Template[] }) {
  const mine = useTeams();
  const teams = useTeamDirectory() ?? mine; // names other teams' templates too
  return (
    <>
      <p class="muted">
        Start from a template: scripts and triggers written for a common case, with parameters. You can change everything afterwards. Team templates are
        made with "Save as template" on a connection, or <a href="#/templates/import">imported from an archive</a>.
      </p>
      <div class="cards" data-testid="gallery">
        {templates.map((t) => (
          <div class="card-wrap" key={templateKey(t)}>
          <a class="card" href={`#/connections/new/${templateKey(t)}`} data-template={templateKey(t)}>
            <h3>{t.title || t.name}</h3>
            {t.id && (
              <div class="muted small">
                team {teamName(teams, t.team_id)} · version {t.latest_version} · {t.visibility}
              </div>
            )}
            <p>{t.description}</p>
            <dl class="sides">
              <dt>A</dt>
              <dd>{t.side_a}</dd>
              <dt>B</dt>
              <dd>{t.side_b}</dd>
            </dl>
            {t.params && t.params.length > 0 && (
              <div class="muted small">
                Parameters: {t.params.map((p) => p.name).join(", ")}
              </div>
            )}
            <div class="tags">{t.tags?.map((g) => <span class="tag" key={g}>{g}</span>)}</div>
          </a>
          {t.id && (
            <a class="small card-foot" href={`#/templates/${t.id}`} data-template-page={t.id}>
              Versions, sharing, fork, export…
            </a>
          )}
          </div>
        ))}
        <a class="card blank" href="#/connections/new/blank" data-template="blank">
          <h3>Blank</h3>
          <p>Empty scripts and triggers that match nothing; write your own.</p>
        </a>
      </div>
    </>
  );
}

function CreateForm({ template, systems: all }: { template: Template | null; systems: System[] }) {
  const [team, setTeam] = useState<number>();
  // A team wires only its own systems (their credentials are its admins').
  const systems = team === undefined ? all : all.filter((s) => s.team_id === undefined || s.team_id === team);
  const [name, setName] = useState(template ? template.name : "");
  // Each side offers only systems of the kinds the template's side fits.
  const [sa, setSa] = useState(() => initialPicks(systems, template).a);
  const [sb, setSb] = useState(() => initialPicks(systems, template).b);
  const [params, setParams] = useState<Record<string, string>>(() =>
    Object.fromEntries((template?.params ?? []).map((p) => [p.name, JSON.stringify(p.default, null, 2)])),
  );
  const [paramErr, setParamErr] = useState<string>();
  const pickTeam = (t: number | undefined) => {
    setTeam(t);
    const own = t === undefined ? all : all.filter((s) => s.team_id === undefined || s.team_id === t);
    const picks = initialPicks(own, template);
    setSa(picks.a);
    setSb(picks.b);
  };
  const act = useAction();

  if (all.length < 1)
    return (
      <div class="state empty">
        <strong>No systems yet</strong>
        <div>
          A connection joins two systems. <a href="#/systems/new">Add a system</a> first.
        </div>
      </div>
    );

  const submit = async (e: Event) => {
    e.preventDefault();
    const parsed: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(params)) {
      try {
        parsed[k] = JSON.parse(v);
      } catch {
        setParamErr(`Parameter ${k} is not valid JSON.`);
        return;
      }
    }
    setParamErr(undefined);
    const base = template
      ? template.id
        ? { name, system_a_id: sa, system_b_id: sb, template_id: template.id, params: parsed }
        : { name, system_a_id: sa, system_b_id: sb, template: template.name, params: parsed }
      : { name, system_a_id: sa, system_b_id: sb, scripts: BLANK };
    const body = team !== undefined ? { ...base, team_id: team } : base;
    const c = await act.run(() => api.createConnection(body), `Connection "${name}" created (paused)`);
    if (c) location.hash = `#/connections/${c.id}/scripts`;
  };

  const kinds = { a: sideKinds(template, "a"), b: sideKinds(template, "b") };
  const fits = { a: fittingSystems(systems, kinds.a), b: fittingSystems(systems, kinds.b) };
  const misfit = systems.length > 0 && (fits.a.length === 0 || fits.b.length === 0);
  const pick = (side: "a" | "b", v: number, set: (n: number) => void, label: string, hint?: string) => (
    <label class="field" data-side-kinds={kinds[side].join(" ")}>
      <span>{label}</span>
      <select value={v} onChange={(e) => set(Number((e.currentTarget as HTMLSelectElement).value))} name={label} disabled={fits[side].length === 0}>
        {fits[side].map((s) => (
          <option value={s.id} key={s.id}>
            {s.name} ({s.kind})
          </option>
        ))}
      </select>
      {hint && <small class="muted">{hint}</small>}
      {systems.length > 0 && fits[side].length === 0 && (
        <small class="inline-error" data-no-fit={side}>
          {noFitNote(kinds[side])}: <a href="#/systems/new">add one</a>.
        </small>
      )}
    </label>
  );

  return (
    <form class="form narrow" onSubmit={submit}>
      <h2>{template ? template.title || template.name : "Blank connection"}</h2>
      {template && <p class="muted">{template.description}</p>}
      <label class="field">
        <span>Name</span>
        <input name="name" required value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <TeamPicker value={team} onChange={pickTeam} what="connection" prefer={all[0]?.team_id} />
      {systems.length === 0 && (
        <div class="inline-error">
          This team has no systems yet: a connection joins two systems of its own team. <a href="#/systems/new">Add a system</a> or pick another team.
        </div>
      )}
      <div class="two">
        {pick("a", sa, setSa, "Side A", template?.side_a)}
        {pick("b", sb, setSb, "Side B", template?.side_b)}
      </div>
      {template?.params?.map((p) => (
        <label class="field" key={p.name}>
          <span>
            {p.name} <small class="muted">{p.description}</small>
          </span>
          <textarea
            class="mono"
            rows={Math.min(8, (params[p.name] ?? "").split("\n").length)}
            value={params[p.name]}
            onInput={(e) => setParams({ ...params, [p.name]: (e.currentTarget as HTMLTextAreaElement).value })}
          />
        </label>
      ))}
      {paramErr && <div class="inline-error">{paramErr}</div>}
      {act.error && <ErrorBox error={act.error} />}
      <div class="actions">
        <button class="btn primary" type="submit" disabled={act.busy || !name.trim() || systems.length === 0 || misfit}>
          {act.busy ? "Creating…" : "Create connection"}
        </button>
        <a class="btn" href="#/connections/new">
          Back to templates
        </a>
        <span class="muted small">It starts paused: check the scripts and a test run, then activate.</span>
      </div>
    </form>
  );
}
