// The account pages, loaded on demand: personal API tokens, the password, and
// a team's members and roles.
import { useRef, useState } from "preact/hooks";
import { api, ROLES, type Member, type NewToken, type Role, type TeamRole, type User } from "../api";
import { currentMe, loadTeams, refreshMe, useAuth } from "../auth";
import { ago, can, roleIn, tokenState } from "../logic";
import { Empty, ErrorBox, Loaded, toast, useAction, useAsync } from "../ui";

const value = (e: Event) => (e.currentTarget as HTMLInputElement).value;

// ---------- tokens ----------

export function TokensView() {
  const list = useAsync(() => api.tokens(), []);
  const [name, setName] = useState("");
  const [days, setDays] = useState("90");
  const [created, setCreated] = useState<NewToken>();
  const act = useAction();
  const revoker = useAction();

  const create = async (e: Event) => {
    e.preventDefault();
    const d = Number(days);
    const t = await act.run(() => api.createToken(name.trim(), Number.isFinite(d) && d > 0 ? Math.floor(d) : 0));
    if (t) {
      setCreated(t);
      setName("");
      await list.reload();
    }
  };
  const revoke = async (id: number, label: string) => {
    if (!confirm(`Revoke token "${label}"? Scripts and tools using it stop working at once.`)) return;
    await revoker.run(() => api.revokeToken(id), "Token revoked");
    await list.reload();
  };

  return (
    <div class="page">
      <header class="page-head">
        <div>
          <h1>API tokens</h1>
          <p class="muted">
            Personal tokens for scripts and CI: send <code>Authorization: Bearer dpx_…</code>. A token acts as you, with your roles.
          </p>
        </div>
      </header>
      {created && <CreatedToken t={created} done={() => setCreated(undefined)} />}
      <form class="form" onSubmit={create} data-testid="new-token-form">
        <div class="row">
          <label class="field grow">
            <span>Name</span>
            <input name="token-name" required placeholder="what uses it, e.g. ci-deploy" value={name} onInput={(e) => setName(value(e))} />
          </label>
          <label class="field">
            <span>Expires in (days, 0 = never)</span>
            <input name="expires" type="number" min="0" step="1" value={days} onInput={(e) => setDays(value(e))} />
          </label>
          <button class="btn primary end" type="submit" disabled={act.busy || !name.trim()}>
            {act.busy ? "Creating…" : "Create token"}
          </button>
        </div>
        {act.error && <ErrorBox error={act.error} />}
      </form>
      <h3 class="gap">Your tokens</h3>
      {revoker.error && <ErrorBox error={revoker.error} />}
      <Loaded a={list} what="tokens">
        {(tokens) =>
          tokens.length === 0 ? (
            <Empty title="No tokens yet">Create one above; it is shown once.</Empty>
          ) : (
            <table class="grid" data-testid="tokens">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Token</th>
                  <th>Created</th>
                  <th>Last used</th>
                  <th>Expires</th>
                  <th>State</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {tokens.map((t) => {
                  const st = tokenState(t);
                  return (
                    <tr key={t.id} data-token={t.name}>
                      <td>{t.name}</td>
                      <td>
                        <code>{t.prefix}…</code>
                      </td>
                      <td class="muted">{ago(t.created_at)}</td>
                      <td class="muted">{t.last_used_at ? ago(t.last_used_at) : "never"}</td>
                      <td class="muted">{t.expires_at ? new Date(t.expires_at).toISOString().slice(0, 10) : "never"}</td>
                      <td>
                        <span class={`pill tok-${st}`}>{st}</span>
                      </td>
                      <td>
                        {st === "active" && (
                          <button class="btn small danger-link" onClick={() => revoke(t.id, t.name)} disabled={revoker.busy}>
                            Revoke
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        }
      </Loaded>
    </div>
  );
}

async function copy(text: string, input?: HTMLInputElement | null): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard permission (plain http on another host): select it for Ctrl+C.
    input?.select();
    return false;
  }
}

function CreatedToken({ t, done }: { t: NewToken; done: () => void }) {
  const [copied, setCopied] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  return (
    <div class="once" role="alert" data-testid="new-token">
      <strong>Token "{t.name}" created. Copy it now: it is shown only this once.</strong>
      <div class="muted small">Duplex keeps only a hash of it. If you lose it, revoke it and create another.</div>
      <div class="row">
        <input class="mono" readOnly value={t.token} aria-label="new token" ref={input} onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
        <button
          class="btn primary"
          type="button"
          data-testid="copy-token"
          onClick={async () => {
            const ok = await copy(t.token ?? "", input.current);
            setCopied(ok);
            if (!ok) toast("Copying was refused by the browser: the token is selected, press Ctrl+C", "error");
          }}
        >
          {copied ? "Copied" : "Copy"}
        </button>
        <button class="btn" type="button" onClick={done}>
          I have copied it
        </button>
      </div>
      {t.expires_at && <div class="muted small">Expires {new Date(t.expires_at).toISOString().slice(0, 10)}.</div>}
    </div>
  );
}

// ---------- password ----------

export function PasswordView() {
  const [f, setF] = useState({ current: "", next: "", again: "" });
  const [problem, setProblem] = useState<string>();
  const act = useAction();
  const field = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: value(e) });
  const submit = async (e: Event) => {
    e.preventDefault();
    if (f.next !== f.again) return setProblem("The two new passwords differ.");
    setProblem(undefined);
    const ok = await act.run(async () => {
      await api.changePassword(f.current, f.next);
      return true;
    }, "Password changed");
    if (ok) {
      setF({ current: "", next: "", again: "" });
      await refreshMe(); // the server may have renewed the session and its CSRF token
    }
  };
  return (
    <div class="page">
      <header class="page-head">
        <h1>Change password</h1>
      </header>
      <form class="form narrow" onSubmit={submit} data-testid="password-form">
        <label class="field">
          <span>Current password</span>
          <input type="password" name="current" autocomplete="current-password" required value={f.current} onInput={field("current")} />
        </label>
        <label class="field">
          <span>New password</span>
          <input type="password" name="new" autocomplete="new-password" required value={f.next} onInput={field("next")} />
        </label>
        <label class="field">
          <span>New password again</span>
          <input type="password" name="again" autocomplete="new-password" required value={f.again} onInput={field("again")} />
        </label>
        {problem && <div class="inline-error">{problem}</div>}
        {act.error && <ErrorBox error={act.error} />}
        <div class="actions">
          <button class="btn primary" type="submit" disabled={act.busy || !f.current || !f.next}>
            Change password
          </button>
        </div>
      </form>
    </div>
  );
}

// ---------- team ----------

export function TeamView({ id }: { id?: number }) {
  const me = currentMe(useAuth())!;
  const teams = useAsync(() => api.teams(), [me.user.id]);
  const [newTeam, setNewTeam] = useState("");
  const act = useAction();
  const createTeam = async (e: Event) => {
    e.preventDefault();
    const t = await act.run(() => api.createTeam(newTeam.trim()), `Team "${newTeam.trim()}" created`);
    if (t) {
      setNewTeam("");
      await teams.reload();
      await refreshMe();
      location.hash = `#/team/${t.id}`;
    }
  };
  return (
    <div class="page">
      <header class="page-head">
        <div>
          <h1>Team</h1>
          <p class="muted">Teams own systems and connections. Admins manage members and credentials, editors change scripts and connections, viewers read.</p>
        </div>
      </header>
      <Loaded a={teams} what="teams">
        {(list) => {
          // Open the asked-for team, else the first one the user administers, else the first.
          const current = list.find((t) => t.id === id) ?? (id === undefined ? (list.find((t) => can(roleIn(me, t.id), "members")) ?? list[0]) : undefined);
          return (
            <div class="split">
              <div>
                <ul class="list" data-testid="teams">
                  {list.length === 0 && <Empty title="No teams">{me.user.org_admin ? "Create the first one below." : "Ask an org admin to add you to a team."}</Empty>}
                  {list.map((t) => (
                    <li key={t.id} class={current?.id === t.id ? "on" : ""}>
                      <a href={`#/team/${t.id}`}>
                        <strong>{t.name}</strong>
                        <span class="muted small">you: {roleIn(me, t.id) ?? "not a member"}</span>
                      </a>
                    </li>
                  ))}
                </ul>
                {me.user.org_admin && (
                  <form class="form gap" onSubmit={createTeam}>
                    <label class="field">
                      <span>New team</span>
                      <input name="team-name" required value={newTeam} onInput={(e) => setNewTeam(value(e))} placeholder="e.g. finance" />
                    </label>
                    {act.error && <ErrorBox error={act.error} />}
                    <button class="btn primary" type="submit" disabled={act.busy || !newTeam.trim()}>
                      Create team
                    </button>
                  </form>
                )}
                {me.user.org_admin && <TeamDirectorySetting />}
              </div>
              <div class="pane">{current ? <Members key={current.id} team={current} /> : id !== undefined && <ErrorBox error={new Error(`No team ${id}, or you are not in it.`)} />}</div>
            </div>
          );
        }}
      </Loaded>
    </div>
  );
}

/** TeamDirectorySetting is the org admin's choice whether team admins see every team's name (docs/security.md, "Teams' names"). */
function TeamDirectorySetting() {
  const settings = useAsync(() => api.orgSettings(), []);
  return <Loaded a={settings} what="org settings">{(o) => <TeamDirectorySwitch initial={o.team_directory} />}</Loaded>;
}

function TeamDirectorySwitch({ initial }: { initial: boolean }) {
  const [on, setOn] = useState(initial);
  const act = useAction();
  const change = async (next: boolean) => {
    setOn(next);
    const r = await act.run(() => api.setOrgSettings({ team_directory: next }), next ? "Team admins now see every team's name" : "Team admins no longer see other teams' names");
    setOn(r ? r.team_directory : !next);
  };
  return (
    <div class="form gap" data-testid="team-directory">
      <label class="check">
        <input type="checkbox" name="team-directory" checked={on} disabled={act.busy} onChange={(e) => void change((e.currentTarget as HTMLInputElement).checked)} /> Team admins see every
        team's name (to share templates by name)
      </label>
      <small class="muted">Off: they see only their teams and the owners of templates they can use, and share with other teams by id.</small>
      {act.error && <ErrorBox error={act.error} />}
    </div>
  );
}

function Members({ team }: { team: TeamRole }) {
  const me = currentMe(useAuth())!;
  const role = roleIn(me, team.id);
  const manage = can(role, "members");
  const members = useAsync(() => (manage ? api.members(team.id) : Promise.resolve([] as Member[])), [team.id, manage]);
  const act = useAction();

  const changed = async (self: boolean) => {
    await members.reload();
    if (self) await refreshMe();
    void loadTeams();
  };
  const setRole = async (m: Member, r: Role) => {
    if (m.user_id === me.user.id && r !== "admin" && !confirm(`Make yourself ${r} in ${team.name}? You will no longer manage its members.`)) return;
    const ok = await act.run(() => api.setMember(team.id, m.user_id, r).then(() => true), `${m.name || m.email} is now ${r} in ${team.name}`);
    if (ok) await changed(m.user_id === me.user.id);
    else await members.reload(); // puts the select back
  };
  const remove = async (m: Member) => {
    if (!confirm(`Remove ${m.name || m.email} from ${team.name}?`)) return;
    const ok = await act.run(() => api.removeMember(team.id, m.user_id).then(() => true), `${m.name || m.email} removed from ${team.name}`);
    if (ok) await changed(m.user_id === me.user.id);
  };

  if (!manage)
    return (
      <div class="state empty" data-testid="members-denied">
        <strong>{team.name}</strong>
        <div class="muted">
          You are {role ? <span class={`pill role-${role}`}>{role}</span> : "not a member"} here. Only team admins see and change the members.
        </div>
      </div>
    );
  return (
    <div>
      <h2>{team.name}: members</h2>
      {act.error && <ErrorBox error={act.error} />}
      <Loaded a={members} what="members">
        {(list) => (
          <>
            {list.length === 0 ? (
              <Empty title="No members yet" />
            ) : (
              <table class="grid" data-testid="members">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Email</th>
                    <th>Role</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {list.map((m) => (
                    <tr key={m.user_id} data-member={m.email}>
                      <td>
                        {m.name}
                        {m.user_id === me.user.id && <span class="muted small"> (you)</span>}
                      </td>
                      <td>{m.email}</td>
                      <td>
                        <select value={m.role} aria-label={`role of ${m.email}`} disabled={act.busy} onChange={(e) => setRole(m, (e.currentTarget as HTMLSelectElement).value as Role)}>
                          {ROLES.map((r) => (
                            <option key={r} value={r}>
                              {r}
                            </option>
                          ))}
                        </select>
                      </td>
                      <td>
                        <button class="btn small danger-link" disabled={act.busy} onClick={() => remove(m)}>
                          Remove
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <AddMember team={team} members={list} canCreate={me.user.org_admin} onAdded={() => changed(false)} />
          </>
        )}
      </Loaded>
    </div>
  );
}

/** Team admins add people by email from the user directory; org admins also create users. */
function AddMember({ team, members, canCreate, onAdded }: { team: TeamRole; members: Member[]; canCreate: boolean; onAdded: () => Promise<void> }) {
  const users = useAsync(() => api.users(), []);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("editor");
  const [nu, setNu] = useState({ email: "", name: "", password: "", org_admin: false });
  const [creating, setCreating] = useState(false);
  const act = useAction();
  const inTeam = new Set(members.map((m) => m.user_id));

  const add = async (e: Event) => {
    e.preventDefault();
    const u = users.data?.find((x) => x.email.toLowerCase() === email.trim().toLowerCase());
    if (!u) return act.run(() => Promise.reject(new Error(`No user with the email ${email.trim()}: ask an org admin to create the user first.`)));
    const ok = await act.run(() => api.setMember(team.id, u.id, role).then(() => true), `${u.name || u.email} added to ${team.name} as ${role}`);
    if (ok) {
      setEmail("");
      await onAdded();
    }
  };
  const createUser = async (e: Event) => {
    e.preventDefault();
    const u: User | undefined = await act.run(() => api.createUser({ ...nu, email: nu.email.trim(), name: nu.name.trim() }), `User ${nu.email.trim()} created`);
    if (u) {
      await users.reload();
      setEmail(u.email);
      setNu({ email: "", name: "", password: "", org_admin: false });
      setCreating(false);
    }
  };

  const candidates = (users.data ?? []).filter((u) => !inTeam.has(u.id));
  return (
    <div class="gap">
      <form class="form" onSubmit={add} data-testid="add-member">
        <h3>Add a member</h3>
        <div class="row">
          <input name="member-email" type="email" list="user-emails" placeholder="email of an existing user" value={email} onInput={(e) => setEmail(value(e))} required />
          <datalist id="user-emails">
            {candidates.map((u) => (
              <option key={u.id} value={u.email}>
                {u.name}
              </option>
            ))}
          </datalist>
          <select name="member-role" value={role} onChange={(e) => setRole((e.currentTarget as HTMLSelectElement).value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <button class="btn primary" type="submit" disabled={act.busy || !email.trim()}>
            Add
          </button>
          {canCreate && (
            <button class="btn" type="button" onClick={() => setCreating(!creating)}>
              {creating ? "Cancel new user" : "New user…"}
            </button>
          )}
        </div>
        {users.error && <ErrorBox error={users.error} />}
      </form>
      {canCreate && creating && (
        <form class="form gap" onSubmit={createUser} data-testid="new-user">
          <h3>New user</h3>
          <div class="two">
            <label class="field">
              <span>Email</span>
              <input name="user-email" type="email" required value={nu.email} onInput={(e) => setNu({ ...nu, email: value(e) })} />
            </label>
            <label class="field">
              <span>Name</span>
              <input name="user-name" required value={nu.name} onInput={(e) => setNu({ ...nu, name: value(e) })} />
            </label>
          </div>
          <label class="field">
            <span>Initial password (tell them to change it)</span>
            <input name="user-password" type="password" autocomplete="new-password" required value={nu.password} onInput={(e) => setNu({ ...nu, password: value(e) })} />
          </label>
          <label class="check">
            <input type="checkbox" checked={nu.org_admin} onChange={(e) => setNu({ ...nu, org_admin: (e.currentTarget as HTMLInputElement).checked })} /> org admin (manages
            teams and users)
          </label>
          <div class="actions">
            <button class="btn primary" type="submit" disabled={act.busy}>
              Create user
            </button>
          </div>
        </form>
      )}
      {act.error && <ErrorBox error={act.error} />}
    </div>
  );
}
