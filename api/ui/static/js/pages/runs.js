// Runs: the tenant's runs newest first, filtered by status, agent and end user (the filters
// are in the address, so a filtered view can be shared), a page at a time.
import { all, api } from "../api.js";
import { html, useState } from "../lib.js";
import { href, navigate } from "../router.js";
import { Empty, ErrorNote, Loading, Status, ago, duration, short, usd, useLoad } from "../ui.js";

const STATUSES = ["queued", "running", "requires_action", "succeeded", "failed", "cancelled", "incomplete"];

export function RunsPage({ query }) {
  const filters = {
    status: query.get("status") ?? "",
    agent_id: query.get("agent_id") ?? "",
    user_id: query.get("user_id") ?? "",
  };
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const key = JSON.stringify(filters);
  const agents = useLoad(() => all("/v1/agents"), []);
  const runs = useLoad(() => api("GET", "/v1/runs", { query: { ...filters, limit: 25, cursor } }), [key, cursor]);
  const names = Object.fromEntries((agents.data ?? []).map((agent) => [agent.id, agent.name]));
  const [user, setUser] = useState(filters.user_id);
  function filter(change) {
    setCursors([null]);
    navigate(["runs"], { ...filters, ...change });
  }
  return html`
    <section>
      <div class="heading"><h1>Runs</h1><button class="link" onClick=${() => runs.reload()}>Refresh</button></div>
      <form class="filters" onSubmit=${(e) => { e.preventDefault(); filter({ user_id: user.trim() }); }}>
        <label>Status
          <select value=${filters.status} onChange=${(e) => filter({ status: e.target.value })}>
            <option value="">any</option>
            ${STATUSES.map((status) => html`<option value=${status}>${status.replaceAll("_", " ")}</option>`)}
          </select>
        </label>
        <label>Agent
          <select value=${filters.agent_id} onChange=${(e) => filter({ agent_id: e.target.value })}>
            <option value="">any</option>
            ${(agents.data ?? []).map((agent) => html`<option value=${agent.id}>${agent.name}</option>`)}
          </select>
        </label>
        <label>End user
          <input value=${user} onInput=${(e) => setUser(e.target.value)} placeholder="user id" />
        </label>
        <button type="submit">Filter</button>
      </form>
      <${ErrorNote} error=${runs.error} />
      ${runs.loading && !runs.data ? html`<${Loading} />` : null}
      ${runs.data && runs.data.data.length === 0 ? html`<${Empty}>No runs match.<//>` : null}
      ${runs.data && runs.data.data.length > 0
        ? html`<table>
            <thead><tr><th>Run</th><th>Status</th><th>Agent</th><th>Input</th><th>Steps</th><th>Tokens</th><th>Cost</th><th>Took</th><th>Created</th></tr></thead>
            <tbody>
              ${runs.data.data.map(
                (run) => html`<tr>
                  <td><a href=${href(["runs", run.id])}><code>${short(run.id)}</code></a></td>
                  <td><${Status} status=${run.status} /></td>
                  <td>${names[run.agent_id] ?? short(run.agent_id)}</td>
                  <td class="clip" title=${run.input}>${run.input}</td>
                  <td>${run.steps}</td>
                  <td>${run.usage.prompt_tokens + run.usage.completion_tokens}</td>
                  <td>${usd(run.usage.cost_usd)}</td>
                  <td>${duration(run.started_at, run.finished_at)}</td>
                  <td>${ago(run.created_at)}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : null}
      <div class="actions">
        ${cursors.length > 1 ? html`<button class="link" onClick=${() => setCursors(cursors.slice(0, -1))}>Newer</button>` : null}
        ${runs.data?.next_cursor ? html`<button class="link" onClick=${() => setCursors([...cursors, runs.data.next_cursor])}>Older</button>` : null}
      </div>
    </section>`;
}
