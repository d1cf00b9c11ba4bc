import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { parseRoute, type Route } from "./logic";
import { hasUnsaved } from "./guard";
import { Loaded, Toasts, useAsync } from "./ui";
import { currentMe, signOut, start, useAuth } from "./auth";
import type { Me } from "./api";
import { SignIn, Setup, StartError } from "./views/sign-in";
import { ConnectionsView } from "./views/connections";
import { NewConnectionView } from "./views/new-connection";
import { ConnectionView } from "./views/connection";
import { SystemsView } from "./views/systems";
import { AlertsLink, AlertsView } from "./views/alerts";
import "./style.css";

function useRoute(): Route {
  const [at, setAt] = useState(() => ({ hash: location.hash, route: parseRoute(location.hash) }));
  useEffect(() => {
    // From the hash the first render showed: a change between that render
    // and this effect (a link followed at once, on a slow machine) fired
    // no listener of ours, and is taken in below.
    let current = at.hash;
    const onChange = () => {
      if (location.hash === current) return;
      // Leaving a connection with unsaved scripts asks first; tabs of the same connection keep drafts.
      const from = parseRoute(current);
      const to = parseRoute(location.hash);
      const sameConnection = from.view === "connection" && to.view === "connection" && from.id === to.id;
      if (!sameConnection && hasUnsaved() && !confirm("You have unsaved script changes. Leave and discard them?")) {
        history.replaceState(null, "", current);
        return;
      }
      current = location.hash;
      setAt({ hash: current, route: to });
    };
    addEventListener("hashchange", onChange);
    onChange();
    const beforeUnload = (e: BeforeUnloadEvent) => {
      if (hasUnsaved()) {
        e.preventDefault();
        e.returnValue = "";
      }
    };
    addEventListener("beforeunload", beforeUnload);
    return () => {
      removeEventListener("hashchange", onChange);
      removeEventListener("beforeunload", beforeUnload);
    };
  }, []);
  return at.route;
}

// The account and team pages are a chunk of their own: most visits never open them.
const loadAccount = () => import("./views/account");

function AccountPage({ route }: { route: Extract<Route, { view: "tokens" | "password" | "team" }> }) {
  const mod = useAsync(loadAccount, []);
  return (
    <Loaded a={mod} what="page">
      {(m) => (route.view === "tokens" ? <m.TokensView /> : route.view === "password" ? <m.PasswordView /> : <m.TeamView id={route.id} />)}
    </Loaded>
  );
}

// Peer links (docs/peers.md): a chunk of their own too; few deployments have one.
const loadPeers = () => import("./views/peers");

function PeersPage() {
  const mod = useAsync(loadPeers, []);
  return (
    <Loaded a={mod} what="page">
      {(m) => <m.PeersView />}
    </Loaded>
  );
}

// Team templates (save as, a template's page, import, upgrade): a chunk of their own as well.
const loadTemplates = () => import("./views/templates");

function TemplatesPage({ route }: { route: Extract<Route, { view: "save-template" | "upgrade" | "template" | "template-import" }> }) {
  const mod = useAsync(loadTemplates, []);
  return (
    <Loaded a={mod} what="page">
      {(m) =>
        route.view === "save-template" ? (
          <m.SaveTemplateView key={route.id} id={route.id} />
        ) : route.view === "upgrade" ? (
          <m.UpgradeView key={route.id} id={route.id} />
        ) : route.view === "template" ? (
          <m.TemplateView key={route.id} id={route.id} query={route.query} />
        ) : (
          <m.ImportView />
        )
      }
    </Loaded>
  );
}

function UserMenu({ me, auto }: { me: Me; auto: boolean }) {
  return (
    <div class="user">
      {auto && (
        <div class="notice small" data-testid="auto-notice">
          demo: signed in automatically on loopback
        </div>
      )}
      <details class="user-menu" data-testid="user-menu">
        <summary>
          <span class="avatar" aria-hidden="true">
            {(me.user.name || me.user.email).slice(0, 1).toUpperCase()}
          </span>
          <span class="who">{me.user.name || me.user.email}</span>
        </summary>
        <div class="menu">
          <div class="muted small">{me.user.email}</div>
          <ul class="roles" aria-label="Your teams">
            {me.user.org_admin && (
              <li>
                organisation <span class="pill role-admin">org admin</span>
              </li>
            )}
            {me.teams.map((t) => (
              <li key={t.id}>
                {t.name} <span class={`pill role-${t.role}`}>{t.role}</span>
              </li>
            ))}
            {!me.user.org_admin && me.teams.length === 0 && <li class="muted">no team yet</li>}
          </ul>
          <a href="#/tokens">API tokens</a>
          <a href="#/password">Change password</a>
          <button class="btn small" type="button" onClick={() => void signOut()} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </details>
    </div>
  );
}

function Root() {
  const auth = useAuth();
  useEffect(() => void start(), []);
  const me = currentMe(auth);
  switch (auth.status) {
    case "loading":
      return (
        <div class="auth-page">
          <span class="spinner" aria-label="Loading" />
        </div>
      );
    case "error":
      return <StartError error={auth.error} />;
    case "setup":
      return <Setup token={auth.token} />;
    case "signed-out":
      if (!auth.expired || !me) return <SignIn state={auth} />;
      // The session ended while working: the views (and unsaved drafts) stay under the form.
      return (
        <>
          <App me={me} auto={false} />
          <SignIn state={auth} overlay />
        </>
      );
    case "signed-in":
      return <App me={auth.me} auto={auth.auto} />;
  }
}

function App({ me, auto }: { me: Me; auto: boolean }) {
  const route = useRoute();
  const section =
    route.view === "systems" ? "systems" : route.view === "team" ? "team" : route.view === "tokens" ? "tokens" : route.view === "alerts" ? "alerts" : route.view === "peers" ? "peers" : "connections";
  let main;
  switch (route.view) {
    case "connections":
      main = <ConnectionsView />;
      break;
    case "new-connection":
      main = <NewConnectionView template={route.template} />;
      break;
    case "connection":
      main = <ConnectionView key={route.id} id={route.id} tab={route.tab} query={route.query} />;
      break;
    case "systems":
      main = <SystemsView id={route.id} />;
      break;
    case "alerts":
      main = <AlertsView />;
      break;
    case "peers":
      main = <PeersPage />;
      break;
    case "tokens":
    case "password":
    case "team":
      main = <AccountPage route={route} />;
      break;
    case "save-template":
    case "upgrade":
    case "template":
    case "template-import":
      main = <TemplatesPage route={route} />;
      break;
    default:
      main = (
        <div class="page">
          <h1>Not found</h1>
          <p>
            Nothing at <code>{route.path}</code>. <a href="#/connections">Go to connections</a>.
          </p>
        </div>
      );
  }
  return (
    <div class="shell">
      <nav class="side" aria-label="Main">
        <a class="brand" href="#/connections">
          <span class="logo" aria-hidden="true">⇄</span> Duplex
        </a>
        <a class={section === "connections" ? "on" : ""} href="#/connections">
          Connections
        </a>
        <a class={section === "systems" ? "on" : ""} href="#/systems">
          Systems
        </a>
        <AlertsLink on={section === "alerts"} />
        <a class={section === "peers" ? "on" : ""} href="#/peers">
          Peer links
        </a>
        <a class={section === "team" ? "on" : ""} href="#/team">
          Team
        </a>
        <a class={section === "tokens" ? "on" : ""} href="#/tokens">
          Tokens
        </a>
        <div class="side-foot muted">
          <UserMenu me={me} auto={auto} />
          <a href="/api/script-api.d.ts" target="_blank" rel="noreferrer">
            Script API
          </a>
        </div>
      </nav>
      <main>{main}</main>
      <Toasts />
    </div>
  );
}

render(<Root />, document.getElementById("app")!);
