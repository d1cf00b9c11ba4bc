// Peer links (docs/peers.md): this deployment's links to other companies'
// Duplex, their status, and the invitation flow. Pausing, revoking and
// inviting are team admins' (the server checks it again).
import { useState } from "preact/hooks";
import { api, type PeerLink, type System } from "../api";
import { ago } from "../logic";
import { Empty, ErrorBox, Loaded, useAction, useAsync } from "../ui";

function Row({ l, changed }: { l: PeerLink; changed: () => void }) {
  const act = useAction();
  const set = (action: "pause" | "resume" | "revoke") =>
    act.run(() => api.peerLinkState(l.id, action), `Link ${action}d`).then((r) => r && changed());
  const revoked = l.status.startsWith("revoked");
  return (
    <tr data-testid={`peer-link-${l.id}`}>
      <td>
        <a href={`#/connections/${l.connection_id}/activity`}>{l.name}</a>
        <div class="muted small">{l.remote_url || "waiting for the other admin"}</div>
      </td>
      <td>
        {l.status}
        {l.status_reason && <div class="muted small">{l.status_reason}</div>}
      </td>
      <td title={l.last_contact_at ?? ""}>{l.last_contact_at ? ago(l.last_contact_at) : "never"}</td>
      <td>
        {l.counts.waiting} waiting here · {l.remote_waiting} waiting at the peer
        <div class="muted small">
          {l.counts.sent} sent · {l.counts.received} received
        </div>
      </td>
      <td class={l.last_error ? "bad small" : "muted small"}>{l.last_error || "—"}</td>
      <td>
        {!revoked && (
          <>
            {l.status === "paused" ? (
              <button class="btn small" disabled={act.busy} onClick={() => set("resume")}>
                Resume
              </button>
            ) : (
              <button class="btn small" disabled={act.busy || l.status !== "active"} onClick={() => set("pause")}>
                Pause
              </button>
            )}{" "}
            <button
              class="btn small danger"
              disabled={act.busy}
              onClick={() => confirm(`Revoke the link "${l.name}" for good? The peer is refused from now on.`) && set("revoke")}
            >
              Revoke
            </button>
          </>
        )}
        {act.error && <div class="bad small">{act.error.message}</div>}
      </td>
    </tr>
  );
}

function SetupFields({ systems, onChange }: { systems: System[]; onChange: (k: string, v: string) => void }) {
  const input = (k: string) => (e: Event) => onChange(k, (e.currentTarget as HTMLInputElement).value);
  return (
    <div class="two">
      <label class="field">
        <span>Name</span>
        <input name="name" required onInput={input("name")} />
      </label>
      <label class="field">
        <span>Your system</span>
        <select name="system_id" required onChange={input("system_id")}>
          <option value="">choose…</option>
          {systems
            .filter((s) => s.kind !== "peer")
            .map((s) => (
              <option key={s.id} value={String(s.id)}>
                {s.name} ({s.kind})
              </option>
            ))}
        </select>
      </label>
      <label class="field">
        <span>Your side's scripts: template</span>
        <input name="template" placeholder="support-escalation" onInput={input("template")} />
      </label>
      <label class="field">
        <span>This deployment's address, as the peer reaches it</span>
        <input name="public_url" required placeholder="https://duplex.example.com" onInput={input("public_url")} />
      </label>
    </div>
  );
}

function Invite({ systems, done }: { systems: System[]; done: () => void }) {
  const [f, setF] = useState<Record<string, string>>({ side: "a" });
  const [code, setCode] = useState<string>();
  const act = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    const r = await act.run(() =>
      api.invitePeer({ name: f.name, system_id: Number(f.system_id), template: f.template, public_url: f.public_url, side: f.side }),
    );
    if (r) {
      setCode(r.code);
      done();
    }
  };
  return (
    <form onSubmit={submit} class="card">
      <h2>Invite another deployment</h2>
      <SetupFields systems={systems} onChange={(k, v) => setF({ ...f, [k]: v })} />
      <label class="field">
        <span>Your side</span>
        <select name="side" value={f.side} onChange={(e) => setF({ ...f, side: (e.currentTarget as HTMLSelectElement).value })}>
          <option value="a">a</option>
          <option value="b">b</option>
        </select>
      </label>
      <button class="btn primary" type="submit" disabled={act.busy}>
        Make the invitation
      </button>
      {act.error && <ErrorBox error={act.error} />}
      {code && (
        <div class="notice" data-testid="peer-code">
          <p>Hand this one-time code to the other admin (it is shown once):</p>
          <pre class="mono">{code}</pre>
        </div>
      )}
    </form>
  );
}

function Accept({ systems, done }: { systems: System[]; done: () => void }) {
  const [f, setF] = useState<Record<string, string>>({});
  const act = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    const r = await act.run(
      () => api.acceptPeer({ code: f.code, name: f.name, system_id: Number(f.system_id), template: f.template, public_url: f.public_url }),
      "Link made",
    );
    if (r) done();
  };
  return (
    <form onSubmit={submit} class="card">
      <h2>Accept an invitation</h2>
      <label class="field">
        <span>Invitation code</span>
        <input name="code" required class="mono" onInput={(e) => setF({ ...f, code: (e.currentTarget as HTMLInputElement).value })} />
      </label>
      <SetupFields systems={systems} onChange={(k, v) => setF({ ...f, [k]: v })} />
      <button class="btn primary" type="submit" disabled={act.busy}>
        Accept
      </button>
      {act.error && <ErrorBox error={act.error} />}
    </form>
  );
}

export function PeersView() {
  const links = useAsync(() => api.peerLinks(), [], 10000);
  const systems = useAsync(() => api.systems(), []);
  return (
    <div class="page">
      <header class="page-head">
        <div>
          <h1>Peer links</h1>
          <p class="muted">
            Connections shared with another company's Duplex: each side runs only its own scripts; only replicas and acknowledgements cross.
          </p>
        </div>
      </header>
      <Loaded a={links} what="peer links">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No peer links">Invite another deployment, or accept its invitation, below.</Empty>
          ) : (
            <table class="grid" aria-label="Peer links">
              <thead>
                <tr>
                  <th>Link</th>
                  <th>Status</th>
                  <th>Last contact</th>
                  <th>Messages</th>
                  <th>Last error</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {list.map((l) => (
                  <Row key={l.id} l={l} changed={links.reload} />
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
      <Loaded a={systems} what="systems">
        {(s) => (
          <>
            <Invite systems={s} done={links.reload} />
            <Accept systems={s} done={links.reload} />
          </>
        )}
      </Loaded>
    </div>
  );
}
