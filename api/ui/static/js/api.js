// The REST API as the signed-in key sees it. The key lives in this tab's sessionStorage only:
// closing the tab signs out, and no other site or tab can read it.

const KEY = "agentmill.apiKey";
const signOutListeners = new Set();

export class ApiError extends Error {
  constructor(status, type, message, param) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param ?? null;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key),
  signOut() {
    sessionStorage.removeItem(KEY);
    signOutListeners.forEach((listener) => listener());
  },
  onSignOut(listener) {
    signOutListeners.add(listener);
    return () => signOutListeners.delete(listener);
  },
};

function url(path, query) {
  const target = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") {
      target.searchParams.set(name, String(value));
    }
  }
  return target;
}

function headers(body, key) {
  const sent = { Authorization: `Bearer ${key ?? session.key()}` };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  return sent;
}

async function failure(response) {
  let detail = {};
  try {
    detail = (await response.json()).error ?? {};
  } catch {
    // Not our envelope (a proxy's page): the status says enough.
  }
  if (response.status === 401) session.signOut();
  const message = detail.message ?? `${response.status} ${response.statusText}`;
  return new ApiError(response.status, detail.type ?? "http_error", message, detail.param);
}

// One JSON request: the parsed body, null for 204; ApiError with the envelope's message.
export async function api(method, path, { body, query, key, signal } = {}) {
  const response = await fetch(url(path, query), {
    method,
    headers: headers(body, key),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

// A GET answered with text (the NDJSON of a batch's results); ApiError as `api` raises.
export async function text(path, { query, signal } = {}) {
  const response = await fetch(url(path, query), { headers: headers(undefined), signal });
  if (!response.ok) throw await failure(response);
  return response.text();
}

// Server-Sent Events from a fetch (EventSource cannot send the Authorization header): yields
// {id, event, data} with data parsed, until the server ends the stream or `signal` aborts.
export async function* events(method, path, { body, query, signal } = {}) {
  const sent = headers(body);
  sent.Accept = "text/event-stream";
  const response = await fetch(url(path, query), {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(response);
  const type = response.headers.get("content-type") ?? "";
  if (!type.startsWith("text/event-stream")) {
    // A `wait` or idempotent replay answers with the run itself.
    yield { id: null, event: "run", data: await response.json() };
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const parsed = parseFrame(frame);
      if (parsed) yield parsed;
    }
  }
}

function parseFrame(frame) {
  let id = null;
  let event = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) continue; // a keepalive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = Number(value);
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return null;
  return { id, event, data: JSON.parse(data.join("\n")) };
}

// Every page of a listing (`data` and `next_cursor`), up to `most` items.
export async function all(path, query = {}, most = 500) {
  const found = [];
  let cursor = null;
  do {
    const page = await api("GET", path, { query: { ...query, limit: 100, cursor } });
    found.push(...page.data);
    cursor = page.next_cursor ?? null;
  } while (cursor && found.length < most);
  return found;
}
