// Packs the release page after Trunk has built it (Trunk.toml's post-build hook; a debug build,
// `trunk serve`, is left as it is). Three steps, each checked before anything is written:
//
// 1. The WebAssembly's imports from wasm-bindgen's glue get short names. wasm-bindgen names
//    each `__wbg_<what>_<16 hex digits>`, and the names are in the wasm's import table and
//    again in the glue's import object, hex that gzip cannot shrink (about 200 imports).
//    Each name must occur exactly once in the glue, as a key of its import object (so renaming
//    that one place renames the key); no import may end up named twice; the renamed module
//    must compile, with no long name left. Exports are renamed only where the glue reads them
//    as `wasm.NAME` and nowhere else.
// 2. The glue, its snippets, style.css and index.html's own script are minified by esbuild
//    (pinned, installed under .tools/ by scripts/setup.sh). Trunk's own JavaScript minifier breaks wasm-bindgen's glue,
//    and its HTML minifier the markup `coreplay export --format html` reads, so neither is used.
// 3. index.html's integrity hashes (Trunk's subresource integrity) are set to the new files',
//    then every hash in it is checked against the file it names.
//
// Usage: node scripts/pack-page.mjs [DIR]; DIR defaults to Trunk's staging folder.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";

const fail = (msg) => {
  console.error(`pack-page: ${msg}`);
  process.exit(1);
};

if (process.argv.length < 3 && process.env.TRUNK_PROFILE !== "release") {
  process.exit(0);
}
const dir = process.argv[2] ?? process.env.TRUNK_STAGING_DIR;
if (!dir) fail("no folder given and TRUNK_STAGING_DIR is not set");

let esbuild;
try {
  esbuild = createRequire(new URL("../.tools/", import.meta.url))("esbuild");
} catch {
  fail("esbuild is not installed under .tools/; run scripts/setup.sh");
}

const GLUE = "coreplay-frontend.js";
const WASM = "coreplay-frontend_bg.wasm";

// --- 1. Short import names -------------------------------------------------------------------

/** Reads an unsigned LEB128 number at `pos`: [value, next position]. */
function leb(bytes, pos) {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= bytes.length) fail(`${WASM}: cut short inside a number`);
    const b = bytes[pos++];
    value |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (b < 0x80) return [Number(value), pos];
  }
}

/** Writes `n` as unsigned LEB128. */
function uleb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** Skips one import's description (after its kind byte) and returns the next position. */
function skipImportDesc(bytes, kind, pos) {
  const limits = (p) => {
    const flags = bytes[p++];
    [, p] = leb(bytes, p);
    if (flags & 1) [, p] = leb(bytes, p);
    return p;
  };
  switch (kind) {
    case 0: // function: type index
      return leb(bytes, pos)[1];
    case 1: // table: element type, limits
      return limits(pos + 1);
    case 2: // memory: limits
      return limits(pos);
    case 3: // global: value type, mutability
      return pos + 2;
    case 4: // tag: attribute, type index
      return leb(bytes, pos + 1)[1];
    default:
      return fail(`${WASM}: an import of unknown kind ${kind}`);
  }
}

/** The n-th short name: a..z, A..Z, then two characters and more. */
function shortName(n) {
  const first = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const rest = first + "0123456789_$";
  let s = first[n % first.length];
  n = Math.floor(n / first.length);
  while (n > 0) {
    s += rest[n % rest.length];
    n = Math.floor(n / rest.length);
  }
  return s;
}

/** `name` as a whole JavaScript identifier (then `after`, looked at but not taken). */
const word = (name, flags = "", after = "") =>
  new RegExp(`(?<![\\w$])${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\w$])${after ? `(?=${after})` : ""}`, flags);

/**
 * The wasm with the names between it and the glue shortened, the glue to match, and how many
 * were renamed. Imports: wasm-bindgen's own (`__wbg_…`, `__wbindgen_…`), each a key of the
 * glue's import object exactly once; a snippet's imports are its exported functions and keep
 * their names. Exports: those the glue only reads as `wasm.NAME` (the long closure shims, the
 * allocator), not the memory.
 */
function renameBoundary(wasm, glue) {
  const text = new TextDecoder("utf-8", { fatal: true });
  const enc = new TextEncoder();
  if (wasm.length < 8 || text.decode(wasm.subarray(0, 4)) !== "\0asm") fail(`${WASM} is not WebAssembly`);
  const out = [wasm.subarray(0, 8)]; // the pieces of the new module, in order
  const imports = new Map();
  const exports = new Map();
  const seen = new Set(); // module and name of each import as written
  const name = (p) => {
    let len;
    [len, p] = leb(wasm, p);
    try {
      return [text.decode(wasm.subarray(p, p + len)), p + len];
    } catch {
      return fail(`${WASM}: a name at byte ${p} is not UTF-8`);
    }
  };
  const named = (s) => {
    const b = enc.encode(s);
    return [...uleb(b.length), ...b];
  };
  let pos = 8;
  while (pos < wasm.length) {
    const id = wasm[pos];
    const [size, start] = leb(wasm, pos + 1);
    const end = start + size;
    if (end > wasm.length) fail(`${WASM}: a section runs past the end`);
    if (id !== 2 && id !== 7) {
      out.push(wasm.subarray(pos, end));
      pos = end;
      continue;
    }
    let [count, p] = leb(wasm, start);
    const body = uleb(count);
    while (count--) {
      if (id === 2) {
        let module, field;
        [module, p] = name(p);
        [field, p] = name(p);
        const desc = p;
        p = skipImportDesc(wasm, wasm[p], p + 1);
        if (/^__wb(g|indgen)_/.test(field)) {
          const uses = glue.match(word(field, "g"))?.length ?? 0;
          if (uses !== 1 || !word(field, "", "\\s*:").test(glue)) {
            fail(`the glue names the import ${field} ${uses} times, not once as a key`);
          }
          if (!imports.has(field)) imports.set(field, shortName(imports.size));
          field = imports.get(field);
        }
        const key = `${module}\0${field}`;
        if (seen.has(key)) fail(`${WASM} would import ${module} ${field} twice`);
        seen.add(key);
        body.push(...named(module), ...named(field), ...wasm.subarray(desc, p));
      } else {
        let field;
        [field, p] = name(p);
        const kind = wasm[p];
        const desc = p;
        p = leb(wasm, p + 1)[1];
        // Read only as `wasm.NAME`: no other property of that name, no string of it. (The glue
        // also has JavaScript functions of the same names; esbuild renames those.)
        const read = glue.match(word(`wasm.${field}`, "g"))?.length ?? 0;
        const property = glue.split(`.${field}`).slice(1).filter((after) => !/^[\w$]/.test(after)).length;
        const quoted = ['"', "'", "`"].some((q) => glue.includes(`${q}${field}${q}`));
        if (kind === 0 && field.length > 2 && read > 0 && read === property && !quoted) {
          // `$` keeps them apart from the imports' names (not that they share a namespace).
          exports.set(field, `$${shortName(exports.size)}`);
          field = exports.get(field);
        }
        body.push(...named(field), ...wasm.subarray(desc, p));
      }
    }
    if (p !== end) fail(`${WASM}: section ${id} is not what it says`);
    out.push(Uint8Array.from([id, ...uleb(body.length)]), Uint8Array.from(body));
    pos = end;
  }
  // Replaced by functions: a `$` in a name is not a replacement pattern.
  for (const [from, to] of imports) glue = glue.replace(word(from), () => to);
  for (const [from, to] of exports) glue = glue.replace(word(`wasm.${from}`, "g"), () => `wasm.${to}`);
  return [Buffer.concat(out), glue, imports.size, exports.size];
}

// --- Reading, checking, writing --------------------------------------------------------------

const path = (name) => join(dir, name);
const read = (name) => {
  try {
    return readFileSync(path(name));
  } catch (e) {
    return fail(`cannot read ${path(name)}: ${e.message}`);
  }
};
const sri = (bytes) => `sha384-${createHash("sha384").update(bytes).digest("base64")}`;

function* files(folder) {
  for (const name of readdirSync(folder)) {
    const full = join(folder, name);
    if (statSync(full).isDirectory()) yield* files(full);
    else yield full;
  }
}

const wasm = read(WASM);
const [packedWasm, renamedGlue, renamedImports, renamedExports] = renameBoundary(wasm, read(GLUE).toString("utf8"));

// The renamed module must still be WebAssembly, and everything it imports from the glue must be
// there by its new name.
let module;
try {
  module = new WebAssembly.Module(packedWasm);
} catch (e) {
  fail(`the renamed ${WASM} does not compile: ${e.message}`);
}
for (const { name } of WebAssembly.Module.imports(module)) {
  if (/^__wb(g|indgen)_/.test(name)) fail(`${WASM} still imports ${name} by its long name`);
}

const minify = (source, loader, file, target) => {
  let result;
  try {
    result = esbuild.transformSync(source, {
      loader,
      minify: true,
      target,
      format: loader === "js" && target !== "es5" ? "esm" : undefined,
      logLevel: "silent",
    });
  } catch (e) {
    return fail(`esbuild cannot minify ${file}: ${e.message}`);
  }
  // wasm-bindgen's import object names a snippet's module once per import of it (the same
  // module, so the repeated key is harmless); anything else esbuild warns about stops the build.
  const warnings = result.warnings.filter(
    (w) => !(w.id === "duplicate-object-key" && w.text.includes('"./snippets/')),
  );
  if (warnings.length) {
    fail(`esbuild warns about ${file}: ${warnings.map((w) => `${w.text} (${w.id})`).join("; ")}`);
  }
  return result.code;
};

const changed = new Map(); // name inside dir -> new bytes
changed.set(WASM, packedWasm);
// What wasm-bindgen's glue itself needs (modules, async, BigInt): nothing newer is made.
const glue = minify(renamedGlue, "js", GLUE, "es2020");
changed.set(GLUE, Buffer.from(glue));
for (const full of files(dir)) {
  const name = relative(dir, full).split("\\").join("/");
  if (name.startsWith("snippets/") && name.endsWith(".js")) {
    changed.set(name, Buffer.from(minify(read(name).toString("utf8"), "js", name, "es2020")));
  } else if (name.endsWith(".css") && !name.includes("/")) {
    changed.set(name, Buffer.from(minify(read(name).toString("utf8"), "css", name)));
  }
}

// index.html: its own script (written to run in any browser, to say when the page cannot) is
// minified as ES5; Trunk's start-up module and the markup stay as they are. Integrity hashes
// follow the files they name.
let index = read("index.html").toString("utf8");
index = index.replace(/<script>([\s\S]*?)<\/script>/g, (_, code) => {
  return `<script>${minify(code, "js", "index.html's script", "es5").trim()}</script>`;
});
for (const [name, bytes] of changed) {
  const before = sri(read(name));
  if (index.includes(before)) index = index.split(before).join(sri(bytes));
}
const final = (name) => changed.get(name) ?? read(name);
// Trunk writes each address as the public URL (`--public-url`, `./` by default) and the file.
const publicUrl = process.env.TRUNK_PUBLIC_URL || "./";
for (const [, tag] of index.matchAll(/<(?:link|script)\b([^>]*)>/g)) {
  const integrity = tag.match(/\bintegrity="([a-z0-9]+)-([^"]+)"/);
  if (!integrity) continue;
  const href = tag.match(/\b(?:href|src)="([^"]+)"/)?.[1];
  const file = [publicUrl, "./"].filter((p) => href?.startsWith(p)).map((p) => href.slice(p.length))[0];
  if (!file) fail(`index.html has an integrity hash for ${href ?? "no file"}, not a file of ${publicUrl}`);
  const [, algorithm, hash] = integrity;
  if (createHash(algorithm).update(final(file)).digest("base64") !== hash) {
    fail(`index.html's integrity hash of ${file} does not match the packed file`);
  }
}
changed.set("index.html", Buffer.from(index));

// Written beside, then renamed over: an error leaves the build's files as Trunk wrote them or
// (past the first rename) fails the build, never a half-written file.
let before = 0;
let after = 0;
try {
  for (const [name, bytes] of changed) {
    writeFileSync(`${path(name)}.packed`, bytes);
  }
  for (const [name, bytes] of changed) {
    before += statSync(path(name)).size;
    after += bytes.length;
    renameSync(`${path(name)}.packed`, path(name));
  }
} catch (e) {
  for (const name of changed.keys()) rmSync(`${path(name)}.packed`, { force: true });
  fail(`cannot write the packed files: ${e.message}`);
}
console.error(
  `pack-page: ${renamedImports} imports and ${renamedExports} exports renamed; the page's files minified: ${(before / 1024).toFixed(1)} -> ${(after / 1024).toFixed(1)} KiB`,
);
