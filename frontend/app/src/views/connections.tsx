import { api, type Connection, type System } from "../api";
import { currentMe, useAuth, useTeams } from "../auth";
import { ago, counts, health, pickableTeams, teamName } from "../logic";
import { Empty, HealthPill, Loaded, useAsync } from "../ui";

export function systemName(systems: System[], id: number) {
  return systems.find((s) => s.id === id)?.name ?? `system ${id}`;
}

export function ConnectionsView() {
  const a = useAsync(async () => {
    const [conns, systems] = await Promise.all([api.connections(), api.systems()]);
    return { conns, systems };
  }, [], 3000);
  const me = currentMe(useAuth());
  const teams = useTeams();
  const showTeam = teams.length > 1;
  const mayCreate = !!me && pickableTeams(me, teams).length > 0;
  return (
    <div class="page">
      <header class="page-head">
        <div>
          <h1>Connections</h1>
          <p class="muted">Two systems kept in sync by a trigger and two scripts per side.</p>
        </div>
        {mayCreate ? (
          <a class="btn primary" href="#/connections/new">
            New connection
          </a>
        ) : (
          <button class="btn primary" disabled title="viewers cannot create connections">
            New connection
          </button>
        )}
      </header>
      <Loaded a={a} what="connections">
        {({ conns, systems }) =>
          conns.length === 0 ? (
            <Empty title="No connections yet">
              {systems.length === 0 ? (
                <>
                  Add the two <a href="#/systems/new">systems</a> you want to sync first.
                </>
              ) : (
                <>
                  <a href="#/connections/new">Create one from a template</a> or start blank.
                </>
              )}
            </Empty>
          ) : (
            <table class="grid" data-testid="connections">
              <thead>
                <tr>
                  <th>Name</th>
                  {showTeam && <th>Team</th>}
                  <th>Systems</th>
                  <th>Status</th>
                  <th class="num">Synced</th>
                  <th class="num">Queued</th>
                  <th class="num">Failed</th>
                  <th class="num">Conflicts</th>
                  <th>Changed</th>
                </tr>
              </thead>
              <tbody>
                {conns.map((c) => (
                  <Row key={c.id} c={c} systems={systems} team={showTeam ? teamName(teams, c.team_id) : undefined} />
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
    </div>
  );
}

function Row({ c, systems, team }: { c: Connection; systems: System[]; team?: string }) {
  const n = counts(c);
  const go = () => (location.hash = `#/connections/${c.id}`);
  return (
    <tr class="link" onClick={go} data-connection={c.name}>
      <td>
        <a href={`#/connections/${c.id}`} onClick={(e) => e.stopPropagation()}>
          {c.name}
        </a>
        {c.template && <div class="muted small">{c.template}</div>}
      </td>
      {team !== undefined && <td data-testid="team">{team}</td>}
      <td>
        {systemName(systems, c.system_a_id)} <span class="muted">⇄</span> {systemName(systems, c.system_b_id)}
      </td>
      <td>
        <HealthPill h={health(c)} />
        {c.paused_reason && (
          <div class="muted small quarantine-reason" title={c.paused_reason} data-testid="paused-reason">
            {c.paused_reason}
          </div>
        )}
      </td>
      <td class="num">{n.synced}</td>
      <td class="num">{n.queued || <span class="muted">0</span>}</td>
      <td class="num">{n.failed ? <a href={`#/connections/${c.id}/queue`} class="bad" onClick={(e) => e.stopPropagation()}>{n.failed}</a> : <span class="muted">0</span>}</td>
      <td class="num">{n.conflicts ? <a href={`#/connections/${c.id}/conflicts`} class="bad" onClick={(e) => e.stopPropagation()}>{n.conflicts}</a> : <span class="muted">0</span>}</td>
      <td class="muted">{ago(c.updated_at)}</td>
    </tr>
  );
}
