// The playground: pick an agent and a session (or start one for an end user), send messages
// and watch the answer stream in, tool calls and their results inline; cancel a run; approve,
// deny or answer the calls it waits on.
import { all, api, events } from "../api.js";
import { html, useEffect, useRef, useState } from "../lib.js";
import { href, navigate } from "../router.js";
import { Empty, ErrorNote, Loading, ago, short, useAction, useLoad } from "../ui.js";
import { ToolCall, Turn, emptyTurn, fold } from "./live.js";

const ACTIVE = ["queued", "running", "requires_action"];

function AgentPicker() {
  const agents = useLoad(() => all("/v1/agents"), []);
  if (agents.error) return html`<${ErrorNote} error=${agents.error} />`;
  if (!agents.data) return html`<${Loading} />`;
  if (agents.data.length === 0) return html`<${Empty}>No agents. <a href="#/agents/new">Create one</a> first.<//>`;
  return html`
    <section>
      <h1>Playground</h1>
      <p>Pick an agent to talk to.</p>
      <ul class="cards">
        ${agents.data.map((agent) => html`<li><a href=${href(["chat", agent.id])}>${agent.name}</a> <code>${agent.model}</code></li>`)}
      </ul>
    </section>`;
}

function Sessions({ agentId, sessionId }) {
  const sessions = useLoad(() => api("GET", `/v1/agents/${agentId}/sessions`, { query: { limit: 50 } }), [agentId, sessionId]);
  const [userId, setUserId] = useState("");
  const start = useAction();
  async function create(event) {
    event.preventDefault();
    const made = await start.act(() =>
      api("POST", `/v1/agents/${agentId}/sessions`, { body: userId.trim() ? { user_id: userId.trim() } : {} }),
    );
    if (made) navigate(["chat", agentId], { session: made.id });
  }
  return html`
    <aside class="sessions" aria-label="Sessions">
      <form onSubmit=${create}>
        <label for="session-user">End user</label>
        <input id="session-user" placeholder="user id (optional)" value=${userId} onInput=${(e) => setUserId(e.target.value)} />
        <button type="submit" disabled=${start.busy}>New session</button>
        <${ErrorNote} error=${start.error} />
      </form>
      <${ErrorNote} error=${sessions.error} />
      <ul>
        ${(sessions.data?.data ?? []).map(
          (s) => html`<li><a href=${href(["chat", agentId], { session: s.id })} aria-current=${s.id === sessionId ? "page" : undefined}>
            ${s.user_id ?? "anonymous"} <span class="muted">${short(s.id)} · ${ago(s.created_at)}</span></a></li>`,
        )}
      </ul>
    </aside>`;
}

function Transcript({ messages, runs, turns, running }) {
  if (messages.length === 0 && running) return null;
  if (messages.length === 0) return html`<${Empty}>No messages yet: say something.<//>`;
  const answered = new Set(messages.filter((m) => m.role === "assistant").map((m) => m.run_id));
  return messages.map((message) => {
    const calls = message.role === "assistant" ? turns[message.run_id]?.calls ?? [] : [];
    const run = runs[message.run_id];
    // A run that ended without an answer (failed, cancelled, out of steps) says so.
    const unanswered = message.role === "user" && run && !answered.has(run.id) && !ACTIVE.includes(run.status);
    return html`<div key=${message.id}>
      <div class=${`message message-${message.role}`}>
        <div class="who">${message.role === "user" ? "You" : "Agent"}
          ${message.role === "assistant" && message.run_id ? html` · <a href=${href(["runs", message.run_id])}>run ${short(message.run_id)}</a>` : null}</div>
        ${calls.map((call) => html`<${ToolCall} key=${call.call_id} call=${call} />`)}
        <p>${message.content}</p>
      </div>
      ${unanswered
        ? html`<div class="message message-assistant">
            <div class="who">Agent · <a href=${href(["runs", run.id])}>run ${short(run.id)}</a></div>
            ${(turns[run.id]?.calls ?? []).map((call) => html`<${ToolCall} key=${call.call_id} call=${call} />`)}
            <p class="error">No answer: the run ended ${run.status.replaceAll("_", " ")}${run.stop_reason ? ` (${run.stop_reason.replaceAll("_", " ")})` : ""}${run.error ? `: ${run.error.message}` : ""}.</p>
          </div>`
        : null}
    </div>`;
  });
}

function Conversation({ agentId, sessionId }) {
  const history = useLoad(async () => {
    const [messages, runs] = await Promise.all([
      all(`/v1/sessions/${sessionId}/messages`),
      all(`/v1/sessions/${sessionId}/runs`),
    ]);
    return { messages, runs: Object.fromEntries(runs.map((run) => [run.id, run])) };
  }, [sessionId]);
  const [text, setText] = useState("");
  const [turn, setTurn] = useState(null);
  const [sent, setSent] = useState(null);
  const [turns, setTurns] = useState({});
  const [error, setError] = useState(null);
  const abort = useRef(null);
  const end = useRef(null);
  useEffect(() => () => abort.current?.abort(), [sessionId]);
  useEffect(() => end.current?.scrollIntoView({ block: "end" }), [turn, history.data]);

  async function follow(stream) {
    let current = emptyTurn();
    for await (const event of stream) {
      current = fold(current, event);
      setTurn(current);
    }
    return current;
  }
  async function send(event) {
    event.preventDefault();
    const content = text.trim();
    if (!content) return;
    setError(null);
    setText("");
    setSent(content);
    const controller = new AbortController();
    abort.current = controller;
    try {
      const body = { content, stream: true };
      const finished = await follow(events("POST", `/v1/sessions/${sessionId}/messages`, { body, signal: controller.signal }));
      if (finished.runId) setTurns((all) => ({ ...all, [finished.runId]: finished }));
    } catch (failure) {
      if (failure.name !== "AbortError") {
        setError(failure);
        setText(content);
      }
    } finally {
      abort.current = null;
      await history.reload(); // the transcript has the new messages before the live turn goes
      setTurn(null);
      setSent(null);
    }
  }
  async function cancel() {
    if (!turn?.runId) return;
    try {
      await api("POST", `/v1/runs/${turn.runId}/cancel`);
    } catch (failure) {
      setError(failure);
    }
  }
  const running = sent !== null;
  return html`
    <div class="conversation">
      <div class="transcript">
        ${history.error ? html`<${ErrorNote} error=${history.error} />` : null}
        ${history.data ? html`<${Transcript} messages=${history.data.messages} runs=${history.data.runs} turns=${turns} running=${sent !== null} />` : html`<${Loading} />`}
        ${running
          ? html`<div class="message message-user"><div class="who">You</div><p>${sent}</p></div>
              <div class="message message-assistant"><div class="who">Agent
                ${turn?.runId ? html` · <a href=${href(["runs", turn.runId])}>run ${short(turn.runId)}</a>` : null}</div>
                ${turn ? html`<${Turn} turn=${turn} />` : html`<p class="muted">Queued…</p>`}</div>`
          : null}
        <div ref=${end}></div>
      </div>
      <form class="composer" onSubmit=${send}>
        <label for="message" class="sr-only">Message</label>
        <textarea id="message" rows="2" placeholder="Message the agent (Enter sends, Shift+Enter a new line)" value=${text}
          disabled=${running}
          onInput=${(e) => setText(e.target.value)}
          onKeyDown=${(e) => {
            if (e.key === "Enter" && !e.shiftKey) send(e);
          }}></textarea>
        ${running
          ? html`<button type="button" class="danger" onClick=${cancel} disabled=${!turn?.runId}>Cancel</button>`
          : html`<button type="submit" disabled=${!text.trim()}>Send</button>`}
      </form>
      <${ErrorNote} error=${error} />
    </div>`;
}

export function PlaygroundPage({ agentId, sessionId }) {
  const agent = useLoad(() => (agentId ? api("GET", `/v1/agents/${agentId}`) : Promise.resolve(null)), [agentId]);
  if (!agentId) return html`<${AgentPicker} />`;
  if (agent.error) return html`<${ErrorNote} error=${agent.error} />`;
  if (!agent.data) return html`<${Loading} />`;
  return html`
    <section class="playground">
      <div class="heading">
        <h1>${agent.data.name}</h1>
        <span class="muted"><code>${agent.data.model}</code> · tools: ${agent.data.tools.join(", ") || "none"}</span>
        <a href=${href(["agents", agentId])}>Edit agent</a>
      </div>
      <div class="split">
        <${Sessions} agentId=${agentId} sessionId=${sessionId} />
        ${sessionId
          ? html`<${Conversation} key=${sessionId} agentId=${agentId} sessionId=${sessionId} />`
          : html`<${Empty}>Start a new session, or open one on the left.<//>`}
      </div>
    </section>`;
}
