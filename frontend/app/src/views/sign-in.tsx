// The screens before the app: sign-in (also shown over the views when a
// session ends), the first-run "create the first admin" form, and a start-up error.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { autoSignIn, signedIn, start, type AuthState } from "../auth";
import { waitText } from "../logic";
import { ErrorBox } from "../ui";

function Brand() {
  return (
    <div class="auth-brand">
      <span class="logo" aria-hidden="true">
        ⇄
      </span>{" "}
      Duplex
    </div>
  );
}

/** useCountdown counts a 429's Retry-After down to zero, once a second. */
function useCountdown(): [number, (s: number) => void] {
  const [left, setLeft] = useState(0);
  useEffect(() => {
    if (left <= 0) return;
    const t = setTimeout(() => setLeft(left - 1), 1000);
    return () => clearTimeout(t);
  }, [left]);
  return [left, setLeft];
}

const value = (e: Event) => (e.currentTarget as HTMLInputElement).value;

export function SignIn({ state, overlay }: { state: Extract<AuthState, { status: "signed-out" }>; overlay?: boolean }) {
  const [email, setEmail] = useState(state.me?.user.email ?? "");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const [wait, setWait] = useCountdown();

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      signedIn(await api.login(email.trim(), password));
    } catch (err) {
      setError(err as Error);
      if (err instanceof ApiError && err.status === 429) setWait(err.retryAfter ?? 30);
      setPassword("");
    } finally {
      setBusy(false);
    }
  };
  const auto = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await autoSignIn();
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  const code = error instanceof ApiError ? error.code : undefined;
  const form = (
    <form class="form auth" onSubmit={submit} data-testid="sign-in" aria-labelledby="sign-in-title">
      <Brand />
      <h2 id="sign-in-title">Sign in</h2>
      {state.notice && <div class="notice">{state.notice}</div>}
      {state.setupRequired && (
        <div class="notice">
          Duplex has no users yet. Open the setup link that <code>duplex serve</code> printed, or start it with{" "}
          <code>DUPLEX_ADMIN_EMAIL</code> and <code>DUPLEX_ADMIN_PASSWORD</code> set.
        </div>
      )}
      <label class="field">
        <span>Email</span>
        <input name="email" type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(value(e))} autoFocus={!email} />
      </label>
      <label class="field">
        <span>Password</span>
        <input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(value(e))} autoFocus={!!email} />
      </label>
      {error &&
        (code === "invalid_credentials" ? (
          <div class="inline-error" role="alert">
            Wrong email or password.
          </div>
        ) : code === "rate_limited" || (error instanceof ApiError && error.status === 429) ? (
          <div class="inline-error" role="alert" data-testid="rate-limited">
            Too many sign-in attempts. {wait > 0 ? <>Try again in {waitText(wait)}.</> : <>You can try again now.</>}
          </div>
        ) : (
          <ErrorBox error={error} />
        ))}
      <div class="actions">
        <button class="btn primary" type="submit" disabled={busy || wait > 0 || !email.trim() || !password}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {state.autoLogin && (
          <button class="btn" type="button" onClick={auto} disabled={busy}>
            Sign in automatically (demo)
          </button>
        )}
      </div>
    </form>
  );
  return overlay ? (
    <div class="overlay" role="dialog" aria-modal="true">
      {form}
    </div>
  ) : (
    <div class="auth-page">{form}</div>
  );
}

export function Setup({ token }: { token: string }) {
  const [f, setF] = useState({ email: "", name: "", password: "", again: "" });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const [problem, setProblem] = useState<string>();
  const field = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: value(e) });

  const submit = async (e: Event) => {
    e.preventDefault();
    if (f.password !== f.again) {
      setProblem("The two passwords differ.");
      return;
    }
    setProblem(undefined);
    setBusy(true);
    setError(undefined);
    try {
      signedIn(await api.setup({ token, email: f.email.trim(), name: f.name.trim(), password: f.password }));
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="auth-page">
      <form class="form auth" onSubmit={submit} data-testid="setup">
        <Brand />
        <h2>Create the first admin</h2>
        <p class="muted small">
          This account administers the organisation: it creates teams and users. The setup link works once.
        </p>
        {!token && <div class="inline-error">The setup link has no token: copy the whole link that <code>duplex serve</code> printed.</div>}
        <label class="field">
          <span>Email</span>
          <input name="email" type="email" autocomplete="username" required value={f.email} onInput={field("email")} autoFocus />
        </label>
        <label class="field">
          <span>Name</span>
          <input name="name" autocomplete="name" required value={f.name} onInput={field("name")} />
        </label>
        <label class="field">
          <span>Password</span>
          <input name="password" type="password" autocomplete="new-password" required value={f.password} onInput={field("password")} />
        </label>
        <label class="field">
          <span>Password again</span>
          <input name="again" type="password" autocomplete="new-password" required value={f.again} onInput={field("again")} />
        </label>
        {problem && <div class="inline-error">{problem}</div>}
        {error && <ErrorBox error={error} />}
        <div class="actions">
          <button class="btn primary" type="submit" disabled={busy || !token || !f.email.trim() || !f.name.trim() || !f.password}>
            {busy ? "Creating…" : "Create admin and sign in"}
          </button>
        </div>
      </form>
    </div>
  );
}

export function StartError({ error }: { error: Error }) {
  return (
    <div class="auth-page">
      <div class="form auth">
        <Brand />
        <ErrorBox error={error} retry={() => void start()} />
      </div>
    </div>
  );
}
