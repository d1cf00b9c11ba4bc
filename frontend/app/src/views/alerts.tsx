import { api, type Alert } from "../api";
import { plural } from "../words";
import { alertBadge, alertLink, alertTitle, duration, noticeState, splitAlerts } from "../alerts";
import { ago } from "../logic";
import { Empty, Loaded, useAsync } from "../ui";

/** The sidebar's "Alerts" link with the number of open alerts. */
export function AlertsLink({ on }: { on: boolean }) {
  const a = useAsync(() => api.alerts("open", 100), [], 30000);
  const badge = alertBadge(a.data?.length ?? 0);
  return (
    <a class={on ? "on" : ""} href="#/alerts" data-testid="alerts-link">
      Alerts
      {badge && (
        <span class="badge" title={plural(a.data?.length ?? 0, "open alert")}>
          {badge}
        </span>
      )}
    </a>
  );
}

function Row({ a }: { a: Alert }) {
  const n = noticeState(a);
  return (
    <tr data-testid={`alert-${a.id}`}>
      <td>
        <a href={alertLink(a)}>{alertTitle(a)}</a>
        <div class="muted small">{a.detail}</div>
      </td>
      <td title={a.opened_at}>{ago(a.opened_at)}</td>
      <td>{duration(a)}</td>
      <td class={n.bad ? "bad small" : "muted small"}>{n.text}</td>
    </tr>
  );
}

function Table({ list, label }: { list: Alert[]; label: string }) {
  return (
    <table class="grid" aria-label={label}>
      <thead>
        <tr>
          <th>Alert</th>
          <th>Opened</th>
          <th>For</th>
          <th>Webhook</th>
        </tr>
      </thead>
      <tbody>
        {list.map((a) => (
          <Row key={a.id} a={a} />
        ))}
      </tbody>
    </table>
  );
}

export function AlertsView() {
  const a = useAsync(() => api.alerts(undefined, 100), [], 15000);
  return (
    <div class="page">
      <header class="page-head">
        <div>
          <h1>Alerts</h1>
          <p class="muted">Connections and systems that started failing; each sends one notice when it opens and one when it heals.</p>
        </div>
      </header>
      <Loaded a={a} what="alerts">
        {(list) => {
          const { open, resolved } = splitAlerts(list);
          return (
            <>
              <h2>Open</h2>
              {open.length === 0 ? <Empty title="No open alerts">Every connection and system of your teams is healthy.</Empty> : <Table list={open} label="Open alerts" />}
              {resolved.length > 0 && (
                <>
                  <h2>Recently resolved</h2>
                  <Table list={resolved} label="Resolved alerts" />
                </>
              )}
            </>
          );
        }}
      </Loaded>
    </div>
  );
}
