// Small pieces every page uses: loading data, errors, badges, times, JSON.
import { html, useCallback, useEffect, useRef, useState } from "./lib.js";

// Run `load` when `deps` change: {data, error, loading, reload}. A newer load wins; until the
// load for the current deps has answered, data is null (never the previous deps' data).
export function useLoad(load, deps) {
  const key = JSON.stringify(deps);
  const [state, setState] = useState({ key: null, data: null, error: null, loading: true });
  const generation = useRef(0);
  const run = useCallback(async () => {
    const mine = ++generation.current;
    setState((previous) => ({ ...previous, loading: true, error: null }));
    try {
      const data = await load();
      if (mine === generation.current) setState({ key, data, error: null, loading: false });
    } catch (error) {
      if (mine === generation.current) setState({ key, data: null, error, loading: false });
    }
  }, deps);
  useEffect(() => {
    run();
  }, [run]);
  if (state.key !== key) return { data: null, error: null, loading: true, reload: run };
  return { ...state, reload: run };
}

// An action's busy flag and error: `act(fn)` runs fn and keeps its error for display.
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const act = useCallback(async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (failure) {
      setError(failure);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, act, setError };
}

export function ErrorNote({ error }) {
  if (!error) return null;
  const where = error.param ? html` <span class="muted">(${error.param})</span>` : "";
  return html`<p class="error" role="alert">${error.message}${where}</p>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="muted" aria-live="polite">${what}…</p>`;
}

export function Status({ status }) {
  return html`<span class=${`badge badge-${status}`}>${status.replaceAll("_", " ")}</span>`;
}

export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function ago(value) {
  if (!value) return "—";
  const seconds = Math.round((Date.now() - new Date(value).getTime()) / 1000);
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return when(value);
}

export function duration(start, end) {
  if (!start) return "—";
  const ms = new Date(end ?? Date.now()).getTime() - new Date(start).getTime();
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function usd(value) {
  return value ? `$${Number(value).toFixed(6)}` : "$0";
}

// Pretty JSON of a value, or of a string that holds JSON (tool arguments); else the text.
export function pretty(value) {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

export function short(id) {
  return id ? String(id).slice(0, 8) : "—";
}

export function Empty({ children }) {
  return html`<p class="empty muted">${children}</p>`;
}
