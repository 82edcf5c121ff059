// The REST API as the page uses it: the bearer token (in this tab's session storage, never in a
// URL or a cookie), JSON requests, and a sweep's server-sent events read with fetch (EventSource
// cannot send an Authorization header).

const TOKEN_KEY = "dlab.token";
const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let onUnauthorized = () => {};
/** What to do when the API refuses the token (the app signs out and asks again). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** fetch() of an API path with the bearer header; an ApiError for any non-2xx answer. */
export async function request(path, { method = "GET", body, contentType, signal, accept } = {}) {
  const headers = { Authorization: `Bearer ${token.get() ?? ""}` };
  if (contentType) headers["Content-Type"] = contentType;
  if (accept) headers.Accept = accept;
  const response = await fetch(API + path, { method, body, headers, signal, cache: "no-store" });
  if (response.ok) return response;
  let detail = `${response.status} ${response.statusText}`;
  try {
    detail = (await response.json()).detail ?? detail;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) onUnauthorized();
  throw new ApiError(response.status, detail);
}

export const getJson = async (path, options) => (await request(path, options)).json();

/** An object URL of an image the API serves (figures need the bearer header, so no <img src>). */
export async function imageUrl(path) {
  if (path.startsWith(API)) path = path.slice(API.length);
  return URL.createObjectURL(await (await request(path)).blob());
}

/** One event of a text/event-stream block ({event, data, id}), or null for a comment-only block. */
function parseEvent(block) {
  const event = { event: "message", data: [], id: null };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event.event = value;
    else if (field === "data") event.data.push(value);
    else if (field === "id") event.id = value;
  }
  if (!event.data.length) return null;
  const text = event.data.join("\n");
  try {
    return { ...event, data: JSON.parse(text) };
  } catch {
    return { ...event, data: text };
  }
}

/** The events of a sweep's stream as they arrive, until the server ends it or ``signal`` aborts. */
export async function* sweepEvents(sweepId, signal) {
  const response = await request(`/sweeps/${encodeURIComponent(sweepId)}/events`,
    { signal, accept: "text/event-stream" });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n/g, "\n");  // the service ends lines with \n
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const parsed = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (parsed) yield parsed;
    }
  }
}
