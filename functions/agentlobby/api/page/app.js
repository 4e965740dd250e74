// The agentlobby page: lobbies and their members, recent conversations, one conversation as
// it happens, and a form to post to a lobby. Preact + htm render it; every update arrives on
// an event stream (api.js), nothing reloads.

import { html, render, useEffect, useRef, useState } from "./vendor/htm-preact.js";
import hljs from "./vendor/highlight-core.js";
import python from "./vendor/highlight-python.js";
import { Unauthorized, follow, getJson, postJson, token } from "./api.js";

hljs.registerLanguage("python", python);

const OVER = new Set(["succeeded", "failed", "cancelled"]);

export function usd(value) {
  return `$${value.toFixed(6)}`;
}

function tokens(usage) {
  return `${usage.total_tokens} tokens`;
}

function selectedFromHash() {
  const match = /^#c=([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
  return match ? match[1] : null;
}

// --- the token ---------------------------------------------------------------------------

function TokenForm({ message, onSaved }) {
  const [value, setValue] = useState("");
  const save = (event) => {
    event.preventDefault();
    if (!value.trim()) return;
    token.set(value.trim());
    onSaved();
  };
  return html`<form class="card token" onSubmit=${save}>
    <h2>API token</h2>
    <p>The page reads the API with the same token as the CLI (<code>AGENTLOBBY_API_TOKEN</code>;
      <code>agentlobby env</code> prints it). It is kept in this browser only.</p>
    ${message && html`<p class="error" data-testid="token-error">${message}</p>`}
    <input type="password" autocomplete="off" data-testid="token-input" placeholder="token"
      value=${value} onInput=${(e) => setValue(e.target.value)} />
    <button type="submit" data-testid="token-save">Use this token</button>
  </form>`;
}

// --- lobbies and the list -----------------------------------------------------------------

function Lobbies({ lobbies }) {
  return html`<section class="card">
    <h2>Lobbies</h2>
    ${lobbies.length === 0 && html`<p class="muted">No lobby yet.</p>`}
    <ul class="lobbies" data-testid="lobbies">
      ${lobbies.map(
        (lobby) => html`<li key=${lobby.name}>
          <strong>${lobby.name}</strong>
          <span class="members">
            ${lobby.members.length === 0 && html`<span class="muted">no members</span>`}
            ${lobby.members.map(
              (m) => html`<span class="chip" title=${`listens to: ${m.listens_to.join(", ")}`}>${m.name}</span>`,
            )}
          </span>
        </li>`,
      )}
    </ul>
  </section>`;
}

const RATE_WORDS = { requests_per_minute: "requests", tokens_per_minute: "tokens", posts_per_minute: "posts" };

function Limits({ limits }) {
  return html`<section class="card">
    <h2>Rate limits</h2>
    ${limits.length === 0 && html`<p class="muted" data-testid="no-limits">None set (docs/observability.md).</p>`}
    <ul class="limits" data-testid="limits">
      ${limits.map((limit) => {
        const counts = Object.entries(RATE_WORDS)
          .filter(([key]) => key in limit.limits)
          .map(([key, word]) => `${limit.limits[key]} ${word}`)
          .join(", ");
        const per = `per ${limit.limits.window_s ?? 60}s`;
        return html`<li key=${`${limit.what}/${limit.name}`}>
          <strong>${limit.what === "posts" ? "user posts" : limit.name}</strong>
          ${` ${counts} ${per}${limit.what === "posts" ? " per token" : ""}`}
          ${limit.agents.length > 0 && html`<span class="muted small"> (${limit.agents.join(", ")})</span>`}
        </li>`;
      })}
    </ul>
  </section>`;
}

function Status({ status, testid }) {
  return html`<span class=${`status ${status}`} data-testid=${testid}>${status}</span>`;
}

function Conversations({ list, selected, onSelect, state }) {
  return html`<section class="card">
    <h2>Conversations <span class=${`live ${state}`} data-testid="list-state">${state}</span></h2>
    ${list.length === 0 && html`<p class="muted">None yet: post one below.</p>`}
    <ul class="conversations" data-testid="conversations">
      ${list.map(
        (c) => html`<li key=${c.conversation_id} class=${c.conversation_id === selected ? "selected" : ""}
            data-conversation=${c.conversation_id} onClick=${() => onSelect(c.conversation_id)}>
          <div class="line"><${Status} status=${c.status} /> <span class="lobby">${c.lobby}</span>
            <span class="muted">${new Date(c.created_at).toLocaleTimeString()}</span></div>
          <div class="title">${c.title}</div>
          <div class="muted small">${c.messages} messages · ${c.rounds} rounds · ${tokens(c.usage)}${
            c.cost_usd != null ? ` · ${usd(c.cost_usd)}` : ""
          }</div>
        </li>`,
      )}
    </ul>
  </section>`;
}

// --- posting ------------------------------------------------------------------------------

function readImage(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function PostForm({ lobbies, onPosted, onUnauthorized }) {
  const [lobby, setLobby] = useState("");
  const [text, setText] = useState("");
  const [tests, setTests] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const image = useRef(null);
  const chosen = lobby || (lobbies.find((l) => l.name === "coding") ?? lobbies[0])?.name || "";

  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const body = { text };
      if (tests.trim()) body.tests = tests;
      const file = image.current?.files?.[0];
      if (file) body.image = { mime_type: file.type, data_base64: await readImage(file) };
      const posted = await postJson(`/lobbies/${encodeURIComponent(chosen)}/messages`, body);
      setText("");
      setTests("");
      if (image.current) image.current.value = "";
      onPosted(posted.conversation_id);
    } catch (failure) {
      if (failure instanceof Unauthorized) onUnauthorized(failure.message);
      else setError(failure.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card post" onSubmit=${submit} data-testid="post-form">
    <h2>Post to a lobby</h2>
    <label>Lobby
      <select data-testid="post-lobby" value=${chosen} onChange=${(e) => setLobby(e.target.value)}>
        ${lobbies.map((l) => html`<option value=${l.name}>${l.name}</option>`)}
      </select></label>
    <label>Message or task
      <textarea data-testid="post-text" rows="3" required value=${text}
        onInput=${(e) => setText(e.target.value)} placeholder="Write fizzbuzz(n) …"></textarea></label>
    <label>Tests (Python, optional: they decide the verdict)
      <textarea data-testid="post-tests" rows="3" class="mono" value=${tests}
        onInput=${(e) => setTests(e.target.value)} placeholder="assert fizzbuzz(3) == 'Fizz'"></textarea></label>
    <label>Image (optional)
      <input type="file" data-testid="post-image" accept="image/png,image/jpeg,image/gif,image/webp" ref=${image} /></label>
    ${error && html`<p class="error" data-testid="post-error">${error}</p>`}
    <button type="submit" data-testid="post-submit" disabled=${busy || !chosen}>Post</button>
  </form>`;
}

// --- one conversation ---------------------------------------------------------------------

function Code({ source, testid }) {
  const highlighted = hljs.highlight(source, { language: "python", ignoreIllegals: true }).value;
  return html`<pre class="code"><code class="hljs language-python" data-testid=${testid}
    dangerouslySetInnerHTML=${{ __html: highlighted }}></code></pre>`;
}

function Output({ label, text, testid }) {
  if (!text) return null;
  return html`<div><div class="muted small">${label}</div><pre class="output" data-testid=${testid}>${text}</pre></div>`;
}

function Body({ message }) {
  const c = message.content;
  switch (c.kind) {
    case "task":
      return html`<div>
        <p class="text">${c.text}</p>
        ${c.tests && html`<div class="muted small">tests</div><${Code} source=${c.tests} testid="task-tests" />`}
        ${c.image && html`<img class="task-image" data-testid="task-image" alt="the task's image"
          src=${`data:${c.image.mime_type};base64,${c.image.data}`} />`}
      </div>`;
    case "code":
      return html`<div><p class="text">${c.text || `round ${c.round}`}</p>
        <${Code} source=${c.source} testid="code" /></div>`;
    case "execution-result":
      return html`<div class="execution" data-testid="execution">
        <div class="line">exit code <strong data-testid="exit-code">${c.exit_code ?? "none"}</strong>
          ${c.tests_passed != null && html` · tests ${c.tests_passed ? "passed" : "failed"}`}
          ${c.timed_out && " · timed out"} · ${c.duration_ms} ms${c.isolation ? ` · ${c.isolation}` : ""}</div>
        <${Output} label="stdout" text=${c.stdout} testid="stdout" />
        <${Output} label="stderr" text=${c.stderr} testid="stderr" />
        ${c.reason && html`<p class="error">${c.reason}</p>`}
      </div>`;
    case "verdict":
      return html`<div class=${`verdict ${c.passed ? "passed" : "rejected"}`} data-testid="verdict">
        <strong>${c.passed ? "passed" : "not yet"}</strong> (round ${c.round}${c.final ? ", final" : ""})
        <p class="text">${c.feedback}</p></div>`;
    case "result":
      return html`<div data-testid="result">
        <div><${Status} status=${c.status} /> after ${c.rounds} round(s)</div>
        ${c.reason && html`<p class="error">${c.reason}</p>`}
        ${c.output && html`<${Output} label="output" text=${c.output} testid="result-output" />`}
      </div>`;
    case "image":
      return html`<img class="task-image" alt="an image" src=${`data:${c.mime_type};base64,${c.data}`} />`;
    default:
      return html`<p class="text">${message.text ?? `(${c.kind})`}</p>`;
  }
}

function Cost({ cost }) {
  if (!cost) return null;
  return html`<span> · cost <strong data-testid="cost-total">${usd(cost.total_usd)}</strong>
    <span class="muted small" data-testid="cost-by-agent">(${Object.entries(cost.by_agent)
      .map(([agent, value]) => `${agent} ${usd(value)}`)
      .join(", ")})</span></span>`;
}

function Timeline({ trace }) {
  if (trace === undefined) return null;
  if (!trace || trace.spans.length === 0) {
    return html`<section class="card"><h3>Trace</h3>
      <p class="muted" data-testid="trace-off">No spans here: ${trace?.where ?? "tracing is off for this stack (see docs/observability.md)"}.</p></section>`;
  }
  const start = Math.min(...trace.spans.map((s) => s.start_unix_nano));
  const end = Math.max(...trace.spans.map((s) => s.end_unix_nano));
  const total = Math.max(end - start, 1);
  const spans = [...trace.spans].sort((a, b) => a.start_unix_nano - b.start_unix_nano);
  return html`<section class="card"><h3>Trace <span class="muted small">${trace.trace_id}</span></h3>
    <div class="timeline" data-testid="timeline">
      ${spans.map((s) => {
        const left = ((s.start_unix_nano - start) / total) * 100;
        const width = Math.max(((s.end_unix_nano - s.start_unix_nano) / total) * 100, 0.5);
        const ms = ((s.end_unix_nano - s.start_unix_nano) / 1e6).toFixed(1);
        return html`<div class="span-row" key=${s.span_id}>
          <div class="span-label">${s.agent ? `${s.agent} · ` : ""}${s.name}</div>
          <div class="span-track"><div class=${`span-bar ${s.status}`} title=${`${ms} ms`}
            style=${{ left: `${left}%`, width: `${width}%` }}></div></div>
          <div class="span-ms muted small">${ms} ms</div>
        </div>`;
      })}
    </div></section>`;
}

function Conversation({ id, onUnauthorized }) {
  const [view, setView] = useState(null);
  const [state, setState] = useState("connecting");
  const [error, setError] = useState(null);
  const [trace, setTrace] = useState(undefined);

  useEffect(() => {
    setView(null);
    setError(null);
    setTrace(undefined);
    const abort = new AbortController();
    follow(`/conversations/${id}/events`, (_, data) => setView(data), abort.signal, {
      stop: (end) => end?.reason === "over",
      onState: (s) => setState(s),
    }).catch((failure) => {
      if (failure instanceof Unauthorized) onUnauthorized(failure.message);
      else setError(failure.message);
    });
    return () => abort.abort();
  }, [id]);

  const over = view && OVER.has(view.status);
  useEffect(() => {
    if (!view) return;
    getJson(`/conversations/${id}/trace`)
      .then(setTrace)
      .catch((failure) => setTrace(failure.status === 404 ? null : undefined));
  }, [id, over, view?.messages.length]);

  if (error) return html`<section class="card"><p class="error" data-testid="conversation-error">${error}</p></section>`;
  if (!view) return html`<section class="card"><p class="muted">Loading the conversation…</p></section>`;
  return html`<div>
    <section class="card conversation" data-testid="conversation" data-id=${view.conversation_id}>
      <h2><${Status} status=${view.status} testid="status" />
        <span class=${`live ${state}`}>${state}</span></h2>
      <div class="muted small">${view.lobby} · ${view.conversation_id}</div>
      <div class="summary">${view.rounds} round(s) · <span data-testid="tokens">${tokens(view.usage)}</span>
        <${Cost} cost=${view.cost} /></div>
      ${view.reason && html`<p class="error" data-testid="reason">${view.reason}</p>`}
      ${view.final_code && html`<div class="muted small">final code</div><${Code} source=${view.final_code} testid="final-code" />`}
    </section>
    <section class="card"><h3>Messages</h3>
      <ol class="messages" data-testid="messages">
        ${view.messages.map(
          (m) => html`<li key=${m.id} class=${`message ${m.kind}`} data-kind=${m.kind}>
            <div class="line"><strong>${m.sender}</strong> <span class="kind">${m.kind}</span>
              <span class="muted small">${new Date(m.created_at).toLocaleTimeString()}${
                m.usage ? ` · ${m.usage.prompt_tokens}+${m.usage.completion_tokens} tokens` : ""
              }</span></div>
            <${Body} message=${m} />
          </li>`,
        )}
      </ol>
      ${view.dead_letters.length > 0 && html`<h3>Dead letters</h3><ul>
        ${view.dead_letters.map((d) => html`<li class="error">${d.agent ?? "?"}: ${d.reason}</li>`)}</ul>`}
    </section>
    <${Timeline} trace=${trace} />
  </div>`;
}

// --- the page -----------------------------------------------------------------------------

function App() {
  const [authorized, setAuthorized] = useState(Boolean(token.get()));
  const [message, setMessage] = useState(null);
  const [lobbies, setLobbies] = useState([]);
  const [limits, setLimits] = useState([]);
  const [list, setList] = useState([]);
  const [listState, setListState] = useState("connecting");
  const [selected, setSelected] = useState(selectedFromHash());

  const refused = (why) => {
    token.clear();
    setMessage(why);
    setAuthorized(false);
  };

  useEffect(() => {
    const onHash = () => setSelected(selectedFromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    if (!authorized) return;
    const abort = new AbortController();
    const onEvent = (name, data) => {
      if (name === "conversations") {
        setList(data.conversations);
        getJson("/lobbies").then((answer) => {
          setLobbies(answer.lobbies);
          setLimits(answer.limits);
        }, () => {});
      } else if (name === "summary") {
        setList((old) => {
          const rest = old.filter((c) => c.conversation_id !== data.conversation_id);
          return [data, ...rest].sort((a, b) => b.created_at.localeCompare(a.created_at));
        });
      }
    };
    follow("/events", onEvent, abort.signal, { onState: setListState }).catch((failure) => {
      if (failure instanceof Unauthorized) refused(failure.message);
    });
    return () => abort.abort();
  }, [authorized]);

  if (!authorized) {
    return html`<main class="narrow"><h1>agentlobby</h1>
      <${TokenForm} message=${message} onSaved=${() => { setMessage(null); setAuthorized(true); }} /></main>`;
  }
  const select = (id) => {
    location.hash = `c=${id}`;
    setSelected(id);
  };
  return html`<main>
    <header><h1>agentlobby</h1>
      <button class="link" data-testid="forget-token" onClick=${() => refused(null)}>forget the token</button></header>
    <div class="columns">
      <aside>
        <${PostForm} lobbies=${lobbies} onPosted=${select} onUnauthorized=${refused} />
        <${Lobbies} lobbies=${lobbies} />
        <${Limits} limits=${limits} />
        <${Conversations} list=${list} selected=${selected} onSelect=${select} state=${listState} />
      </aside>
      <section class="main">
        ${selected
          ? html`<${Conversation} id=${selected} onUnauthorized=${refused} />`
          : html`<section class="card"><p class="muted">Pick a conversation, or post one.</p></section>`}
      </section>
    </div>
  </main>`;
}

const root = document.getElementById("app");
root.replaceChildren(); // the "Loading" line: Preact renders beside what is there
render(html`<${App} />`, root);
