// Agents: the list, and one form to create or edit an agent's instructions, model, tools,
// memory policy and approvals.
import { all, api } from "../api.js";
import { html, useEffect, useState } from "../lib.js";
import { href, navigate } from "../router.js";
import { Empty, ErrorNote, Loading, ago, useAction, useLoad } from "../ui.js";

const BUILTIN_TOOLS = [
  "calculator",
  "current_time",
  "memory_search",
  "memory_save",
  "core_memory_append",
  "core_memory_replace",
];

export function AgentsPage() {
  const agents = useLoad(() => all("/v1/agents"), []);
  return html`
    <section>
      <div class="heading">
        <h1>Agents</h1>
        <a class="button" href="#/agents/new">New agent</a>
      </div>
      <${ErrorNote} error=${agents.error} />
      ${agents.loading && !agents.data ? html`<${Loading} />` : null}
      ${agents.data && agents.data.length === 0
        ? html`<${Empty}>No agents yet. <a href="#/agents/new">Create the first one.</a><//>`
        : null}
      ${agents.data && agents.data.length > 0
        ? html`<table>
            <thead><tr><th>Name</th><th>Model</th><th>Tools</th><th>Updated</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              ${agents.data.map(
                (agent) => html`<tr>
                  <td><a href=${href(["agents", agent.id])}>${agent.name}</a></td>
                  <td><code>${agent.model}</code></td>
                  <td>${agent.tools.length ? agent.tools.join(", ") : html`<span class="muted">none</span>`}</td>
                  <td>${ago(agent.updated_at)}</td>
                  <td class="actions">
                    <a href=${href(["chat", agent.id])}>Chat</a>
                    <a href=${href(["runs"], { agent_id: agent.id })}>Runs</a>
                    <a href=${href(["memories"], { agent: agent.id })}>Memories</a>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : null}
    </section>`;
}

function names(text) {
  return text
    .split(/[\s,]+/)
    .map((name) => name.trim())
    .filter(Boolean);
}

function blank() {
  return {
    name: "",
    instructions: "",
    model: "local",
    tools: "",
    max_steps: 8,
    tool_choice: "auto",
    recall_k: 5,
    history_messages: 20,
    save_episodes: true,
    extract_facts: true,
    approval_tools: "",
  };
}

function fromAgent(agent) {
  return {
    name: agent.name,
    instructions: agent.instructions,
    model: agent.model,
    tools: agent.tools.join(", "),
    max_steps: agent.max_steps,
    tool_choice: agent.tool_choice,
    recall_k: agent.memory.recall_k,
    history_messages: agent.memory.history_messages,
    save_episodes: agent.memory.save_episodes,
    extract_facts: agent.memory.extract_facts,
    approval_tools: agent.approval.tools.join(", "),
  };
}

function body(form) {
  return {
    name: form.name.trim(),
    instructions: form.instructions,
    model: form.model.trim(),
    tools: names(form.tools),
    max_steps: Number(form.max_steps),
    tool_choice: form.tool_choice,
    memory: {
      recall_k: Number(form.recall_k),
      history_messages: Number(form.history_messages),
      save_episodes: form.save_episodes,
      extract_facts: form.extract_facts,
    },
    approval: { tools: names(form.approval_tools) },
  };
}

export function AgentForm({ agentId }) {
  const existing = useLoad(
    () => (agentId ? api("GET", `/v1/agents/${encodeURIComponent(agentId)}`) : Promise.resolve(null)),
    [agentId],
  );
  const [form, setForm] = useState(blank);
  const [saved, setSaved] = useState(false);
  const save = useAction();
  useEffect(() => {
    setForm(existing.data ? fromAgent(existing.data) : blank());
  }, [existing.data]);
  if (agentId && existing.error) return html`<${ErrorNote} error=${existing.error} />`;
  if (agentId && !existing.data) return html`<${Loading} />`;

  const set = (name) => (event) => {
    const target = event.target;
    setSaved(false);
    setForm({ ...form, [name]: target.type === "checkbox" ? target.checked : target.value });
  };
  async function submit(event) {
    event.preventDefault();
    const agent = await save.act(() =>
      agentId
        ? api("PATCH", `/v1/agents/${encodeURIComponent(agentId)}`, { body: body(form) })
        : api("POST", "/v1/agents", { body: body(form) }),
    );
    if (!agent) return;
    setSaved(true);
    if (!agentId) navigate(["agents", agent.id]);
    else existing.reload();
  }
  async function remove() {
    if (!window.confirm(`Delete the agent ${existing.data.name}, its sessions, runs and memories?`)) return;
    const done = await save.act(() => api("DELETE", `/v1/agents/${encodeURIComponent(agentId)}`));
    if (done !== undefined) navigate(["agents"]);
  }
  return html`
    <section>
      <div class="heading">
        <h1>${agentId ? existing.data.name : "New agent"}</h1>
        ${agentId
          ? html`<div class="actions">
              <a class="button" href=${href(["chat", agentId])}>Open in playground</a>
              <a href=${href(["runs"], { agent_id: agentId })}>Runs</a>
              <a href=${href(["memories"], { agent: agentId })}>Memories</a>
            </div>`
          : null}
      </div>
      <form class="agent-form" onSubmit=${submit}>
        <label for="agent-name">Name</label>
        <input id="agent-name" required maxlength="128" value=${form.name} onInput=${set("name")} />
        <label for="agent-instructions">Instructions</label>
        <textarea id="agent-instructions" rows="6" maxlength="20000" value=${form.instructions}
          onInput=${set("instructions")}></textarea>
        <div class="row">
          <div>
            <label for="agent-model">Model</label>
            <input id="agent-model" required value=${form.model} onInput=${set("model")} />
            <p class="hint">An alias of the inference layer; <code>local</code> is the bundled model.</p>
          </div>
          <div>
            <label for="agent-max-steps">Most steps per run</label>
            <input id="agent-max-steps" type="number" min="1" max="50" value=${form.max_steps}
              onInput=${set("max_steps")} />
          </div>
          <div>
            <label for="agent-tool-choice">First step</label>
            <select id="agent-tool-choice" value=${form.tool_choice} onChange=${set("tool_choice")}>
              <option value="auto">auto</option>
              <option value="required">required (a tool call)</option>
              <option value="none">none (no tools)</option>
            </select>
          </div>
        </div>
        <label for="agent-tools">Tools</label>
        <input id="agent-tools" value=${form.tools} onInput=${set("tools")} placeholder="calculator, current_time" />
        <p class="hint">Comma-separated. Built in: ${BUILTIN_TOOLS.join(", ")}.</p>
        <fieldset>
          <legend>Memory</legend>
          <div class="row">
            <div>
              <label for="agent-recall">Memories recalled per message</label>
              <input id="agent-recall" type="number" min="0" max="50" value=${form.recall_k} onInput=${set("recall_k")} />
            </div>
            <div>
              <label for="agent-history">Recent messages kept</label>
              <input id="agent-history" type="number" min="0" max="200" value=${form.history_messages}
                onInput=${set("history_messages")} />
            </div>
          </div>
          <label class="check"><input type="checkbox" checked=${form.save_episodes} onChange=${set("save_episodes")} />
            Store each exchange as a memory</label>
          <label class="check"><input type="checkbox" checked=${form.extract_facts} onChange=${set("extract_facts")} />
            Extract durable facts after a run</label>
        </fieldset>
        <label for="agent-approval">Tools that need approval</label>
        <input id="agent-approval" value=${form.approval_tools} onInput=${set("approval_tools")} placeholder="* for every tool" />
        <${ErrorNote} error=${save.error} />
        <div class="actions">
          <button type="submit" disabled=${save.busy}>${agentId ? "Save" : "Create agent"}</button>
          ${saved ? html`<span class="ok" role="status">Saved.</span>` : null}
          ${agentId ? html`<button type="button" class="danger" onClick=${remove} disabled=${save.busy}>Delete</button>` : null}
        </div>
      </form>
    </section>`;
}
