// Batches: the list with progress; one batch's progress (refreshed while it runs), its results
// as they finish, and cancel.
import { api, text } from "../api.js";
import { html, useEffect, useState } from "../lib.js";
import { href } from "../router.js";
import { Empty, ErrorNote, Loading, Status, ago, short, usd, useAction, useLoad } from "../ui.js";

const ENDED = ["succeeded", "completed", "failed", "cancelled"];

function Progress({ counts }) {
  const done = counts.succeeded + counts.failed + counts.cancelled;
  return html`<span class="progress">
    <progress max=${counts.total} value=${done} aria-label=${`${done} of ${counts.total} done`}></progress>
    ${done}/${counts.total}${counts.failed ? html` <span class="error-text">${counts.failed} failed</span>` : null}
  </span>`;
}

export function BatchesPage() {
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const batches = useLoad(() => api("GET", "/v1/batches", { query: { limit: 25, cursor } }), [cursor]);
  return html`
    <section>
      <div class="heading"><h1>Batches</h1><button class="link" onClick=${() => batches.reload()}>Refresh</button></div>
      <p class="muted">Start one with <code>agentmill batch submit</code>, the SDK or <code>POST /v1/batches</code>.</p>
      <${ErrorNote} error=${batches.error} />
      ${!batches.data ? html`<${Loading} />` : null}
      ${batches.data && batches.data.data.length === 0 ? html`<${Empty}>No batches.<//>` : null}
      ${batches.data && batches.data.data.length > 0
        ? html`<table>
            <thead><tr><th>Batch</th><th>Status</th><th>Progress</th><th>Cost</th><th>Created</th></tr></thead>
            <tbody>${batches.data.data.map(
              (batch) => html`<tr>
                <td><a href=${href(["batches", batch.id])}><code>${short(batch.id)}</code></a></td>
                <td><${Status} status=${batch.status} /></td>
                <td><${Progress} counts=${batch.counts} /></td>
                <td>${usd(batch.usage.cost_usd)}</td>
                <td>${ago(batch.created_at)}</td>
              </tr>`,
            )}</tbody>
          </table>`
        : null}
      <div class="actions">
        ${cursors.length > 1 ? html`<button class="link" onClick=${() => setCursors(cursors.slice(0, -1))}>Newer</button>` : null}
        ${batches.data?.next_cursor ? html`<button class="link" onClick=${() => setCursors([...cursors, batches.data.next_cursor])}>Older</button>` : null}
      </div>
    </section>`;
}

// The finished items, read from the NDJSON results stream.
async function results(batchId) {
  const lines = await text(`/v1/batches/${batchId}/results`);
  return lines.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
}

export function BatchPage({ batchId }) {
  const batch = useLoad(() => api("GET", `/v1/batches/${batchId}`), [batchId]);
  const finished = useLoad(() => results(batchId), [batchId]);
  const cancel = useAction();
  const running = batch.data && !ENDED.includes(batch.data.status);
  useEffect(() => {
    if (!running) return undefined;
    const timer = setInterval(() => {
      batch.reload();
      finished.reload();
    }, 2000);
    return () => clearInterval(timer);
  }, [running]);
  if (batch.error) return html`<${ErrorNote} error=${batch.error} />`;
  if (!batch.data) return html`<${Loading} />`;
  const b = batch.data;
  async function stop() {
    if (!window.confirm("Cancel this batch? Items not finished are cancelled.")) return;
    await cancel.act(() => api("POST", `/v1/batches/${batchId}/cancel`));
    batch.reload();
    finished.reload();
  }
  return html`
    <section>
      <div class="heading">
        <h1>Batch <code>${short(b.id)}</code></h1>
        <${Status} status=${b.status} />
        ${running ? html`<button class="danger" onClick=${stop} disabled=${cancel.busy || b.cancel_requested}>Cancel</button>` : null}
      </div>
      <${ErrorNote} error=${cancel.error} />
      <dl class="facts">
        <dt>Agent</dt><dd><a href=${href(["agents", b.agent_id])}>${short(b.agent_id)}</a></dd>
        <dt>Progress</dt><dd><${Progress} counts=${b.counts} /></dd>
        <dt>Queued / running</dt><dd>${b.counts.pending + b.counts.queued} / ${b.counts.running}</dd>
        <dt>Concurrency</dt><dd>${b.concurrency}</dd>
        <dt>Tokens</dt><dd>${b.usage.prompt_tokens} in / ${b.usage.completion_tokens} out</dd>
        <dt>Cost</dt><dd>${usd(b.usage.cost_usd)}</dd>
        <dt>Created</dt><dd>${ago(b.created_at)}</dd>
      </dl>
      <h2>Results</h2>
      <${ErrorNote} error=${finished.error} />
      ${finished.data
        ? finished.data.length
          ? html`<table>
              <thead><tr><th>#</th><th>Status</th><th>Input</th><th>Output</th><th>Run</th></tr></thead>
              <tbody>${finished.data.map(
                (item) => html`<tr key=${item.position}>
                  <td>${item.position}</td>
                  <td><${Status} status=${item.status} /></td>
                  <td class="clip" title=${item.input}>${item.input}</td>
                  <td class="clip" title=${item.output ?? ""}>${item.output ?? (item.error ? html`<span class="error-text">${item.error.message}</span>` : "")}</td>
                  <td>${item.run_id ? html`<a href=${href(["runs", item.run_id])}>${short(item.run_id)}</a>` : "—"}</td>
                </tr>`,
              )}</tbody>
            </table>`
          : html`<${Empty}>No item has finished yet.<//>`
        : html`<${Loading} />`}
    </section>`;
}
