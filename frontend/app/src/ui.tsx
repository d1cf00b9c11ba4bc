// Small shared UI pieces: async loading with states, polling, toasts, pills.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";
import type { Health } from "./logic";

export interface Async<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => Promise<void>;
}

/** useAsync runs load when deps change; with every (ms) it refreshes quietly. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[], every?: number): Async<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const gen = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(async () => {
    const g = ++gen.current;
    try {
      const d = await loadRef.current();
      if (g !== gen.current) return;
      setData(d);
      setError(undefined);
    } catch (e) {
      if (g === gen.current) setError(e as Error);
    } finally {
      if (g === gen.current) setLoading(false);
    }
  }, []);
  useEffect(() => {
    setLoading(true);
    setData(undefined);
    void reload();
    if (!every) return;
    const t = setInterval(() => {
      if (document.visibilityState === "visible") void reload();
    }, every);
    return () => clearInterval(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return { data, error, loading, reload };
}

export function Loading({ what }: { what: string }) {
  return (
    <div class="state loading" role="status">
      <span class="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="state empty">
      <strong>{title}</strong>
      {children && <div class="muted">{children}</div>}
    </div>
  );
}

export function ErrorBox({ error, retry }: { error: Error; retry?: () => void }) {
  const code = error instanceof ApiError ? error.code : undefined;
  return (
    <div class="state error" role="alert">
      <strong>{code === "network" ? "Duplex is not reachable" : "Something went wrong"}</strong>
      <div>
        {error.message}
        {code && code !== "network" && <code class="code">{code}</code>}
      </div>
      {retry && (
        <button class="btn small" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** Show loading, error or the content of an Async, in that order. */
export function Loaded<T>({ a, what, children }: { a: Async<T>; what: string; children: (d: T) => ComponentChildren }) {
  if (a.data !== undefined) return <>{children(a.data)}</>;
  if (a.error) return <ErrorBox error={a.error} retry={a.reload} />;
  return <Loading what={what} />;
}

export function HealthPill({ h }: { h: Health }) {
  return <span class={`pill ${h}`}>{h}</span>;
}

export function StatusPill({ s }: { s: string }) {
  return <span class={`pill st-${s}`}>{s === "done" ? "synced" : s}</span>;
}

// ---- toasts ----

type Toast = { id: number; text: string; kind: "ok" | "error" };
let toasts: Toast[] = [];
let listeners: ((t: Toast[]) => void)[] = [];
let nextToast = 1;

/** clearToasts drops what is shown (signing out: the next person need not read it). */
export function clearToasts() {
  toasts = [];
  listeners.forEach((l) => l(toasts));
}

export function toast(text: string, kind: "ok" | "error" = "ok") {
  const t = { id: nextToast++, text, kind };
  toasts = [...toasts, t];
  listeners.forEach((l) => l(toasts));
  setTimeout(() => {
    toasts = toasts.filter((x) => x.id !== t.id);
    listeners.forEach((l) => l(toasts));
  }, kind === "error" ? 8000 : 3500);
}

export function Toasts() {
  const [list, setList] = useState<Toast[]>(toasts);
  useEffect(() => {
    listeners.push(setList);
    return () => {
      listeners = listeners.filter((l) => l !== setList);
    };
  }, []);
  return (
    <div class="toasts" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} class={`toast ${t.kind}`}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

/** run wraps an action: busy flag, toast on success, error kept for display where it happened. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const run = useCallback(async <T,>(fn: () => Promise<T>, ok?: string): Promise<T | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      const r = await fn();
      if (ok) toast(ok);
      return r;
    } catch (e) {
      setError(e as Error);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(undefined) };
}

/** Json shows a value as formatted JSON that folds away under its label and wraps long lines. */
export function Json({ value, label }: { value: unknown; label?: string }) {
  if (value === undefined || value === null) return <div class="muted">{label ? `No ${label}.` : "—"}</div>;
  const n = typeof value === "object" ? Object.keys(value as object).length : 0;
  return (
    <details class="json-box" open>
      <summary class="muted small">
        {label ?? "JSON"}
        {typeof value === "object" && ` · ${n === 1 ? "1 field" : `${n} fields`}`}
      </summary>
      <pre class="json">{JSON.stringify(value, null, 2)}</pre>
    </details>
  );
}
