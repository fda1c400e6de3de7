//! The few browser calls the page needs that `web-sys` has no stable binding for (the
//! Compression Streams API) or that read much shorter in JavaScript. Each returns a promise
//! that rejects with an `Error` whose message is shown to the user as is.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export async function fetch_bytes(url, limit) {
  const own = globalThis.coreplayStandalone;
  if (own && own.files && Object.prototype.hasOwnProperty.call(own.files, url)) return own.files[url];
  const r = await fetch(url);
  if (!r.ok) throw new Error(`the server answered ${r.status} ${r.statusText}`.trim());
  const len = Number(r.headers.get('content-length') || 0);
  if (len > limit) throw new Error(`the file is ${len} bytes, more than the ${limit} this page reads`);
  const buf = await r.arrayBuffer();
  if (buf.byteLength > limit) throw new Error(`the file is more than the ${limit} bytes this page reads`);
  return new Uint8Array(buf);
}
export async function file_bytes(file, limit) {
  if (file.size > limit) throw new Error(`${file.name} is ${file.size} bytes, more than the ${limit} this page reads`);
  return new Uint8Array(await file.arrayBuffer());
}
export async function gunzip_text(bytes, limit) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) { reader.cancel(); throw new Error(`the trace is more than ${limit} bytes uncompressed, more than this page reads`); }
    chunks.push(value);
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(await new Blob(chunks).arrayBuffer());
}
export function standalone_query() {
  const own = globalThis.coreplayStandalone;
  return own && typeof own.query === 'string' ? own.query : undefined;
}
function base64_of(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
export function base64(bytes) { return base64_of(bytes); }
export function base64_array(bytes) { return base64_of(bytes); }
async function gzip_bytes(data) {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
export async function gzipped(bytes) {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b ? bytes : gzip_bytes(bytes);
}
export async function page_parts() {
  const base = new URL('.', location.href);
  const get = async (path, what) => {
    const r = await fetch(new URL(path, base));
    if (!r.ok) throw new Error(`the page's ${what} could not be read (${r.status}): is this page served as coreplay builds it?`);
    return r;
  };
  const index = await (await get('index.html', 'index.html')).text();
  const css = await (await get('style.css', 'style sheet')).text();
  const glue = await (await get('coreplay-frontend.js', 'JavaScript')).text();
  const snippets = [];
  for (const m of glue.matchAll(/from ?['"](\.\/snippets\/[A-Za-z0-9_\-\/.]+\.js)['"]/g)) {
    if (!snippets.some((s) => s[0] === m[1])) snippets.push([m[1], await (await get(m[1], 'JavaScript')).text()]);
  }
  const wasm = new Uint8Array(await (await get('coreplay-frontend_bg.wasm', 'WebAssembly')).arrayBuffer());
  return JSON.stringify({ index, css, glue, snippets, wasm_gz: base64_of(await gzip_bytes(wasm)) });
}
export function download(name, data, type) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([data], { type }));
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
export async function copy_text(text) {
  await navigator.clipboard.writeText(text);
}
export function now_ms() { return performance.now(); }
export function after_ms(ms, f) { setTimeout(f, ms); }

// The agent's WebSocket lives in a worker, so that reading it never waits for the page's own
// work (a long frame, a redraw, the tab in the background): the agent drops a client's events
// only when that client stops reading. The worker hands the page what came, in order, as one
// batch at a time (UTF-8 bytes and each message's length), the next one when the page has
// taken the last. Past LIMIT characters not taken (about as many bytes: the agent's messages
// are JSON, ASCII but for names), an event batch is counted, not kept, and the count is
// handed over as the agent would report it.
function agent_worker() {
  const LIMIT = 256 << 20, enc = new TextEncoder();
  let ws, parts = [], outbox = [], chars = 0, dropped = 0, run = 0, waiting = false;
  // The count of what was left out goes before whatever comes next, as the agent's would.
  const report = () => {
    if (dropped) parts.push(`{"type":"events","data":{"run":${run},"events":[],"dropped":${dropped}}}`);
    dropped = 0;
  };
  const flush = () => {
    report();
    if (!parts.length) return;
    const chunks = parts.map((s) => enc.encode(s)), lens = new Uint32Array(chunks.length);
    const buf = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    chunks.forEach((c, i) => { buf.set(c, at); at += lens[i] = c.length; });
    parts = []; chars = 0; waiting = true;
    postMessage([0, buf, lens], [buf.buffer, lens.buffer]);
  };
  onmessage = (e) => {
    const m = e.data;
    if (m === 0) { waiting = false; flush(); }
    else if (typeof m === 'string') { if (ws?.readyState === 1) ws.send(m); else outbox.push(m); }
    else {
      try { ws = new WebSocket(m.url); } catch (err) { postMessage([2, String(err.message || err)]); return; }
      ws.onopen = () => { outbox.forEach((t) => ws.send(t)); outbox = []; };
      ws.onmessage = (e) => {
        const s = e.data;
        if (typeof s !== 'string') return;
        if (chars > LIMIT && s.startsWith('{"type":"events"')) {
          // A message that does not read as an event batch is kept: the page says what is wrong.
          let d;
          try { d = JSON.parse(s).data; } catch { d = null; }
          if (d && Array.isArray(d.events) && Number.isSafeInteger(d.run)) {
            if (d.run !== run) report();
            run = d.run; dropped += d.events.length + (Number(d.dropped) || 0);
            return;
          }
        }
        report();
        parts.push(s); chars += s.length;
        if (!waiting) flush();
      };
      ws.onclose = () => { flush(); postMessage([1]); };
    }
  };
}
let agent_worker_url;
export function agent_socket(url, on) {
  agent_worker_url ||= URL.createObjectURL(new Blob([`(${agent_worker})()`], { type: 'text/javascript' }));
  const w = new Worker(agent_worker_url);
  w.onmessage = (e) => { const [kind, a, b] = e.data; on(kind, a, b); if (kind === 0) w.postMessage(0); };
  w.onerror = (e) => { e.preventDefault(); on(2, `the connection's worker failed: ${e.message || 'not started'}`); };
  w.stop = () => { w.onmessage = w.onerror = null; w.terminate(); };
  w.postMessage({ url });
  return w;
}

export function post_to_parent(msg) {
  if (window.parent && window.parent !== window) window.parent.postMessage(msg, '*');
}
"#)]
extern "C" {
    /// GETs `url` (at most `limit` bytes).
    #[wasm_bindgen(catch)]
    pub async fn fetch_bytes(url: &str, limit: f64) -> Result<JsValue, JsValue>;
    /// Reads a picked or dropped `File` (at most `limit` bytes).
    #[wasm_bindgen(catch)]
    pub async fn file_bytes(file: &web_sys::File, limit: f64) -> Result<JsValue, JsValue>;
    /// Decompresses gzip bytes into text (at most `limit` bytes of it).
    #[wasm_bindgen(catch)]
    pub async fn gunzip_text(bytes: &Uint8Array, limit: f64) -> Result<JsValue, JsValue>;
    /// The query the standalone file was written with; `None` for a served page.
    pub fn standalone_query() -> Option<String>;
    /// Standard base64 of `bytes`.
    pub fn base64(bytes: &[u8]) -> String;
    /// Standard base64 of `bytes` (a JavaScript array, not copied into the page's memory).
    pub fn base64_array(bytes: &Uint8Array) -> String;
    /// `bytes` gzip-compressed, unless they are gzip already (by the magic number).
    #[wasm_bindgen(catch)]
    pub async fn gzipped(bytes: &Uint8Array) -> Result<JsValue, JsValue>;
    /// The page's own files, read from where it is served, as JSON: `{index, css, glue,
    /// snippets: [[path, text]…], wasm_gz}` (the WebAssembly gzip-compressed, base64).
    #[wasm_bindgen(catch)]
    pub async fn page_parts() -> Result<JsValue, JsValue>;
    /// Offers `text` as a download named `name`, of MIME type `type`.
    #[wasm_bindgen(js_name = download)]
    pub fn download_text(name: &str, text: &str, r#type: &str);
    /// Offers `bytes` as a download named `name`, of MIME type `type`.
    #[wasm_bindgen(js_name = download)]
    pub fn download_bytes(name: &str, bytes: &Uint8Array, r#type: &str);
    /// Puts `text` on the clipboard.
    #[wasm_bindgen(catch)]
    pub async fn copy_text(text: &str) -> Result<JsValue, JsValue>;
    /// `performance.now()`.
    pub fn now_ms() -> f64;
    /// Calls the function `f` once, `ms` from now (`setTimeout`).
    pub fn after_ms(ms: f64, f: &JsValue);

    /// Posts a message to the embedding page, if any.
    pub fn post_to_parent(msg: &JsValue);

    /// The worker that holds the agent's WebSocket (see `agent_socket`).
    pub type AgentSocket;
    /// Opens the agent's WebSocket at `url` in a worker. `on(kind, a, b)` is called with
    /// `0, bytes, lengths` for the messages that came (UTF-8, one after the other), `1` when
    /// the socket closed (after its last messages), `2, reason` when the URL was refused or
    /// the worker failed.
    /// Fails when the browser will not start the worker.
    #[wasm_bindgen(catch)]
    pub fn agent_socket(
        url: &str,
        on: &Closure<dyn FnMut(u32, JsValue, JsValue)>,
    ) -> Result<AgentSocket, JsValue>;
    /// Sends a text message once the socket is open.
    #[wasm_bindgen(method, js_name = postMessage)]
    pub fn send(this: &AgentSocket, text: &str);
    /// Stops the worker, and with it the socket; nothing it sent is handed over after this.
    #[wasm_bindgen(method)]
    pub fn stop(this: &AgentSocket);
}

/// The message of a rejected promise.
pub fn error_text(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
