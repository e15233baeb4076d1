// agentstream's chat page: reads the AI SDK UI message stream from api/chat.
// Everything the model or a tool sends is set with textContent, never parsed as HTML;
// answers' Markdown is turned into elements one by one (see MarkdownView).
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
  // While a run streams, what is typed steers it (delivered at its next step boundary).
  $("send").textContent = running ? "Steer" : "Send";
  $("send").title = running ? "Send this to the running agent; it reads it before its next step" : "";
}

// ---- Markdown: an answer's text as DOM built with createElement/textContent ----------
// No HTML is ever parsed: raw HTML in the Markdown is shown as text. Links go only to
// http, https and mailto. Parsing is linear in the text: no backtracking regexes, every
// search for a closing mark is memoised so that it scans each stretch once, and nesting
// past a few levels is shown as text rather than recursed into.

const MD_MAX_DEPTH = 8;         // lists and quotes nested deeper show as plain text
const MD_MAX_INLINE_DEPTH = 6;  // emphasis inside emphasis, likewise
const MD_MAX_COLUMNS = 64;      // a wider "table" shows as text (rows x columns stays linear)
const MD_SPECIAL = new Set(["\\", "`", "*", "_", "~", "[", "<"]);
const MD_PUNCT = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

function mdIndent(line) {
  let n = 0;
  while (n < line.length && line[n] === " ") n++;
  return n;
}

function mdBlank(line) { return mdIndent(line) === line.length; }

function mdFence(line) {
  const indent = mdIndent(line);
  const c = line[indent];
  if (indent > 3 || (c !== "`" && c !== "~")) return null;
  let end = indent;
  while (line[end] === c) end++;
  if (end - indent < 3) return null;
  if (c === "`" && line.indexOf("`", end) >= 0) return null;
  return { char: c, len: end - indent, info: line.slice(end).trim() };
}

function mdHeading(line) {
  const indent = mdIndent(line);
  if (indent > 3) return null;
  let end = indent;
  while (line[end] === "#" && end - indent < 7) end++;
  const level = end - indent;
  if (level < 1 || level > 6 || (end < line.length && line[end] !== " ")) return null;
  let text = line.slice(end).trim();
  let cut = text.length;
  while (cut > 0 && text[cut - 1] === "#") cut--; // an optional closing run of #
  if (cut === 0 || text[cut - 1] === " ") text = text.slice(0, cut).trim();
  return { level, text };
}

function mdRule(line) {
  const indent = mdIndent(line);
  const c = line[indent];
  if (indent > 3 || (c !== "-" && c !== "*" && c !== "_")) return false;
  let count = 0;
  for (let i = indent; i < line.length; i++) {
    if (line[i] === c) count++;
    else if (line[i] !== " ") return false;
  }
  return count >= 3;
}

function mdQuote(line) {
  const indent = mdIndent(line);
  return indent <= 3 && line[indent] === ">";
}

function mdMarker(line) {
  const indent = mdIndent(line);
  if (indent > 3) return null;
  let i = indent;
  let ordered = false;
  let start = 1;
  if (line[i] === "-" || line[i] === "*" || line[i] === "+") i++;
  else {
    while (i < line.length && i - indent < 9 && line[i] >= "0" && line[i] <= "9") i++;
    if (i === indent || (line[i] !== "." && line[i] !== ")")) return null;
    ordered = true;
    start = Number(line.slice(indent, i));
    i++;
  }
  if (i < line.length && line[i] !== " ") return null;
  const text = line.slice(i).trimStart();
  return { indent, ordered, start, content: i + 1, text };
}

// Cells of a table row: split on `|` except `\|`; a leading and a trailing pipe are optional.
function mdCells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  const cells = [];
  let from = 0;
  for (let i = 0; i < row.length; i++) {
    if (row[i] === "\\") i++;
    else if (row[i] === "|") { cells.push(row.slice(from, i).trim()); from = i + 1; }
  }
  cells.push(row.slice(from).trim());
  return cells;
}

function mdAlignments(line) {
  if (line.indexOf("-") < 0 || (line.indexOf("|") < 0 && line.trim()[0] !== ":")) return null;
  const aligns = [];
  for (const cell of mdCells(line)) {
    let body = cell;
    const left = body.startsWith(":");
    const right = body.endsWith(":") && body.length > 1;
    body = body.slice(left ? 1 : 0, right ? -1 : undefined);
    if (!body.length || [...body].some((c) => c !== "-")) return null;
    aligns.push(left && right ? "center" : right ? "right" : left ? "left" : "");
  }
  return aligns;
}

function mdTableAt(lines, i) {
  if (i + 1 >= lines.length || lines[i].indexOf("|") < 0 || mdIndent(lines[i]) > 3) return null;
  const aligns = mdAlignments(lines[i + 1]);
  const head = mdCells(lines[i]);
  const fits = aligns && aligns.length === head.length && head.length <= MD_MAX_COLUMNS;
  return fits ? { head, aligns } : null;
}

// Does this line end a paragraph by starting another block?
function mdInterrupts(lines, i) {
  const line = lines[i];
  if (mdBlank(line) || mdFence(line) || mdHeading(line) || mdRule(line) || mdQuote(line)) return true;
  const marker = mdMarker(line);
  if (marker && marker.text && (!marker.ordered || marker.start === 1)) return true;
  return mdTableAt(lines, i) !== null;
}

// The blocks of `lines`, each with the line it starts on.
function mdParse(lines, depth) {
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (mdBlank(line)) { i++; continue; }
    const start = i;
    const fence = mdFence(line);
    const heading = fence ? null : mdHeading(line);
    const table = fence || heading ? null : mdTableAt(lines, i);
    let block;
    if (fence) {
      const body = [];
      for (i++; i < lines.length; i++) {
        const close = mdFence(lines[i]);
        if (close && close.char === fence.char && close.len >= fence.len && !close.info) { i++; break; }
        body.push(lines[i]);
      }
      block = { kind: "code", info: fence.info.split(" ")[0], text: body.join("\n") };
    } else if (heading) {
      block = { kind: "heading", level: heading.level, text: heading.text };
      i++;
    } else if (table) {
      const rows = [];
      for (i += 2; i < lines.length && !mdBlank(lines[i]) && lines[i].indexOf("|") >= 0; i++) {
        rows.push(mdCells(lines[i]));
      }
      block = { kind: "table", head: table.head, aligns: table.aligns, rows };
    } else if (mdRule(line)) {
      block = { kind: "rule" };
      i++;
    } else if (mdQuote(line)) {
      const inner = [];
      for (; i < lines.length && mdQuote(lines[i]); i++) {
        const rest = lines[i].slice(mdIndent(lines[i]) + 1);
        inner.push(rest.startsWith(" ") ? rest.slice(1) : rest);
      }
      block = { kind: "quote", blocks: mdNested(inner, depth) };
    } else if (mdMarker(line)) {
      const list = mdList(lines, i, depth);
      block = list.block;
      i = list.end;
    } else {
      const text = [line.trim()];
      for (i++; i < lines.length && !mdInterrupts(lines, i); i++) text.push(lines[i].trim());
      block = { kind: "paragraph", text: text.join("\n") };
    }
    block.start = start;
    blocks.push(block);
  }
  return blocks;
}

// What a quote or a list item holds: blocks, or past the depth limit its text as is.
function mdNested(lines, depth) {
  if (depth + 1 >= MD_MAX_DEPTH) return [{ kind: "paragraph", text: lines.join("\n"), start: 0 }];
  return mdParse(lines, depth + 1);
}

// A list from line `i`: its items are the lines indented past their marker.
function mdList(lines, i, depth) {
  const first = mdMarker(lines[i]);
  const items = [];
  while (i < lines.length) {
    const marker = mdMarker(lines[i]);
    if (!marker || marker.ordered !== first.ordered || marker.indent >= first.content) break;
    const body = [marker.text];
    let blanks = 0;
    for (i++; i < lines.length; i++) {
      const line = lines[i];
      if (mdBlank(line)) { blanks++; continue; }
      const indent = mdIndent(line);
      if (indent <= marker.indent) break;
      for (; blanks > 0; blanks--) body.push("");
      body.push(line.slice(Math.min(indent, marker.content)));
    }
    items.push(mdNested(body, depth));
    if (blanks > 0 && (i >= lines.length || !mdMarker(lines[i]))) break;
  }
  return { block: { kind: "list", ordered: first.ordered, first: first.start, items }, end: i };
}

function mdRender(blocks, parent) {
  for (const block of blocks) {
    let node;
    switch (block.kind) {
      case "code": {
        node = el("pre", "code-block");
        const code = el("code", "", block.text);
        if (block.info) code.dataset.lang = block.info.slice(0, 40);
        node.append(code);
        break;
      }
      case "heading":
        node = el("h" + block.level);
        mdInline(block.text, node, 0);
        break;
      case "rule": node = el("hr"); break;
      case "quote":
        node = el("blockquote");
        mdRender(block.blocks, node);
        break;
      case "list":
        node = el(block.ordered ? "ol" : "ul");
        if (block.ordered && block.first !== 1) node.start = block.first;
        for (const item of block.items) {
          const li = el("li");
          mdRender(item, li);
          node.append(li);
        }
        break;
      case "table": node = mdTable(block); break;
      default:
        node = el("p");
        mdInline(block.text, node, 0);
    }
    parent.append(node);
  }
}

function mdTable(block) {
  const wrap = el("div", "table-wrap");
  const table = el("table");
  const row = (cells, tag) => {
    const tr = el("tr");
    block.head.forEach((_, n) => {
      const cell = el(tag, block.aligns[n] ? "align-" + block.aligns[n] : "");
      mdInline(cells[n] || "", cell, 0);
      tr.append(cell);
    });
    return tr;
  };
  const head = el("thead");
  head.append(row(block.head, "th"));
  const body = el("tbody");
  for (const cells of block.rows) body.append(row(cells, "td"));
  table.append(head, body);
  wrap.append(table);
  return wrap;
}

// A link target if it is an absolute http, https or mailto URL, else null.
function mdSafeUrl(raw) {
  if (!raw || raw.length > 2048) return null;
  try {
    const url = new URL(raw);
    return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
  } catch (error) {
    return null;
  }
}

function mdLink(href) {
  const a = el("a");
  a.href = href;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  return a;
}

// indexOf with memory: the searches of one inline pass go forward, so each stretch of the
// text is scanned once per mark, whatever the number of unmatched openers.
function mdFinder(text) {
  const seen = new Map();
  return (mark, from) => {
    const last = seen.get(mark);
    if (last && from >= last.from && (last.at < 0 || from <= last.at)) return last.at;
    const at = text.indexOf(mark, from);
    seen.set(mark, { from, at });
    return at;
  };
}

// Backtick runs, and for each the next run of the same length (a code span's end).
function mdTicks(text) {
  const runs = new Map(); // start -> start of the next run as long, or -1
  const last = new Map(); // run length -> start of the latest run that long
  for (let i = text.indexOf("`"); i >= 0; i = text.indexOf("`", i)) {
    let end = i;
    while (text[end] === "`") end++;
    if (last.has(end - i)) runs.set(last.get(end - i), i);
    last.set(end - i, i);
    runs.set(i, -1);
    i = end;
  }
  return runs;
}

function mdInline(text, parent, depth) {
  if (depth > MD_MAX_INLINE_DEPTH) { parent.append(document.createTextNode(text)); return; }
  const next = mdFinder(text);
  const ticks = text.indexOf("`") >= 0 ? mdTicks(text) : null;
  let from = 0;
  let i = 0;
  const flush = (to) => {
    if (to > from) parent.append(document.createTextNode(text.slice(from, to)));
  };
  while (i < text.length) {
    const c = text[i];
    if (!MD_SPECIAL.has(c)) { i++; continue; }
    let run = 1;
    while (c !== "\\" && c !== "[" && c !== "<" && text[i + run] === c) run++;
    const taken = mdSpan(text, i, run, next, ticks, depth);
    if (!taken) { i += run; continue; }
    flush(i);
    parent.append(taken.node);
    i = from = taken.end;
  }
  flush(text.length);
}

// The span that starts at `i` (a run of `run` marks), as {node, end}, or null.
function mdSpan(text, i, run, next, ticks, depth) {
  const c = text[i];
  if (c === "\\") {
    const escaped = text[i + 1];
    return escaped && MD_PUNCT.has(escaped) ? { node: document.createTextNode(escaped), end: i + 2 } : null;
  }
  if (c === "`") {
    const close = ticks.get(i);
    if (close === undefined || close < 0) return null;
    let code = text.slice(i + run, close);
    if (code.length > 2 && code[0] === " " && code[code.length - 1] === " " && code.trim()) code = code.slice(1, -1);
    return { node: el("code", "", code), end: close + run };
  }
  if ((c === "[" || c === "<") && depth >= MD_MAX_INLINE_DEPTH) return null;
  if (c === "[") {
    const close = next("]", i + 1);
    if (close < 0 || text[close + 1] !== "(") return null;
    const paren = next(")", close + 2);
    if (paren < 0) return null;
    const href = mdSafeUrl(text.slice(close + 2, paren).trim().split(" ")[0]);
    if (!href) return null; // shown as the text it is
    const a = mdLink(href);
    mdInline(text.slice(i + 1, close), a, MD_MAX_INLINE_DEPTH); // no links inside links
    return { node: a, end: paren + 1 };
  }
  if (c === "<") {
    const close = next(">", i + 1);
    const href = close > i + 1 ? mdSafeUrl(text.slice(i + 1, close)) : null;
    if (!href || text.slice(i + 1, close).indexOf(" ") >= 0) return null;
    const a = mdLink(href);
    a.textContent = text.slice(i + 1, close);
    return { node: a, end: close + 1 };
  }
  return mdEmphasis(text, i, run, next, depth);
}

function mdEmphasis(text, i, run, next, depth) {
  const c = text[i];
  if (c === "~" && run !== 2) return null;
  const mark = run >= 2 ? c + c : c;
  const open = i + run;
  const word = (ch) => ch !== undefined && /[\p{L}\p{N}]/u.test(ch);
  if (open >= text.length || text[open] === " " || text[open] === "\n") return null;
  if (c === "_" && word(text[i - 1])) return null;
  const close = next(mark, open);
  if (close <= open) return null;
  const before = text[close - 1];
  if (before === " " || before === "\n" || (c === "_" && word(text[close + mark.length]))) return null;
  const node = el(c === "~" ? "del" : mark.length === 2 ? "strong" : "em");
  if (run > mark.length) node.append(document.createTextNode(c.repeat(run - mark.length)));
  mdInline(text.slice(open, close), node, depth + 1);
  return { node, end: close + mark.length };
}

// The Markdown of one text part as it streams: the blocks known to be complete are
// rendered once; only the last, still open block is rendered again, once a frame.
class MarkdownView {
  constructor(box) {
    this.box = box;
    this.text = "";
    this.settled = 0;  // where the open block starts in `text`
    this.tail = [];    // the open block's nodes
    this.dirty = false;
    this.scheduled = false;
  }

  append(delta) {
    this.text += delta;
    this.dirty = true;
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => { this.scheduled = false; this.flush(); });
  }

  flush() {
    if (!this.dirty) return;
    this.dirty = false;
    const raw = this.text.slice(this.settled).split("\n");
    const lines = raw.map((line) => line.replaceAll("\t", "    ").replace(/\r$/, ""));
    const blocks = mdParse(lines, 0);
    for (const node of this.tail) node.remove();
    // A block is complete once a later one has begun on a complete line.
    let done = 0;
    while (done + 1 < blocks.length && blocks[done + 1].start < lines.length - 1) done++;
    mdRender(blocks.slice(0, done), this.box);
    if (done > 0) {
      for (let n = 0; n < blocks[done].start; n++) this.settled += raw[n].length + 1;
    }
    const open = document.createDocumentFragment();
    mdRender(blocks.slice(done), open);
    this.tail = [...open.childNodes];
    this.box.append(open);
  }
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
    this.subs = new Map();  // an agent call's inner call: its key -> its nested card
    this.subTexts = new Map(); // a stretch of an inner run's text: its id -> its node
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
        let node = null;
        let view = null;
        if (part.type === "text") {
          const box = el("div", "text md");
          view = new MarkdownView(box);
          this.stepBox().append(box);
        } else {
          const details = el("details", "reasoning");
          details.append(el("summary", "", "Reasoning"));
          const pre = el("pre");
          node = document.createTextNode("");
          pre.append(node);
          details.append(pre);
          this.stepBox().append(details);
        }
        this.texts[chunk.id] = { node, view, part };
        break;
      }
      case "text-delta":
      case "reasoning-delta": {
        const open = this.texts[chunk.id];
        if (!open) break;
        if (open.view) open.view.append(chunk.delta);
        else open.node.appendData(chunk.delta);
        open.part.text += chunk.delta;
        break;
      }
      case "text-end":
      case "reasoning-end":
        if (this.texts[chunk.id]) {
          this.texts[chunk.id].part.state = "done";
          if (this.texts[chunk.id].view) this.texts[chunk.id].view.flush();
        }
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
        // A call cancelled by the user is answered too: its output says so to the model.
        if (tool.cancelled !== undefined) this.toolResult(tool, text, "error", "cancelled");
        else this.toolResult(tool, text, "done", "done");
        break;
      }
      case "data-tool-cancelled": {
        const tool = this.tools[chunk.data.toolCallId];
        if (!tool) break;
        tool.cancelled = chunk.data.reason || "";
        this.toolState(tool, "error", "cancelled");
        this.dropCancel(tool);
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
      case "data-tool-media": this.toolMedia(chunk.data); break;
      case "data-steer": this.steer(chunk); break;
      case "data-subrun": this.subrun(chunk); break;
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
    for (const card of this.subs.values()) {
      if (card.box.classList.contains("running")) this.subState(card, "cancelled");
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

  // An image a tool returned: an <img> whose src is its data URL (never markup); any
  // other file, or a URL that is not a base64 image, is named as text.
  toolMedia(data) {
    const tool = data && this.tools[data.toolCallId];
    if (!tool) return;
    const url = typeof data.url === "string" ? data.url : "";
    const type = typeof data.mediaType === "string" ? data.mediaType : "";
    let node;
    if (/^data:image\/[a-z0-9.+-]+;base64,[A-Za-z0-9+/]*={0,2}$/.test(url) && type.startsWith("image/")) {
      node = el("img", "media");
      node.alt = "image from " + tool.name + " (" + type + ")";
      node.src = url;
    } else {
      const name = typeof data.filename === "string" && data.filename ? data.filename + ", " : "";
      node = el("div", "media-file", "file: " + name + type + ", " + Number(data.size) + " bytes");
    }
    const after = tool.lastMedia || tool.result; // in the order the tool returned them
    tool.card.insertBefore(node, after.nextSibling);
    tool.lastMedia = node;
  }

  // A message sent to the running agent: queued where it was typed, then moved to where
  // the agent read it (before the next step) and labelled with that step.
  steer(chunk) {
    this.steers = this.steers || {};
    let shown = this.steers[chunk.id];
    if (!shown) {
      const node = el("div", "steer");
      const state = el("span", "state", "");
      node.append(el("div", "role", "you, during the run"), el("div", "text", chunk.data.text), state);
      const part = { type: "data-steer", id: chunk.id, data: chunk.data };
      this.message.parts.push(part);
      shown = this.steers[chunk.id] = { node, state, part };
    } else if (shown.part.data.status === "delivered") {
      return; // a late echo of its queuing
    }
    shown.part.data = chunk.data;
    if (chunk.data.status === "delivered") {
      this.box.append(shown.node); // the next step's box comes after it
      this.step = null;
      shown.state.textContent = "read before step " + chunk.data.step;
      shown.node.classList.add("delivered");
    } else {
      this.stepBox().append(shown.node);
      shown.state.textContent = "queued: the agent reads it after this step";
    }
  }

  // ---- an agent called as a tool: its run drawn inside the call's card, nested again
  // for an agent it calls in turn. Every string is set as text, never as markup.

  // Where the parts of the run reported under `parent` go: the top agent call's card,
  // or the card of the inner agent call whose key it is.
  subBody(parent, top) {
    if (parent === top) {
      const tool = this.tools[top];
      if (!tool) return null;
      if (!tool.body) {
        tool.body = el("div", "subrun");
        tool.card.insertBefore(tool.body, tool.result);
      }
      return tool.body;
    }
    return this.subCard(String(parent), top).body;
  }

  subCard(key, top, parent) {
    let card = this.subs.get(key);
    if (!card) {
      const box = el("div", "tool nested");
      const state = el("span", "state", "");
      const name = el("span", "name", "");
      const args = el("pre", "args");
      const body = el("div", "subrun");
      const result = el("pre", "result");
      box.append(state, name, args, body, result);
      card = { box, state, name, args, body, result, placed: false };
      this.subs.set(key, card);
    }
    if (!card.placed && parent !== undefined) {
      const home = this.subBody(parent, top);
      if (home) {
        home.append(card.box);
        card.placed = true;
      }
    }
    return card;
  }

  subText(id, parent, top) {
    let node = this.subTexts.get(id);
    if (!node) {
      node = el("div", "text subrun-text");
      node.append(document.createTextNode(""));
      const home = this.subBody(parent, top);
      if (home) home.append(node);
      this.subTexts.set(id, node);
    }
    return node;
  }

  // The inner run's text as it streams (transient); its stretch's part replaces it.
  subLive(data) {
    if (typeof data.part !== "string" || !data.event || typeof data.event.text !== "string") return;
    this.subText(data.part, data.parent, data.toolCallId).firstChild.appendData(data.event.text);
  }

  subrun(chunk) {
    const data = chunk.data || {};
    const kept = this.message.parts.find((part) => part.type === "data-subrun" && part.id === chunk.id);
    if (kept) kept.data = data;
    else this.message.parts.push({ type: "data-subrun", id: chunk.id, data });
    if (data.kind === "text") {
      this.subText(chunk.id, data.parent, data.toolCallId).firstChild.data = String(data.text);
    } else if (data.kind === "tool") {
      const card = this.subCard(String(data.key), data.toolCallId, data.parent);
      card.name.textContent = String(data.name);
      card.args.textContent = String(data.input || "");
      if (typeof data.output === "string") card.result.textContent = data.output;
      this.subState(card, String(data.state));
    }
  }

  subState(card, state) {
    const classes = { queued: "running", running: "running", awaiting: "awaiting", done: "done" };
    const labels = { running: "running…", awaiting: "awaiting approval" };
    card.box.classList.remove("running", "done", "error", "awaiting");
    card.box.classList.add(classes[state] || "error");
    card.state.textContent = labels[state] || state;
  }

  toolState(tool, cls, text) {
    tool.card.classList.remove("streaming", "running", "done", "error", "awaiting");
    tool.card.classList.add(cls);
    tool.state.textContent = text;
  }

  toolResult(tool, text, cls, label) {
    tool.result.textContent = text;
    this.toolState(tool, cls, label);
    this.dropCancel(tool);
  }

  // A Cancel button on a call that runs or waits, while this message's run is live.
  cancelControl(id) {
    const tool = this.tools[id];
    if (!tool || tool.cancel || tool.cancelled !== undefined || !current || current.renderer !== this) return;
    const button = el("button", "cancel-call", "Cancel");
    button.type = "button";
    button.setAttribute("aria-label", "Cancel " + tool.name);
    button.addEventListener("click", () => cancelCall(tool, id));
    tool.card.querySelector(".name").after(button);
    tool.cancel = button;
  }

  dropCancel(tool) {
    if (tool.cancel) tool.cancel.remove();
    tool.cancel = null;
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
        if (this.tools[data.toolCallId] && this.tools[data.toolCallId].cancelled === undefined) {
          this.toolState(this.tools[data.toolCallId], "running", "running…");
        }
        this.cancelControl(data.toolCallId);
        break;
      case "tool_queued":
        if (this.tools[data.toolCallId]) this.toolState(this.tools[data.toolCallId], "running", "queued");
        this.cancelControl(data.toolCallId);
        break;
      case "tool_finished":
        line.end(data.toolCallId, data.t, !data.ok);
        break;
      case "tool_progress":
        this.toolProgress(data);
        break;
      case "sub_run":
        this.subLive(data);
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

function renderMarkdown(text, container) {
  const box = el("div", "text md");
  container.append(box);
  const view = new MarkdownView(box);
  view.append(text);
  view.flush();
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
      else for (const part of message.parts) if (part.type === "text") renderMarkdown(part.text, r.stepBox());
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

// Cancel one tool call: the run goes on, and the model is told the user cancelled it.
async function cancelCall(tool, id) {
  if (!tool.cancel) return;
  tool.cancel.disabled = true;
  tool.state.textContent = "cancelling…";
  const response = await fetch("api/chat/" + encodeURIComponent(chatId) + "/cancel", {
    method: "POST",
    headers: headers({ "content-type": "application/json" }),
    body: JSON.stringify({ toolCallId: id }),
  }).catch(() => null);
  if (!response || (response.status !== 204 && response.status !== 409)) {
    if (tool.cancel) tool.cancel.disabled = false; // it may be tried again
  }
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
  if (!text || (current && current.stopping)) return;
  $("prompt").value = "";
  if (current) steer(text);
  else send(text);
});

// Typing while a run streams steers it: the server queues the message for its next step.
async function steer(text) {
  const shown = current.renderer;
  const url = "api/chat/" + encodeURIComponent(chatId) + "/steer";
  const response = await fetch(url, {
    method: "POST",
    headers: headers({ "content-type": "application/json" }),
    body: JSON.stringify({ text }),
  }).catch(() => null);
  const body = response ? await response.json().catch(() => ({})) : {};
  if (!response || !response.ok) {
    shown.box.append(el("div", "error", "not sent: " + (body.error || "the server could not be reached")));
    return;
  }
  // Shown at once (the run's stream says it too, then where the agent read it).
  shown.steer({ type: "data-steer", id: "steer-" + body.id, data: { status: "queued", text, step: null } });
}
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
