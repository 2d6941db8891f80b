// One run: its state, usage and cost; the timeline of steps with the exact context the model
// saw, its output and the tool calls with arguments and results; and its events, live while
// it runs (the page follows the event stream and re-reads the steps as they land).
import { api, events } from "../api.js";
import { html, useEffect, useState } from "../lib.js";
import { href } from "../router.js";
import { ErrorNote, Loading, Status, duration, pretty, short, usd, useLoad, when } from "../ui.js";
import { ToolCall, Turn, emptyTurn, fold } from "./live.js";

const ACTIVE = ["queued", "running", "requires_action"];

function content(entry) {
  if (typeof entry.content === "string") return entry.content;
  if (Array.isArray(entry.content)) return entry.content.map((part) => part.text ?? pretty(part)).join("\n");
  return entry.content == null ? "" : pretty(entry.content);
}

function ContextEntry({ entry }) {
  return html`<div class=${`ctx ctx-${entry.role}`}>
    <div class="who">${entry.role}${entry.name ? ` · ${entry.name}` : ""}${entry.tool_call_id ? ` · ${entry.tool_call_id}` : ""}</div>
    ${content(entry) ? html`<pre>${content(entry)}</pre>` : null}
    ${entry.tool_calls ? html`<pre>${pretty(entry.tool_calls)}</pre>` : null}
  </div>`;
}

function Step({ step }) {
  return html`
    <li class="step">
      <div class="step-head">
        <strong>Step ${step.step}</strong>
        <span class="badge">${step.decision.replaceAll("_", " ")}</span>
        <span class="muted">${Math.round(step.model_ms)} ms · ${step.usage.prompt_tokens} in / ${step.usage.completion_tokens} out · ${usd(step.usage.cost_usd)}
          ${step.invalid_attempts ? ` · ${step.invalid_attempts} invalid attempts` : ""}</span>
      </div>
      <details>
        <summary>Context the model saw (${step.context.length} messages)</summary>
        <div class="context">${step.context.map((entry, i) => html`<${ContextEntry} key=${i} entry=${entry} />`)}</div>
      </details>
      <details>
        <summary>Model output</summary>
        <pre>${pretty(step.output)}</pre>
      </details>
      ${step.tool_calls.map((call) => html`<${ToolCall} key=${call.call_id} call=${call} />`)}
    </li>`;
}

export function RunPage({ runId }) {
  const run = useLoad(() => api("GET", `/v1/runs/${runId}`), [runId]);
  const steps = useLoad(() => api("GET", `/v1/runs/${runId}/steps`), [runId]);
  const [log, setLog] = useState([]);
  const [turn, setTurn] = useState(emptyTurn(runId));
  const [streamError, setStreamError] = useState(null);

  useEffect(() => {
    const controller = new AbortController();
    let current = emptyTurn(runId);
    setLog([]);
    (async () => {
      try {
        for await (const event of events("GET", `/v1/runs/${runId}/events`, { signal: controller.signal })) {
          current = fold(current, event);
          setTurn(current);
          setLog((previous) => [...previous, event]);
          if (["tool.result", "run.requires_action", "message"].includes(event.event) || event.event.startsWith("run.")) {
            steps.reload();
            run.reload();
          }
        }
      } catch (failure) {
        if (failure.name !== "AbortError") setStreamError(failure);
      }
    })();
    return () => controller.abort();
  }, [runId]);

  if (run.error) return html`<${ErrorNote} error=${run.error} />`;
  if (!run.data) return html`<${Loading} />`;
  const r = run.data;
  const active = ACTIVE.includes(r.status);
  async function cancel() {
    await api("POST", `/v1/runs/${runId}/cancel`).catch(setStreamError);
    run.reload();
  }
  return html`
    <section>
      <div class="heading">
        <h1>Run <code>${short(r.id)}</code></h1>
        <${Status} status=${r.status} />
        ${active ? html`<button class="danger" onClick=${cancel} disabled=${r.cancel_requested}>Cancel</button>` : null}
      </div>
      <dl class="facts">
        <dt>Agent</dt><dd><a href=${href(["agents", r.agent_id])}>${short(r.agent_id)}</a></dd>
        <dt>Session</dt><dd><a href=${href(["chat", r.agent_id], { session: r.session_id })}>${short(r.session_id)}</a></dd>
        ${r.batch_id ? html`<dt>Batch</dt><dd><a href=${href(["batches", r.batch_id])}>${short(r.batch_id)}</a></dd>` : null}
        <dt>Created</dt><dd>${when(r.created_at)}</dd>
        <dt>Took</dt><dd>${duration(r.started_at, r.finished_at)}</dd>
        <dt>Steps</dt><dd>${r.steps}</dd>
        <dt>Tokens</dt><dd>${r.usage.prompt_tokens} in / ${r.usage.completion_tokens} out</dd>
        <dt>Cost</dt><dd>${usd(r.usage.cost_usd)}</dd>
        <dt>Attempts</dt><dd>${r.attempts}</dd>
        ${r.stop_reason ? html`<dt>Stopped</dt><dd>${r.stop_reason}</dd>` : null}
      </dl>
      <h2>Input</h2>
      <pre class="io">${r.input}</pre>
      ${r.output !== null ? html`<h2>Output</h2><pre class="io">${r.output}</pre>` : null}
      ${r.error ? html`<p class="error">${r.error.type}: ${r.error.message}</p>` : null}
      ${active ? html`<h2>Now</h2><${Turn} turn=${turn} />` : null}
      <h2>Steps</h2>
      <${ErrorNote} error=${steps.error} />
      ${steps.data
        ? steps.data.data.length
          ? html`<ol class="timeline">${steps.data.data.map((step) => html`<${Step} key=${step.step} step=${step} />`)}</ol>`
          : html`<p class="muted">No steps yet.</p>`
        : html`<${Loading} />`}
      <h2>Events</h2>
      <${ErrorNote} error=${streamError} />
      <details open=${active}>
        <summary>${log.length} events${active ? " (live)" : ""}</summary>
        <ol class="events">
          ${log.map((event) => html`<li key=${event.id}><code>${event.id}</code> <strong>${event.event}</strong>
            <span class="muted">${summary(event)}</span></li>`)}
        </ol>
      </details>
    </section>`;
}

function summary({ data }) {
  const { run_id: _, ...rest } = data;
  const text = JSON.stringify(rest);
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}
