import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { parseRoute, type Route } from "./logic";
import { hasUnsaved } from "./guard";
import { Toasts } from "./ui";
import { ConnectionsView } from "./views/connections";
import { NewConnectionView } from "./views/new-connection";
import { ConnectionView } from "./views/connection";
import { SystemsView } from "./views/systems";
import "./style.css";

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    let current = location.hash;
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
      setRoute(to);
    };
    addEventListener("hashchange", onChange);
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
  return route;
}

function App() {
  const route = useRoute();
  const section = route.view === "systems" ? "systems" : "connections";
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
        <div class="side-foot muted">
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

render(<App />, document.getElementById("app")!);
