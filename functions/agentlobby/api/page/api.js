// The user API as the page uses it: the token kept in this browser, JSON calls, event streams.
// The token goes in the Authorization header only, never in a URL (URLs end up in logs).

const KEY = "agentlobby.token";

export class Unauthorized extends Error {}

export const token = {
  get: () => localStorage.getItem(KEY),
  set: (value) => localStorage.setItem(KEY, value),
  clear: () => localStorage.removeItem(KEY),
};

function headers(extra = {}) {
  return { Authorization: `Bearer ${token.get() ?? ""}`, ...extra };
}

async function answer(response) {
  if (response.status === 401) {
    token.clear();
    throw new Unauthorized("the token was refused: enter it again");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error ?? `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

export async function getJson(path) {
  return answer(await fetch(path, { headers: headers(), cache: "no-store" }));
}

export async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  return answer(response);
}

// Reads a text/event-stream with fetch (EventSource cannot send a header) and calls
// onEvent(name, data) for each event. Resolves with the `end` event's data, or null when the
// server closed the stream without one; rejects on a refusal or a broken connection.
export async function readStream(path, onEvent, signal) {
  const response = await fetch(path, { headers: headers(), signal, cache: "no-store" });
  if (!response.ok) {
    await answer(response); // throws with the API's error
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length === 0) continue; // a keepalive comment or a retry hint
      const parsed = JSON.parse(data.join("\n"));
      if (name === "end") return parsed;
      if (name === "error") throw new Error(parsed.error);
      onEvent(name, parsed);
    }
  }
}

// Keeps a stream open: reads it again after it ends (its time is up) or breaks, until
// `signal` aborts or `stop(endData)` says the stream has nothing more to give.
export async function follow(path, onEvent, signal, { stop = () => false, onState = () => {} } = {}) {
  while (!signal.aborted) {
    try {
      onState("live");
      const end = await readStream(path, onEvent, signal);
      if (stop(end)) {
        onState("done");
        return;
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof Unauthorized || error.status === 404) {
        onState("error", error);
        throw error;
      }
      onState("reconnecting", error);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}
