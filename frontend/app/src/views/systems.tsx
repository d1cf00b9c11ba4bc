import { useEffect, useState } from "preact/hooks";
import { api, type ConnectorSpec, type System, type SystemTest } from "../api";
import { currentMe, useAuth, useRole, useTeams } from "../auth";
import { ago, denied, pickableTeams } from "../logic";
import { Empty, ErrorBox, Loaded, toast, useAction, useAsync } from "../ui";
import { SecretFields, SettingsFields } from "./system-settings";
import { TeamPicker, TeamTag } from "./team-picker";

export function SystemsView({ id }: { id?: number | "new" }) {
  const list = useAsync(() => api.systems(), []);
  const kinds = useAsync(() => api.connectorKinds(), []);
  const me = currentMe(useAuth());
  const mayCreate = !!me && pickableTeams(me, useTeams(), "admin").length > 0;
  return (
    <div class="page">
      <header class="page-head">
        <div>
          <h1>Systems</h1>
          <p class="muted">The tools Duplex reads and writes: connector, settings, credentials and poll interval.</p>
        </div>
        {mayCreate ? (
          <a class="btn primary" href="#/systems/new">
            Add system
          </a>
        ) : (
          <button class="btn primary" disabled title="only team admins can add systems">
            Add system
          </button>
        )}
      </header>
      <Loaded a={list} what="systems">
        {(systems) => (
          <div class="split">
            <ul class="list" data-testid="systems">
              {systems.length === 0 && <Empty title="No systems yet">Add the first one.</Empty>}
              {systems.map((s) => (
                <li key={s.id} class={id === s.id ? "on" : ""}>
                  <a href={`#/systems/${s.id}`}>
                    <strong>
                      {s.name} <TeamTag id={s.team_id} />
                    </strong>
                    <span class="muted small">
                      {s.kind} · every {s.poll_interval_ms / 1000}s · changed {ago(s.updated_at)}
                    </span>
                  </a>
                </li>
              ))}
            </ul>
            <div class="pane">
              {id === undefined ? (
                <div class="muted">Pick a system to edit it, or add one.</div>
              ) : (
                <SystemForm key={String(id)} specs={kinds.data ?? []} system={id === "new" ? undefined : systems.find((s) => s.id === id)} missing={id !== "new" && !systems.some((s) => s.id === id)} onSaved={list.reload} />
              )}
            </div>
          </div>
        )}
      </Loaded>
    </div>
  );
}

const EXAMPLE_SETTINGS = {
  driver: "sqlite",
  dsn: "duplex-demo/support.db",
  table: "tickets",
  key_prefix: "T-",
  fields: [{ name: "subject" }, { name: "status" }, { name: "labels", type: "list" }],
};

function SystemForm({ system, specs, missing, onSaved }: { system?: System; specs: ConnectorSpec[]; missing: boolean; onSaved: () => Promise<void> }) {
  const [name, setName] = useState(system?.name ?? "");
  const [kind, setKind] = useState(system?.kind ?? "sql");
  const [poll, setPoll] = useState(String(system?.poll_interval_ms ?? 2000));
  const [settings, setSettings] = useState(JSON.stringify(system?.settings ?? EXAMPLE_SETTINGS, null, 2));
  const [replaceSecrets, setReplaceSecrets] = useState(!system);
  const [secrets, setSecrets] = useState<{ k: string; v: string }[]>([{ k: "", v: "" }]);
  const [formErr, setFormErr] = useState<string>();
  // The JSON editor is for experts and for kinds without a spec.
  const [asJSON, setAsJSON] = useState(false);
  const spec = specs.find((s) => s.kind === kind);
  const pickKind = (k: string) => {
    setKind(k);
    if (!system) setSettings(k === "sql" ? JSON.stringify(EXAMPLE_SETTINGS, null, 2) : "{}");
    setSecrets([{ k: "", v: "" }]);
  };
  const [test, setTest] = useState<SystemTest>();
  const [team, setTeam] = useState<number>();
  const save = useAction();
  const tester = useAction();
  // A new system is created in a team the user may create in; the server checks it again.
  const role = useRole(system ? system.team_id : team);
  const noEdit = denied(role, "system");
  const noTest = denied(role, "test");
  useEffect(() => setTest(undefined), [system?.id]);

  if (missing) return <ErrorBox error={new Error("No such system.")} />;

  const submit = async (e: Event) => {
    e.preventDefault();
    let parsed: unknown;
    try {
      parsed = JSON.parse(settings);
    } catch (err) {
      setFormErr("Settings are not valid JSON: " + (err as Error).message);
      return;
    }
    const ms = Number(poll);
    if (!Number.isInteger(ms) || ms < 100) {
      setFormErr("Poll interval must be a whole number of milliseconds, at least 100.");
      return;
    }
    setFormErr(undefined);
    const body: Record<string, unknown> = { name, kind, settings: parsed, poll_interval_ms: ms };
    if (!system && team !== undefined) body.team_id = team;
    if (replaceSecrets) body.secrets = Object.fromEntries(secrets.filter((s) => s.k.trim()).map((s) => [s.k.trim(), s.v]));
    const saved = await save.run(() => (system ? api.updateSystem(system.id, body) : api.createSystem(body)), system ? "System saved" : "System added");
    if (saved) {
      await onSaved();
      setReplaceSecrets(false);
      setSecrets([{ k: "", v: "" }]);
      if (!system) location.hash = `#/systems/${saved.id}`;
    }
  };

  const runTest = async () => {
    if (!system) return;
    setTest(undefined);
    const r = await tester.run(() => api.testSystem(system.id));
    if (r) setTest(r);
  };

  const del = async () => {
    if (!system || !confirm(`Delete system "${system.name}"?`)) return;
    try {
      await api.deleteSystem(system.id);
      toast("System deleted");
      await onSaved();
      location.hash = "#/systems";
    } catch (err) {
      setFormErr((err as Error).message); // e.g. a connection still uses it
    }
  };

  return (
    <form class="form" onSubmit={submit} data-testid="system-form">
      <h2>
        {system ? system.name : "New system"} {system && <TeamTag id={system.team_id} />}
      </h2>
      {system && noEdit && <div class="notice small">You can read this system; {noEdit}.</div>}
      {!system && <TeamPicker value={team} onChange={setTeam} what="system" min="admin" />}
      <fieldset class="bare" disabled={!!system && !!noEdit}>
      <div class="two">
        <label class="field">
          <span>Name</span>
          <input name="name" required value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Connector</span>
          {specs.length ? (
            <select name="kind" value={kind} disabled={!!system} onChange={(e) => pickKind((e.currentTarget as HTMLSelectElement).value)}>
              {!spec && <option value={kind}>{kind}</option>}
              {specs.map((s) => (
                <option key={s.kind} value={s.kind}>
                  {s.kind}
                </option>
              ))}
            </select>
          ) : (
            <input name="kind" value={kind} disabled={!!system} onInput={(e) => setKind((e.currentTarget as HTMLInputElement).value)} />
          )}
          {spec && <small class="muted">{spec.summary}</small>}
        </label>
      </div>
      <label class="field">
        <span>Poll interval (ms)</span>
        <input name="poll" inputMode="numeric" value={poll} onInput={(e) => setPoll((e.currentTarget as HTMLInputElement).value)} />
      </label>
      {spec && (
        <label class="row small">
          <input type="checkbox" name="as-json" checked={asJSON} onChange={(e) => setAsJSON((e.currentTarget as HTMLInputElement).checked)} /> Edit the settings as JSON
        </label>
      )}
      {spec && !asJSON ? (
        <fieldset class="field">
          <legend>Settings</legend>
          <SettingsFields spec={spec} settings={settings} onChange={setSettings} />
        </fieldset>
      ) : (
        <label class="field">
          <span>
            Settings <small class="muted">JSON (docs/connectors.md)</small>
          </span>
          <textarea name="settings" class="mono" rows={12} value={settings} onInput={(e) => setSettings((e.currentTarget as HTMLTextAreaElement).value)} />
        </label>
      )}
      <fieldset class="field secrets">
        <legend>Secrets</legend>
        <p class="muted small">Write-only: stored encrypted, never shown again. Use them for passwords and tokens.</p>
        {system && !replaceSecrets && (
          <div class="row">
            {system.secret_keys.length ? (
              system.secret_keys.map((k) => (
                <span class="tag" key={k}>
                  {k} ••••••
                </span>
              ))
            ) : (
              <span class="muted">none stored</span>
            )}
            <button type="button" class="btn small" onClick={() => setReplaceSecrets(true)} disabled={!!noEdit} title={noEdit}>
              Replace secrets…
            </button>
          </div>
        )}
        {replaceSecrets && (
          <>
            {system && <p class="warn small">Saving replaces all stored secrets with the ones below.</p>}
            {spec && !asJSON && <SecretFields spec={spec} secrets={secrets} onChange={setSecrets} />}
            {!(spec && !asJSON) && secrets.map((s, i) => (
              <div class="row" key={i}>
                <input placeholder="name" aria-label="secret name" value={s.k} onInput={(e) => setSecrets(secrets.map((x, j) => (j === i ? { ...x, k: (e.currentTarget as HTMLInputElement).value } : x)))} />
                <input type="password" autoComplete="new-password" placeholder="value" aria-label="secret value" value={s.v} onInput={(e) => setSecrets(secrets.map((x, j) => (j === i ? { ...x, v: (e.currentTarget as HTMLInputElement).value } : x)))} />
              </div>
            ))}
            {!(spec && !asJSON) && (
              <button type="button" class="btn small" onClick={() => setSecrets([...secrets, { k: "", v: "" }])}>
                + Add secret
              </button>
            )}
          </>
        )}
      </fieldset>
      </fieldset>
      {formErr && <div class="inline-error">{formErr}</div>}
      {save.error && <ErrorBox error={save.error} />}
      <div class="actions">
        <button class="btn primary" type="submit" disabled={save.busy || !!noEdit} title={noEdit}>
          {save.busy ? "Saving…" : system ? "Save" : "Add system"}
        </button>
        {system && (
          <button type="button" class="btn" onClick={runTest} disabled={tester.busy || !!noTest} title={noTest} data-testid="test-system">
            {tester.busy ? "Testing…" : "Test connection"}
          </button>
        )}
        {system && (
          <button type="button" class="btn danger-link" onClick={del} disabled={!!noEdit} title={noEdit}>
            Delete
          </button>
        )}
      </div>
      {tester.error && <ErrorBox error={tester.error} />}
      {test && (
        <div class={`test-result ${test.ok ? "ok" : "bad"}`} data-testid="system-test-result">
          {test.ok ? (
            <>
              <strong>Connected</strong> in {test.ms} ms · {test.schema?.entity_type}: {test.schema?.fields.map((f) => `${f.name} (${f.type})`).join(", ")}
              {test.schema?.comments ? " · comments" : ""}
            </>
          ) : (
            <>
              <strong>Failed</strong> <code class="code">{test.code}</code> {test.message}
            </>
          )}
        </div>
      )}
    </form>
  );
}

