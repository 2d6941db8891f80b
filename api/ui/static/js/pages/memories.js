// Memories of an agent: search them (semantic, best first) or list them, by end user; delete
// one; erase everything of an end user. Core blocks: the agent's own and an end user's, edited
// in place, each with its version history.
import { all, api } from "../api.js";
import { html, useState } from "../lib.js";
import { navigate } from "../router.js";
import { Empty, ErrorNote, Loading, ago, useAction, useLoad, when } from "../ui.js";

function memoryQuery(agentId, user, text, cursor) {
  const query = { user_id: user || undefined };
  if (text) return api("GET", `/v1/agents/${agentId}/memories`, { query: { ...query, query: text, k: 20 } });
  return api("GET", `/v1/agents/${agentId}/memories`, { query: { ...query, limit: 50, cursor } });
}

function Memories({ agentId, user, text }) {
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const found = useLoad(() => memoryQuery(agentId, user, text, cursor), [agentId, user, text, cursor]);
  const action = useAction();
  async function remove(memory) {
    if (!window.confirm("Delete this memory?")) return;
    await action.act(() => api("DELETE", `/v1/memories/${memory.id}`));
    found.reload();
  }
  if (found.error) return html`<${ErrorNote} error=${found.error} />`;
  if (!found.data) return html`<${Loading} />`;
  const rows = found.data.data.map((row) => (row.memory ? row : { memory: row, score: null }));
  return html`
    <${ErrorNote} error=${action.error} />
    ${rows.length === 0
      ? html`<${Empty}>${text ? "Nothing found." : "No memories."}<//>`
      : html`<table class="memories">
          <thead><tr>${text ? html`<th>Score</th>` : null}<th>Memory</th><th>Kind</th><th>End user</th><th>Importance</th><th>Created</th><th><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            ${rows.map(
              ({ memory, score }) => html`<tr key=${memory.id}>
                ${text ? html`<td>${score.toFixed(3)}</td>` : null}
                <td class="memory-text">${memory.content}</td>
                <td>${memory.kind}</td>
                <td>${memory.user_id ?? html`<span class="muted">agent</span>`}</td>
                <td>${memory.importance.toFixed(2)}</td>
                <td title=${when(memory.created_at)}>${ago(memory.created_at)}</td>
                <td><button class="link danger" onClick=${() => remove(memory)} aria-label=${`Delete memory: ${memory.content.slice(0, 40)}`}>Delete</button></td>
              </tr>`,
            )}
          </tbody>
        </table>`}
    ${text
      ? null
      : html`<div class="actions">
          ${cursors.length > 1 ? html`<button class="link" onClick=${() => setCursors(cursors.slice(0, -1))}>Newer</button>` : null}
          ${found.data.next_cursor ? html`<button class="link" onClick=${() => setCursors([...cursors, found.data.next_cursor])}>Older</button>` : null}
        </div>`}`;
}

function History({ agentId, label, user }) {
  const versions = useLoad(
    () => api("GET", `/v1/agents/${agentId}/blocks/${label}/history`, { query: { user_id: user || undefined, limit: 100 } }),
    [agentId, label, user],
  );
  if (versions.error) return html`<${ErrorNote} error=${versions.error} />`;
  if (!versions.data) return html`<${Loading} />`;
  return html`<ol class="history">
    ${versions.data.data.map((v) => html`<li key=${v.version}><strong>v${v.version}</strong>
      <span class="muted">${v.author} · ${when(v.created_at)}</span><pre>${v.value}</pre></li>`)}
  </ol>`;
}

function Block({ agentId, block, onChanged }) {
  const [value, setValue] = useState(block.value);
  const [showHistory, setShowHistory] = useState(false);
  const save = useAction();
  const user = block.user_id ?? "";
  async function submit(event) {
    event.preventDefault();
    const body = { value, char_limit: block.char_limit };
    if (block.user_id) body.user_id = block.user_id;
    if (await save.act(() => api("PUT", `/v1/agents/${agentId}/blocks/${block.label}`, { body }))) onChanged();
  }
  return html`
    <form class="block" onSubmit=${submit} aria-label=${`Block ${block.label}`}>
      <div class="step-head"><strong>${block.label}</strong>
        <span class="muted">${block.user_id ? `user ${block.user_id}` : "agent"} · v${block.version} · ${value.length}/${block.char_limit} characters · ${ago(block.updated_at)}</span></div>
      <textarea rows="3" aria-label=${`Value of ${block.label}`} value=${value} maxlength=${block.char_limit}
        onInput=${(e) => setValue(e.target.value)}></textarea>
      <${ErrorNote} error=${save.error} />
      <div class="actions">
        <button type="submit" disabled=${save.busy || value === block.value}>Save</button>
        <button type="button" class="link" onClick=${() => setShowHistory(!showHistory)}>${showHistory ? "Hide history" : "History"}</button>
      </div>
      ${showHistory ? html`<${History} agentId=${agentId} label=${block.label} user=${user} />` : null}
    </form>`;
}

function Blocks({ agentId, user }) {
  const blocks = useLoad(() => api("GET", `/v1/agents/${agentId}/blocks`, { query: { user_id: user || undefined } }), [agentId, user]);
  const [label, setLabel] = useState("");
  const [value, setValue] = useState("");
  const create = useAction();
  async function add(event) {
    event.preventDefault();
    const body = { value };
    if (user) body.user_id = user;
    if (await create.act(() => api("PUT", `/v1/agents/${agentId}/blocks/${label.trim()}`, { body }))) {
      setLabel("");
      setValue("");
      blocks.reload();
    }
  }
  return html`
    <h2>Core blocks</h2>
    <${ErrorNote} error=${blocks.error} />
    ${blocks.data
      ? blocks.data.data.length
        ? blocks.data.data.map((block) => html`<${Block} key=${`${block.user_id}/${block.label}/${block.version}`} agentId=${agentId} block=${block} onChanged=${blocks.reload} />`)
        : html`<${Empty}>No core blocks${user ? ` for ${user}` : ""}.<//>`
      : html`<${Loading} />`}
    <form class="inline" onSubmit=${add}>
      <input aria-label="New block label" placeholder="label (e.g. persona)" pattern="[a-z][a-z0-9_]{0,63}" required
        value=${label} onInput=${(e) => setLabel(e.target.value)} />
      <input aria-label="New block value" placeholder="value" value=${value} onInput=${(e) => setValue(e.target.value)} />
      <button type="submit" disabled=${create.busy}>Add block${user ? ` for ${user}` : ""}</button>
    </form>
    <${ErrorNote} error=${create.error} />`;
}

export function MemoriesPage({ query }) {
  const agentId = query.get("agent") ?? "";
  const user = query.get("user") ?? "";
  const text = query.get("q") ?? "";
  const agents = useLoad(() => all("/v1/agents"), []);
  const [userInput, setUserInput] = useState(user);
  const [textInput, setTextInput] = useState(text);
  const erase = useAction();
  const [erased, setErased] = useState(null);
  const [generation, setGeneration] = useState(0);
  function go(change) {
    navigate(["memories"], { agent: agentId, user, q: text, ...change });
  }
  async function eraseUser() {
    if (!window.confirm(`Erase everything of ${user} with this agent: memories, blocks, sessions and runs?`)) return;
    const result = await erase.act(() => api("DELETE", `/v1/agents/${agentId}/users/${encodeURIComponent(user)}`));
    if (result) {
      setErased(result);
      setGeneration(generation + 1);
    }
  }
  return html`
    <section>
      <h1>Memories</h1>
      <form class="filters" onSubmit=${(e) => { e.preventDefault(); go({ user: userInput.trim(), q: textInput.trim() }); }}>
        <label>Agent
          <select value=${agentId} onChange=${(e) => go({ agent: e.target.value })} required>
            <option value="">choose an agent</option>
            ${(agents.data ?? []).map((agent) => html`<option value=${agent.id}>${agent.name}</option>`)}
          </select>
        </label>
        <label>End user <input value=${userInput} onInput=${(e) => setUserInput(e.target.value)} placeholder="any" /></label>
        <label class="grow">Search <input type="search" value=${textInput} onInput=${(e) => setTextInput(e.target.value)}
          placeholder="what to look for (empty: list newest first)" /></label>
        <button type="submit" disabled=${!agentId}>${textInput.trim() ? "Search" : "List"}</button>
        ${agentId && user ? html`<button type="button" class="danger" onClick=${eraseUser} disabled=${erase.busy}>Erase ${user}</button>` : null}
      </form>
      <${ErrorNote} error=${erase.error || agents.error} />
      ${erased ? html`<p class="ok" role="status">Erased ${erased.erased.memories} memories, ${erased.erased.blocks} blocks, ${erased.erased.sessions} sessions, ${erased.erased.runs} runs.</p>` : null}
      ${agentId
        ? html`<${Memories} key=${generation} agentId=${agentId} user=${user} text=${text} />
            <${Blocks} key=${`b${generation}`} agentId=${agentId} user=${user} />`
        : html`<${Empty}>Choose an agent.<//>`}
    </section>`;
}
