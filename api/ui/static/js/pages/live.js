// What a run is doing, folded from its events: streamed text per step, tool calls with their
// results, calls waiting for a decision, and the end. Used by the playground and a run's page.
import { api } from "../api.js";
import { html, useState } from "../lib.js";
import { ErrorNote, pretty } from "../ui.js";

export function emptyTurn(runId = null) {
  return { runId, lastSeq: 0, steps: {}, calls: [], pending: null, answer: null, status: null, waiting: null };
}

// The turn after one event ({id, event, data}); unknown types leave it unchanged.
export function fold(turn, { id, event, data }) {
  const next = { ...turn, lastSeq: id ?? turn.lastSeq, runId: turn.runId ?? data.run_id ?? null };
  switch (event) {
    case "step.started":
      next.waiting = null;
      next.steps = { ...turn.steps, [data.step]: { attempt: data.attempt, text: "" } };
      return next;
    case "message.delta": {
      const step = turn.steps[data.step];
      const text = step && step.attempt === data.attempt ? step.text + data.delta : data.delta;
      next.steps = { ...turn.steps, [data.step]: { attempt: data.attempt, text } };
      return next;
    }
    case "tool.call":
      next.calls = [...turn.calls, { step: data.step, call_id: data.call_id, name: data.name, arguments: data.arguments, result: null }];
      return next;
    case "tool.result":
      next.calls = turn.calls.map((call) =>
        call.call_id === data.call_id ? { ...call, result: data.result, is_error: data.is_error } : call,
      );
      return next;
    case "tool.approval":
      next.calls = turn.calls.map((call) =>
        call.call_id === data.call_id ? { ...call, approval: data.expired ? "expired" : data.decision } : call,
      );
      if (turn.pending) {
        const left = turn.pending.calls.filter((call) => call.call_id !== data.call_id);
        next.pending = left.length ? { ...turn.pending, calls: left } : null;
      }
      return next;
    case "run.requires_action": {
      next.pending = { step: data.step, calls: data.calls, expires_at: data.expires_at };
      const waiting = new Set(data.calls.map((call) => call.call_id));
      next.calls = turn.calls.map((call) => (waiting.has(call.call_id) ? { ...call, approval: "awaiting decision" } : call));
      return next;
    }
    case "run.waiting":
      next.waiting = data.message;
      return next;
    case "message":
      next.answer = data.content;
      return next;
    case "run":
      // A `wait` answer or a replay: the run itself.
      next.runId = data.id;
      next.status = data.status;
      next.answer = data.output ?? turn.answer;
      return next;
    default:
      if (event.startsWith("run.") && ["succeeded", "failed", "cancelled", "incomplete"].includes(data.status)) {
        next.status = data.status;
        next.pending = null;
        next.error = data.error ?? null;
      }
      return next;
  }
}

export function ToolCall({ call }) {
  const state = call.result === null ? call.approval ?? "running" : call.is_error ? "error" : "done";
  return html`
    <details class=${`tool-call tool-${state}`} open>
      <summary><span class="tool-name">${call.name}</span> <span class="muted">${state}</span></summary>
      <div class="tool-io">
        <div><h4>Arguments</h4><pre>${pretty(call.arguments)}</pre></div>
        ${call.result !== null ? html`<div><h4>Result</h4><pre>${pretty(call.result)}</pre></div>` : null}
      </div>
    </details>`;
}

function Decision({ runId, call, onDecided }) {
  const [message, setMessage] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function decide(decision) {
    setBusy(true);
    setError(null);
    const entry = { call_id: call.call_id, decision };
    if (message.trim()) entry.message = message.trim();
    try {
      await api("POST", `/v1/runs/${runId}/approvals`, { body: { decisions: [entry] } });
      onDecided?.();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }
  const question = call.kind === "question";
  return html`
    <div class="pending" role="group" aria-label=${`Decision on ${call.name}`}>
      <p><strong>${question ? "The agent asks" : "Approve this tool call?"}</strong> <code>${call.name}</code></p>
      <pre>${pretty(call.arguments)}</pre>
      <input aria-label=${question ? "Answer" : "Note for the model"} placeholder=${question ? "Your answer" : "Note for the model (optional)"}
        value=${message} onInput=${(e) => setMessage(e.target.value)} />
      <div class="actions">
        <button disabled=${busy || (question && !message.trim())} onClick=${() => decide(question ? "answer" : "approve")}>
          ${question ? "Answer" : "Approve"}</button>
        <button class="danger" disabled=${busy} onClick=${() => decide("deny")}>Deny</button>
      </div>
      <${ErrorNote} error=${error} />
    </div>`;
}

// A turn as it streams: each step's text, tool calls inline, decisions waiting, the answer.
export function Turn({ turn, onDecided }) {
  const steps = Object.keys(turn.steps).map(Number).sort((a, b) => a - b);
  return html`
    <div class="turn" aria-live="polite">
      ${steps.map((step) => {
        const calls = turn.calls.filter((call) => call.step === step);
        const text = turn.steps[step].text;
        return html`<div class="turn-step" key=${step}>
          ${text && !(turn.answer && step === steps[steps.length - 1]) ? html`<p class="streamed">${text}</p>` : null}
          ${calls.map((call) => html`<${ToolCall} key=${call.call_id} call=${call} />`)}
        </div>`;
      })}
      ${turn.waiting ? html`<p class="muted">Waiting: ${turn.waiting}</p>` : null}
      ${turn.pending
        ? turn.pending.calls.map((call) => html`<${Decision} key=${call.call_id} runId=${turn.runId} call=${call} onDecided=${onDecided} />`)
        : null}
      ${turn.answer ? html`<p class="answer">${turn.answer}</p>` : null}
      ${turn.status && turn.status !== "succeeded"
        ? html`<p class="error">The run ended ${turn.status}${turn.error ? `: ${turn.error.message}` : ""}.</p>`
        : null}
    </div>`;
}
