// Who is signed in. One small store: the app asks GET /api/me at start, signs
// in (form, first-run setup, or the demo's automatic sign-in on loopback), and
// the fetch wrapper reports a lost session here (any 401), which brings the
// sign-in screen back over the current route.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, session, type Me, type TeamRole, type Unauthenticated } from "./api";
import { roleIn, setupToken } from "./logic";
import { clearToasts } from "./ui";

export type AuthState =
  | { status: "loading" }
  | { status: "signed-in"; me: Me; auto: boolean }
  /** expired: the session ended while the app was open (the views stay underneath); me is who was signed in. */
  | { status: "signed-out"; setupRequired: boolean; autoLogin: boolean; expired: boolean; me?: Me; notice?: string }
  | { status: "setup"; token: string }
  | { status: "error"; error: Error };

// sessionStorage keys: the demo's automatic sign-in happened (for the notice), or
// the user signed out on purpose (so the demo does not sign them in again at once).
const AUTO = "duplex.auto";
const NO_AUTO = "duplex.no-auto";

let state: AuthState = { status: "loading" };
let listeners: ((s: AuthState) => void)[] = [];
let teams: Promise<TeamRole[]> | undefined;

function set(s: AuthState) {
  state = s;
  session.csrf = s.status === "signed-in" ? (s.me.csrf_token ?? "") : "";
  if (s.status !== "signed-in") teams = undefined;
  listeners.forEach((l) => l(s));
}

const store = {
  get: (k: string) => {
    try {
      return sessionStorage.getItem(k);
    } catch {
      return null;
    }
  },
  put: (k: string, v: string | null) => {
    try {
      if (v === null) sessionStorage.removeItem(k);
      else sessionStorage.setItem(k, v);
    } catch {
      /* private mode: the notice is then shown only until reload */
    }
  },
};

export function authState(): AuthState {
  return state;
}

/** The signed-in user (or, while the sign-in screen is over the views, who was). */
export function currentMe(s: AuthState = state): Me | undefined {
  return s.status === "signed-in" ? s.me : s.status === "signed-out" ? s.me : undefined;
}

/** useRole is the user's role in the team that owns a row (see roleIn). */
export function useRole(teamId: number | undefined) {
  const me = currentMe(useAuth());
  return me ? roleIn(me, teamId) : undefined;
}

/** useTeams gives the team list for names and pickers (the user's own teams until /api/teams answers). */
export function useTeams(): TeamRole[] {
  const s = useAuth();
  const me = currentMe(s);
  const [list, setList] = useState<TeamRole[] | undefined>();
  useEffect(() => {
    let live = true;
    void loadTeams().then((t) => live && setList(t));
    return () => {
      live = false;
    };
  }, [me?.user.id]);
  return list ?? me?.teams ?? [];
}

/** useTeamDirectory lists every team by name (undefined until it answers). */
export function useTeamDirectory(): TeamRole[] | undefined {
  const [list, setList] = useState<TeamRole[] | undefined>();
  useEffect(() => {
    let live = true;
    api.teamDirectory().then((t) => live && setList(t), () => undefined);
    return () => {
      live = false;
    };
  }, []);
  return list;
}

export function useAuth(): AuthState {
  const [s, setS] = useState(state);
  useEffect(() => {
    listeners.push(setS);
    setS(state);
    return () => {
      listeners = listeners.filter((l) => l !== setS);
    };
  }, []);
  return s;
}

/** signedIn records a me body from /api/me, sign-in, setup or the demo's sign-in. */
export function signedIn(me: Me, auto = false) {
  if (auto) store.put(AUTO, "1");
  store.put(NO_AUTO, null);
  // The setup link is a path (/setup?token=…); once used, the app lives at / again.
  if (location.pathname !== "/" || location.search) history.replaceState(null, "", "/" + (location.hash || "#/connections"));
  set({ status: "signed-in", me, auto: auto || store.get(AUTO) === "1" });
}

function fromUnauthenticated(err: ApiError, extra: { expired: boolean; me?: Me; notice?: string }): AuthState {
  const b = err.body as Unauthenticated;
  return { status: "signed-out", setupRequired: !!b.setup_required, autoLogin: !!b.auto_login, ...extra };
}

/** start asks the server who we are and signs in automatically when the demo allows it. */
export async function start(): Promise<void> {
  set({ status: "loading" });
  try {
    signedIn(await api.me());
    return;
  } catch (e) {
    const err = e as ApiError;
    if (!(err instanceof ApiError) || err.status !== 401) {
      set({ status: "error", error: err });
      return;
    }
    const b = err.body as Unauthenticated;
    const token = setupToken(location);
    if (b.setup_required && token !== undefined) {
      set({ status: "setup", token });
      return;
    }
    if (token !== undefined && !b.setup_required) {
      set(fromUnauthenticated(err, { expired: false, notice: "This setup link was used already: the first admin exists. Sign in with that account." }));
      return;
    }
    if (b.auto_login && store.get(NO_AUTO) !== "1") {
      try {
        signedIn(await api.autoLogin(), true);
        return;
      } catch {
        /* not on loopback after all: the form */
      }
    }
    set(fromUnauthenticated(err, { expired: false }));
  }
}

/** autoSignIn is the demo's "sign in automatically" button after a deliberate sign-out. */
export async function autoSignIn(): Promise<void> {
  signedIn(await api.autoLogin(), true);
}

export async function signOut(): Promise<void> {
  try {
    await api.logout();
  } catch {
    /* the session is gone either way */
  }
  store.put(AUTO, null);
  store.put(NO_AUTO, "1");
  clearToasts();
  await start();
}

/** The teams to name rows with: every team for an org admin, else the user's own. Loaded once per sign-in. */
export function loadTeams(): Promise<TeamRole[]> {
  if (state.status !== "signed-in") return Promise.resolve([]);
  const mine = state.me.teams;
  teams ??= api.teams().catch(() => {
    teams = undefined;
    return mine;
  });
  return teams;
}

/** Refresh the me body (roles or name changed, or a new CSRF token). */
export async function refreshMe(): Promise<Me | undefined> {
  try {
    const me = await api.me();
    if (state.status === "signed-in") set({ ...state, me });
    else signedIn(me);
    return me;
  } catch {
    return undefined;
  }
}

// The fetch wrapper's hooks.
session.onUnauthenticated = (err) => {
  if (state.status !== "signed-in") return;
  const was = state;
  set(fromUnauthenticated(err, { expired: true, me: was.me, notice: "Your session has ended. Sign in again to go on where you were." }));
  // The demo signs in again by itself (loopback only); the views stay as they were.
  if ((err.body as Unauthenticated).auto_login && store.get(NO_AUTO) !== "1") autoSignIn().catch(() => {});
};
session.refreshCsrf = async () => (await refreshMe())?.csrf_token ?? "";
