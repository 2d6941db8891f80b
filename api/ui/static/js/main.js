// The dashboard: sign in with an API key, then the pages, each a hash route.
import { api, session } from "./api.js";
import { html, render, useEffect, useState } from "./lib.js";
import { AgentForm, AgentsPage } from "./pages/agents.js";
import { BatchPage, BatchesPage } from "./pages/batches.js";
import { PlaygroundPage } from "./pages/chat.js";
import { MemoriesPage } from "./pages/memories.js";
import { RunPage } from "./pages/run.js";
import { RunsPage } from "./pages/runs.js";
import { useRoute } from "./router.js";
import { ErrorNote } from "./ui.js";

const SECTIONS = [
  ["agents", "Agents"],
  ["chat", "Playground"],
  ["runs", "Runs"],
  ["memories", "Memories"],
  ["batches", "Batches"],
];

function page({ parts, query }) {
  const [section = "agents", id] = parts;
  switch (section) {
    case "agents":
      return id ? html`<${AgentForm} agentId=${id === "new" ? null : id} />` : html`<${AgentsPage} />`;
    case "chat":
      return html`<${PlaygroundPage} agentId=${id ?? query.get("agent")} sessionId=${query.get("session")} />`;
    case "runs":
      return id ? html`<${RunPage} runId=${id} />` : html`<${RunsPage} query=${query} />`;
    case "memories":
      return html`<${MemoriesPage} query=${query} />`;
    case "batches":
      return id ? html`<${BatchPage} batchId=${id} />` : html`<${BatchesPage} />`;
    default:
      return html`<p>No such page. <a href="#/agents">Go to the agents.</a></p>`;
  }
}

function SignIn({ onSignedIn }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await api("GET", "/v1/me", { key: key.trim() });
      session.signIn(key.trim());
      onSignedIn(me);
    } catch (failure) {
      setError(failure.status === 401 ? new Error("That API key is not valid.") : failure);
    } finally {
      setBusy(false);
    }
  }
  return html`
    <main class="signin">
      <form onSubmit=${submit} aria-labelledby="signin-title">
        <h1 id="signin-title">agentmill</h1>
        <p class="muted">Sign in with an API key (<code>agentmill keys create</code> makes one).
          It is kept in this tab only.</p>
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" required value=${key}
          onInput=${(e) => setKey(e.target.value)} />
        <${ErrorNote} error=${error} />
        <button type="submit" disabled=${busy || !key.trim()}>Sign in</button>
      </form>
    </main>`;
}

function App() {
  const [me, setMe] = useState(null);
  const [checking, setChecking] = useState(Boolean(session.key()));
  const route = useRoute();
  useEffect(() => session.onSignOut(() => setMe(null)), []);
  useEffect(() => {
    if (!session.key()) return;
    api("GET", "/v1/me")
      .then(setMe)
      .catch(() => session.signOut())
      .finally(() => setChecking(false));
  }, []);
  if (checking) return html`<p class="muted">Signing in…</p>`;
  if (!me) return html`<${SignIn} onSignedIn=${setMe} />`;
  const current = route.parts[0] ?? "agents";
  return html`
    <div class="shell">
      <header class="top">
        <a class="brand" href="#/agents">agentmill</a>
        <nav aria-label="Sections">
          ${SECTIONS.map(
            ([name, title]) => html`<a href=${`#/${name}`} aria-current=${current === name ? "page" : undefined}>${title}</a>`,
          )}
        </nav>
        <span class="tenant muted" title=${me.tenant_id}>${me.tenant_name}</span>
        <a class="muted" href="/docs" target="_blank" rel="noopener">API docs</a>
        <button class="link" onClick=${() => session.signOut()}>Sign out</button>
      </header>
      <main class="content">${page(route)}</main>
    </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
