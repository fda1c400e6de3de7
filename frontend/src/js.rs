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
}

/// The message of a rejected promise.
pub fn error_text(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
