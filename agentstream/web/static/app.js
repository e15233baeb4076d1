// agentstream's chat page: reads the AI SDK UI message stream from api/chat.
// Everything the model or a tool sends is set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;
const token = (() => {
  const match = /[#&]token=([^&]+)/.exec(location.hash);
  if (match) store.setItem("agentstream.token", decodeURIComponent(match[1]));
  return store.getItem("agentstream.token");
})();

let chatId = store.getItem("agentstream.chat") || newId();
let history = JSON.parse(store.getItem("agentstream.history") || "[]");
let current = null; // the run being streamed: see startRun()
let lastRenderer = null; // the last assistant message's renderer: a paused run continues in it

function newId() {
  const id = "chat_" + Math.random().toString(36).slice(2, 12);
  store.setItem("agentstream.chat", id);
  store.setItem("agentstream.secret", newSecret());
  return id;
}

// The chat's holder secret: only this tab can stop, continue or replay its runs.
function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function headers(extra) {
  const all = Object.assign({}, extra);
  if (token) all.authorization = "Bearer " + token;
  if (!store.getItem("agentstream.secret")) store.setItem("agentstream.secret", newSecret());
  all["x-agentstream-chat-secret"] = store.getItem("agentstream.secret");
  return all;
}

function setStatus(text) { $("status").textContent = text; }

function setRunning(running) {
  $("stop").disabled = !running;
  $("send").disabled = running;
}

// ---- rendering of one assistant message from its parts ------------------------------

class Renderer {
  constructor(container) {
    this.box = el("div", "message assistant");
    this.box.append(el("div", "role", "assistant"));
    container.append(this.box);
    this.message = { id: "", role: "assistant", parts: [] };
    this.step = null;       // {box, parts, label, metrics}
    this.texts = {};        // part id -> {node, part}
    this.tools = {};        // toolCallId -> {card, args, state, result, part}
    this.timeline = new Timeline();
    this.done = false;
  }

  stepBox() {
    if (!this.step) this.startStep();
    return this.step.box;
  }

  startStep() {
    const box = el("div", "step");
    const label = el("div", "step-label", "step");
    const metrics = el("div", "metrics");
    box.append(label);
    this.box.append(box, metrics);
    this.message.parts.push({ type: "step-start" });
    this.step = { box, label, metrics, start: this.message.parts.length };
  }

  apply(chunk) {
    const parts = this.message.parts;
    switch (chunk.type) {
      case "start":
        if (chunk.messageId) this.message.id = chunk.messageId;
        break;
      case "start-step": this.startStep(); break;
      case "text-start":
      case "reasoning-start": {
        const part = { type: chunk.type === "text-start" ? "text" : "reasoning", text: "", state: "streaming" };
        parts.push(part);
        let node;
        if (part.type === "text") {
          const p = el("div", "text");
          node = document.createTextNode("");
          p.append(node);
          this.stepBox().append(p);
        } else {
          const details = el("details", "reasoning");
          details.append(el("summary", "", "Reasoning"));
          const pre = el("pre");
          node = document.createTextNode("");
          pre.append(node);
          details.append(pre);
          this.stepBox().append(details);
        }
        this.texts[chunk.id] = { node, part };
        break;
      }
      case "text-delta":
      case "reasoning-delta": {
        const open = this.texts[chunk.id];
        if (!open) break;
        open.node.appendData(chunk.delta);
        open.part.text += chunk.delta;
        break;
      }
      case "text-end":
      case "reasoning-end":
        if (this.texts[chunk.id]) this.texts[chunk.id].part.state = "done";
        delete this.texts[chunk.id];
        break;
      case "tool-input-start": this.toolCard(chunk.toolCallId, chunk.toolName); break;
      case "tool-input-delta": {
        const tool = this.tools[chunk.toolCallId];
        if (tool) tool.args.appendData(chunk.inputTextDelta);
        break;
      }
      case "tool-input-available": {
        const tool = this.toolCard(chunk.toolCallId, chunk.toolName);
        tool.args.data = JSON.stringify(chunk.input);
        tool.part.input = chunk.input;
        tool.part.state = "input-available";
        this.toolState(tool, "running", "running…");
        break;
      }
      case "tool-input-error": {
        const tool = this.toolCard(chunk.toolCallId, chunk.toolName);
        Object.assign(tool.part, { state: "output-error", input: chunk.input, errorText: chunk.errorText });
        this.toolResult(tool, chunk.errorText, "error", "invalid");
        break;
      }
      case "tool-output-available": {
        const tool = this.tools[chunk.toolCallId];
        if (!tool) break;
        Object.assign(tool.part, { state: "output-available", output: chunk.output });
        if (tool.controls) tool.controls.remove();
        const text = typeof chunk.output === "string" ? chunk.output : JSON.stringify(chunk.output);
        this.toolResult(tool, text, "done", "done");
        break;
      }
      case "tool-approval-request": {
        const tool = this.tools[chunk.toolCallId];
        if (!tool) break;
        Object.assign(tool.part, { state: "approval-requested", approval: { id: chunk.approvalId } });
        this.toolState(tool, "awaiting", "awaiting approval");
        this.approvalControls(tool, chunk.approvalId);
        break;
      }
      case "tool-output-denied": {
        const tool = this.tools[chunk.toolCallId];
        if (!tool) break;
        const reason = tool.part.approval && tool.part.approval.reason;
        tool.part.state = "output-denied";
        if (tool.controls) tool.controls.remove();
        this.toolResult(tool, "denied" + (reason ? ": " + reason : ""), "error", "denied");
        break;
      }
      case "tool-output-error": {
        const tool = this.tools[chunk.toolCallId];
        if (!tool) break;
        Object.assign(tool.part, { state: "output-error", errorText: chunk.errorText });
        this.toolResult(tool, chunk.errorText, "error", "failed");
        break;
      }
      case "reset-step": {
        if (!this.step) break;
        parts.splice(this.step.start);
        this.step.box.classList.add("retrying");
        this.step.label.textContent = "step (withdrawn: retrying)";
        this.step = null;
        this.texts = {};
        break;
      }
      case "finish-step": break;
      case "data-agentstream": this.timing(chunk.data); break;
      case "message-metadata": this.message.metadata = chunk.messageMetadata; break;
      case "error": this.box.append(el("div", "error", chunk.errorText)); break;
      case "abort":
        this.box.append(el("div", "notice", "stopped (" + (chunk.reason || "aborted") + ")"));
        this.finish();
        break;
      case "finish": {
        const meta = chunk.messageMetadata || {};
        if (meta.usage) {
          const u = meta.usage;
          const line = "run: " + (meta.stopReason || chunk.finishReason) + " · " + u.inputTokens +
            " in / " + u.outputTokens + " out tokens · " + meta.duration.toFixed(2) + " s";
          this.box.append(el("div", "metrics run-metrics", line));
        }
        this.finish();
        break;
      }
    }
  }

  finish() {
    this.done = true;
    for (const tool of Object.values(this.tools)) {
      if (tool.card.classList.contains("running") || tool.card.classList.contains("streaming")) {
        this.toolState(tool, "error", "cancelled");
      }
    }
    this.timeline.close();
  }

  // Approve / Deny buttons (and an optional reason) on a card awaiting approval.
  approvalControls(tool, approvalId) {
    const box = el("div", "approval");
    const approve = el("button", "approve", "Approve");
    const deny = el("button", "deny", "Deny");
    const reason = el("input");
    approve.type = deny.type = "button";
    reason.type = "text";
    reason.placeholder = "reason (optional)";
    reason.setAttribute("aria-label", "Reason for denying " + tool.name + " (optional)");
    approve.setAttribute("aria-label", "Approve " + tool.name);
    deny.setAttribute("aria-label", "Deny " + tool.name);
    approve.addEventListener("click", () => decide(this, tool, approvalId, true, ""));
    deny.addEventListener("click", () => decide(this, tool, approvalId, false, reason.value.trim()));
    reason.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); deny.click(); }
    });
    box.append(approve, deny, reason);
    tool.card.append(box);
    tool.controls = box;
    if (current && current.renderer === this) setTimeout(() => approve.focus(), 0); // keyboard: Enter approves
  }

  toolCard(id, name) {
    if (this.tools[id]) return this.tools[id];
    const card = el("div", "tool streaming");
    const state = el("span", "state", "arguments…");
    const args = document.createTextNode("");
    const pre = el("pre", "args");
    pre.append(args);
    const result = el("pre", "result");
    card.append(state, el("span", "name", name), pre, result);
    this.stepBox().append(card);
    const part = { type: "tool-" + name, toolCallId: id, state: "input-streaming" };
    this.message.parts.push(part);
    this.tools[id] = { card, args, state, result, part, name };
    return this.tools[id];
  }

  // A running tool's progress: a bar when it says how far, its latest message as text.
  toolProgress(data) {
    const tool = this.tools[data.toolCallId];
    if (!tool) return;
    if (!tool.progress) {
      tool.progress = el("div", "progress");
      tool.progressBar = document.createElement("progress");
      tool.progressBar.max = 1;
      tool.progressText = el("span", "progress-text", "");
      tool.progress.append(tool.progressBar, tool.progressText);
      tool.card.insertBefore(tool.progress, tool.result);
    }
    if (data.fraction != null) tool.progressBar.value = data.fraction;
    else tool.progressBar.removeAttribute("value"); // indeterminate
    const said = data.message || data.output || "";
    if (said) tool.progressText.textContent = said;
  }

  toolState(tool, cls, text) {
    tool.card.classList.remove("streaming", "running", "done", "error", "awaiting");
    tool.card.classList.add(cls);
    tool.state.textContent = text;
  }

  toolResult(tool, text, cls, label) {
    tool.result.textContent = text;
    this.toolState(tool, cls, label);
  }

  timing(data) {
    const line = this.timeline;
    switch (data.kind) {
      case "step_started":
        if (this.step) this.step.label.textContent = "step " + data.step + (data.attempt > 1 ? " (attempt " + data.attempt + ")" : "");
        line.open("step" + data.step + "." + data.attempt, "step " + data.step, "step", data.t);
        break;
      case "step_interrupted":
        line.end("step" + data.step + "." + data.attempt, data.t, true);
        break;
      case "step_finished": {
        const bar = [...line.rows.values()].reverse().find((r) => r.kind === "step" && r.end === null);
        // The bar is the response's stream; the step's tools have their own bars.
        if (bar) line.end(bar.key, Math.min(data.t, bar.start + data.duration), false);
        if (this.step) this.step.metrics.textContent = formatMetrics(data);
        break;
      }
      case "tool_started":
        line.open(data.toolCallId, data.toolName + " " + (data.arguments || ""), "tool", data.t);
        break;
      case "tool_finished":
        line.end(data.toolCallId, data.t, !data.ok);
        break;
      case "tool_progress":
        this.toolProgress(data);
        break;
      case "run_stopped":
        line.latest = Math.max(line.latest, data.t); // what is still open ends here
        break;
    }
  }
}

function formatMetrics(data) {
  const bits = ["step " + data.step];
  if (data.timeToFirstToken != null) bits.push("TTFT " + data.timeToFirstToken.toFixed(2) + " s");
  if (data.tokensPerSecond != null) bits.push(data.tokensPerSecond.toFixed(0) + " tok/s");
  if (data.usage) bits.push(data.usage.inputTokens + " in / " + data.usage.outputTokens + " out tokens");
  bits.push(data.duration.toFixed(2) + " s");
  return bits.join(" · ");
}

// ---- the timeline: each step's stream and each tool as a bar on one axis -----------

class Timeline {
  constructor() {
    $("timeline").textContent = "";
    $("axis").textContent = "";
    this.rows = new Map();
    this.origin = performance.now(); // server t maps onto this clock while live
    this.latest = 0;
    this.timer = setInterval(() => this.draw(), 100);
  }

  now() { return Math.max(this.latest, (performance.now() - this.origin) / 1000); }

  open(key, label, kind, t) {
    this.latest = Math.max(this.latest, t);
    this.origin = Math.min(this.origin, performance.now() - t * 1000);
    const row = el("div", "row");
    const bar = el("div", "bar bar-" + kind + " open");
    const track = el("div", "track");
    track.append(bar);
    row.append(el("span", "label", label), track);
    row.dataset.kind = kind;
    $("timeline").append(row);
    this.rows.set(key, { key, kind, start: t, end: null, bar });
    this.draw();
  }

  end(key, t, failed) {
    const row = this.rows.get(key);
    this.latest = Math.max(this.latest, t);
    if (!row) return;
    row.end = t;
    row.bar.classList.remove("open");
    if (failed) row.bar.classList.add("failed");
    this.draw();
  }

  close() {
    clearInterval(this.timer);
    for (const row of this.rows.values()) if (row.end === null) row.end = this.latest;
    this.draw(true);
  }

  draw(final) {
    const span = Math.max(final ? this.latest : this.now(), 0.001);
    for (const row of this.rows.values()) {
      const end = row.end === null ? this.now() : row.end;
      row.bar.style.left = (100 * row.start / span).toFixed(2) + "%";
      row.bar.style.width = (100 * Math.max(end - row.start, 0) / span).toFixed(2) + "%";
    }
    if (this.rows.size) $("axis").textContent = "0 – " + span.toFixed(2) + " s";
  }
}

// ---- talking to the server ----------------------------------------------------------

async function readStream(response, onChunk) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let data = null;
      for (const line of block.split("\n")) {
        if (line.startsWith("id:")) id = Number(line.slice(3).trim());
        else if (line.startsWith("data:")) data = line.slice(5).trimStart();
      }
      if (data === null) continue; // a keep-alive comment
      if (data === "[DONE]") return true;
      onChunk(JSON.parse(data), id);
    }
  }
}

// The conversation survives a reload; when it outgrows the tab's storage, the parts
// kept only for redrawing old answers go first.
function saveHistory() {
  try {
    store.setItem("agentstream.history", JSON.stringify(history));
  } catch (error) {
    for (const message of history) delete message.chunks;
    store.setItem("agentstream.history", JSON.stringify(history));
  }
}

function renderUser(text) {
  const box = el("div", "message user");
  box.append(el("div", "role", "you"), el("div", "text", text));
  $("messages").append(box);
}

function renderHistory() {
  $("messages").textContent = "";
  lastRenderer = null;
  for (const message of history) {
    if (message.role === "user") {
      renderUser(message.parts.map((p) => p.text || "").join(""));
      lastRenderer = null;
    } else {
      const r = new Renderer($("messages"));
      if (message.chunks) for (const chunk of message.chunks) r.apply(chunk);
      else for (const part of message.parts) if (part.type === "text") r.stepBox().append(el("div", "text", part.text));
      r.finish();
      lastRenderer = r;
    }
  }
}

// A decision on a call awaiting approval; once every such call of the message has one,
// they go to the server, which resumes the paused run into this same message.
function decide(renderer, tool, approvalId, approved, reason) {
  if (current || renderer !== lastRenderer || tool.part.state !== "approval-requested") return;
  tool.part.state = "approval-responded";
  tool.part.approval = { id: approvalId, approved, reason: reason || undefined };
  tool.controls.querySelectorAll("button, input").forEach((node) => { node.disabled = true; });
  tool.state.textContent = approved ? "approved" : "denied";
  const parts = renderer.message.parts;
  if (parts.some((part) => part.state === "approval-requested")) return; // more to decide
  sendDecisions(renderer);
}

async function sendDecisions(renderer) {
  const last = history.pop(); // the continuation ends by putting the message back
  saveHistory();
  current = { renderer, chunks: (last && last.chunks) || [], lastId: -1, stopping: false };
  renderer.done = false;
  renderer.timeline = new Timeline();
  setRunning(true);
  setStatus("sending the decision…");
  const message = { id: renderer.message.id, role: "assistant", parts: renderer.message.parts };
  await post([...history.map((m) => ({ id: m.id, role: m.role, parts: m.parts })), message], message.id);
}

function startRun(chunks) {
  const renderer = new Renderer($("messages"));
  current = { renderer, chunks: [], lastId: -1, stopping: false };
  for (const chunk of chunks || []) accept(chunk, null);
  setRunning(true);
  return current;
}

function accept(chunk, id) {
  current.chunks.push(chunk);
  if (id !== null) current.lastId = id;
  current.renderer.apply(chunk);
  $("messages").scrollTop = $("messages").scrollHeight;
}

function endRun() {
  if (!current) return;
  if (!current.renderer.done) current.renderer.finish();
  const message = current.renderer.message;
  history.push({ role: "assistant", id: message.id, parts: message.parts, chunks: current.chunks });
  saveHistory();
  lastRenderer = current.renderer;
  store.removeItem("agentstream.pending");
  current = null;
  setRunning(false);
}

async function follow(response) {
  let finished = false;
  for (let attempt = 0; !finished && attempt < 5; attempt++) {
    try {
      if (!response) {
        setStatus("reconnecting…");
        response = await fetch("api/chat/" + encodeURIComponent(chatId) + "/stream", {
          headers: headers({ "last-event-id": String(current.lastId) }),
        });
        if (response.status === 204) break; // the server no longer has the run
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      setStatus("streaming");
      finished = await readStream(response, accept);
    } catch (error) {
      await new Promise((resolve) => setTimeout(resolve, 300 * (attempt + 1)));
    }
    response = null;
  }
  setStatus(finished ? "ready" : "connection lost");
  endRun();
}

async function send(text) {
  renderUser(text);
  history.push({ role: "user", id: "u" + history.length, parts: [{ type: "text", text }] });
  saveHistory();
  // Calls left awaiting approval stay undecided: the new message starts a new run.
  document.querySelectorAll(".approval button, .approval input").forEach((node) => { node.disabled = true; });
  startRun();
  setStatus("waiting for the model…");
  await post(history.map((m) => ({ id: m.id, role: m.role, parts: m.parts })));
}

async function post(messages, messageId) {
  let response;
  try {
    response = await fetch("api/chat", {
      method: "POST",
      headers: headers({ "content-type": "application/json" }),
      body: JSON.stringify({ id: chatId, messages, trigger: "submit-message", messageId }),
    });
  } catch (error) {
    response = null;
  }
  if (response && !response.ok) {
    const body = await response.json().catch(() => ({}));
    current.renderer.box.append(el("div", "error", body.error || "HTTP " + response.status));
    setStatus("ready");
    endRun();
    return;
  }
  await follow(response);
}

async function stop() {
  if (!current || current.stopping) return;
  current.stopping = true;
  setStatus("stopping…");
  await fetch("api/chat/" + encodeURIComponent(chatId) + "/stop", { method: "POST", headers: headers({ "content-type": "application/json" }), body: "{}" }).catch(() => {});
}

// A reload mid-run keeps what was shown and asks only for what came after it.
window.addEventListener("pagehide", () => {
  if (!current) return;
  try {
    store.setItem("agentstream.pending", JSON.stringify({ chunks: current.chunks, lastId: current.lastId }));
  } catch (error) {
    store.removeItem("agentstream.pending"); // too big to keep: the run is replayed whole
  }
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || current) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && current) {
    event.preventDefault();
    stop();
  }
});
$("stop").addEventListener("click", stop);
$("new-chat").addEventListener("click", () => {
  if (current) return;
  history = [];
  store.removeItem("agentstream.history");
  chatId = newId();
  renderHistory();
  new Timeline().close();
  $("prompt").focus();
});

renderHistory();
const pending = JSON.parse(store.getItem("agentstream.pending") || "null");
store.removeItem("agentstream.pending");
if (pending) {
  // Replay what this page had shown, then reattach after the last part it saw.
  startRun();
  for (const chunk of pending.chunks) current.renderer.apply(chunk), current.chunks.push(chunk);
  current.lastId = pending.lastId;
  follow(null);
} else {
  // No saved state (a new tab on a running chat): the whole run is replayed.
  fetch("api/chat/" + encodeURIComponent(chatId) + "/stream", { headers: headers() })
    .then((response) => {
      if (response.status !== 200) return;
      const last = history[history.length - 1];
      if (last && last.role === "assistant") return; // that run is already shown
      startRun();
      return follow(response);
    })
    .catch(() => {});
}
