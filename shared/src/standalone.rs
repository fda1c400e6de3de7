//! The standalone page: one HTML file holding the page (its WebAssembly, JavaScript and
//! style) and one run, that plays from `file://`, an LMS upload or an e-mail attachment with
//! no server and no network. Assembled here, from the built page's own files, by both
//! `coreplay export --format html` and the page's "download as one HTML file", so the two
//! write the same file.
//!
//! How it loads without fetching anything: a browser refuses module scripts and `fetch` from
//! `file://`, so nothing may be a separate file.
//! - The style goes into a `<style>` element.
//! - The JavaScript modules (wasm-bindgen's glue and its snippets) become `data:` URLs named
//!   by an import map; the glue's imports of its snippets are renamed to those names.
//! - The WebAssembly, gzip-compressed and base64-encoded, sits in an inert `<script
//!   type="application/octet-stream">` element; the start-up script decompresses it with the
//!   browser's `DecompressionStream` and hands the bytes to the glue.
//! - The run (its `.coreplay.gz` file, base64) and the page address's query (which views, time,
//!   speed, lesson) are set on `window.coreplayStandalone` before the page starts; the page
//!   reads its options from that query and its `trace=NAME` from those bytes.
//!
//! Everything put into the file is escaped for where it goes: base64 and JSON with `<`
//! escaped cannot end a `<script>` element.

/// The built page's files this needs.
#[derive(Debug, Clone, Copy)]
pub struct PageParts<'a> {
    /// The built `index.html` (Trunk's output).
    pub index_html: &'a str,
    /// Its style sheet.
    pub css: &'a str,
    /// wasm-bindgen's JavaScript glue.
    pub glue: &'a str,
    /// Its snippet modules: (path as the glue imports it, e.g.
    /// `./snippets/coreplay-frontend-…/inline0.js`, the module's text).
    pub snippets: &'a [(&'a str, &'a str)],
    /// The WebAssembly, gzip-compressed, base64-encoded.
    pub wasm_gz_base64: &'a str,
}

/// The run the file plays.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// Its file name, e.g. `gil.coreplay.gz` (the page's `trace=` names it).
    pub name: &'a str,
    /// The `.coreplay.gz` file, base64-encoded.
    pub gz_base64: &'a str,
    /// The rest of the page's query, e.g. `view=cores,timeline&t=12ms` (no `trace=`): how it
    /// is shown.
    pub query: &'a str,
}

/// Why the file cannot be assembled.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StandaloneError {
    /// The built page lacks a part this needs (a Trunk or wasm-bindgen that writes its files
    /// differently).
    #[error("the built page has no {0}: was it built by this coreplay's scripts?")]
    MissingPart(&'static str),
    /// The run's name is not a plain file name.
    #[error("the run's name {} is not a plain file name (letters, digits, '-', '_', '.')", crate::json::quote(.0))]
    BadName(String),
    /// Something given is not base64.
    #[error("the {0} is not base64")]
    NotBase64(&'static str),
}

/// The name the import map gives the glue.
const GLUE: &str = "coreplay-glue";

/// Whether `s` is standard base64 (what the embedded elements may hold).
fn is_base64(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// Whether `name` is a plain file name the page may ask for.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `text` as a JSON string that cannot end a `<script>` element.
fn json_string(text: &str) -> String {
    crate::json::quote(text).replace('<', "\\u003c")
}

/// `text` as a base64 `data:` URL of a JavaScript module.
fn module_url(text: &str, encode: &dyn Fn(&[u8]) -> String) -> String {
    format!("data:text/javascript;base64,{}", encode(text.as_bytes()))
}

/// The `<head>` content of Trunk's page from `<head>` up to where Trunk's own loading starts,
/// and everything after its last preload link (the body): the parts that stay.
fn split_index(index: &str) -> Result<(&str, &str), StandaloneError> {
    let head_end = index
        .find("<link rel=\"stylesheet\"")
        .or_else(|| index.find("<script type=\"module\">"))
        .ok_or(StandaloneError::MissingPart(
            "start-up script in index.html",
        ))?;
    let body = index
        .find("</head>")
        .ok_or(StandaloneError::MissingPart("</head> in index.html"))?;
    Ok((&index[..head_end], &index[body..]))
}

/// The glue with its imports of `snippets` renamed to the import map's names
/// (`coreplay-snippet-N`); other mentions of the paths (the WebAssembly's import table keys)
/// stay as they are.
fn rename_imports(glue: &str, snippets: &[(&str, &str)]) -> Result<String, StandaloneError> {
    let mut out = glue.to_string();
    for (i, (path, _)) in snippets.iter().enumerate() {
        let mut found = false;
        // As wasm-bindgen writes it (`from './x'`) and as a minifier does (`from"./x"`).
        for space in [" ", ""] {
            for quote in ['\'', '"'] {
                let from = format!("from{space}{quote}{path}{quote}");
                if out.contains(&from) {
                    found = true;
                    out = out.replace(
                        &from,
                        &format!("from{space}{quote}coreplay-snippet-{i}{quote}"),
                    );
                }
            }
        }
        if !found {
            return Err(StandaloneError::MissingPart(
                "import of a snippet in the glue",
            ));
        }
    }
    if ["from './", "from \"./", "from'./", "from\"./"]
        .iter()
        .any(|from| out.contains(&format!("{from}snippets/")))
    {
        return Err(StandaloneError::MissingPart("snippet the glue imports"));
    }
    Ok(out)
}

/// Assembles the standalone file. `encode` is base64 (the caller's: the agent's crate, the
/// browser's own in the page), used for the JavaScript modules.
pub fn assemble(
    page: &PageParts<'_>,
    run: &Run<'_>,
    encode: &dyn Fn(&[u8]) -> String,
) -> Result<String, StandaloneError> {
    if !is_plain_name(run.name) {
        return Err(StandaloneError::BadName(run.name.to_string()));
    }
    if !is_base64(page.wasm_gz_base64) {
        return Err(StandaloneError::NotBase64("page's WebAssembly"));
    }
    if !is_base64(run.gz_base64) {
        return Err(StandaloneError::NotBase64("run"));
    }
    // wasm-bindgen's `export { initSync, __wbg_init as default }`, or minified
    // (`export{_t as default,ut as initSync}`): the start-up script imports the default.
    let exports = page.glue.rfind("export").map_or("", |at| &page.glue[at..]);
    if !(exports.contains(" as default") && exports.contains("initSync")) {
        return Err(StandaloneError::MissingPart("wasm-bindgen start function"));
    }
    let (head, tail) = split_index(page.index_html)?;
    let glue = rename_imports(page.glue, page.snippets)?;
    let mut import_map = format!(
        "{{\"imports\":{{{}:{}",
        json_string(GLUE),
        json_string(&module_url(&glue, encode))
    );
    for (i, (_, text)) in page.snippets.iter().enumerate() {
        import_map.push_str(&format!(
            ",{}:{}",
            json_string(&format!("coreplay-snippet-{i}")),
            json_string(&module_url(text, encode))
        ));
    }
    import_map.push_str("}}");
    let query = if run.query.is_empty() {
        format!("trace={}", run.name)
    } else {
        format!(
            "trace={}&{}",
            run.name,
            run.query.trim_start_matches(['?', '&'])
        )
    };
    let css = page.css.replace("</style", "<\\/style");
    Ok(format!(
        r#"{head}<style>
{css}
</style>
<script id="coreplay-wasm" type="application/octet-stream">{wasm}</script>
<script id="coreplay-run" type="application/octet-stream">{run_gz}</script>
<script>
// This file is the coreplay page and one run, playable with no server and no network.
window.coreplayStandalone = {{
  query: {query},
  name: {name},
  bytes: function (id) {{
    var text = document.getElementById(id).textContent;
    var raw = atob(text), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }},
}};
</script>
<script type="importmap">{import_map}</script>
<script type="module">
import init, * as bindings from '{GLUE}';
const standalone = window.coreplayStandalone;
const gz = standalone.bytes('coreplay-wasm');
const wasmBytes = await new Response(
  new Blob([gz]).stream().pipeThrough(new DecompressionStream('gzip'))
).arrayBuffer();
standalone.files = {{ [standalone.name]: standalone.bytes('coreplay-run') }};
const wasm = await init({{ module_or_path: wasmBytes }});
window.wasmBindings = bindings;
dispatchEvent(new CustomEvent("TrunkApplicationStarted", {{ detail: {{ wasm }} }}));
</script>
{tail}"#,
        wasm = page.wasm_gz_base64,
        run_gz = run.gz_base64,
        query = json_string(&query),
        name = json_string(run.name),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <title>coreplay</title>
    <link rel="stylesheet" href="./style.css" integrity="sha384-x"/>
<script type="module">
import init, * as bindings from './coreplay-frontend.js';
const wasm = await init({ module_or_path: './coreplay-frontend_bg.wasm' });
</script>
  <link rel="modulepreload" href="./coreplay-frontend.js"></head>
  <body><noscript>needs JavaScript</noscript></body>
</html>"#;
    const SNIPPET: &str = "./snippets/coreplay-frontend-abc/inline0.js";
    const GLUE_TEXT: &str = r#"import { fetch_bytes } from './snippets/coreplay-frontend-abc/inline0.js';
import * as import1 from "./snippets/coreplay-frontend-abc/inline0.js"
const imports = { "./snippets/coreplay-frontend-abc/inline0.js": import1 };
export { initSync, __wbg_init as default };"#;

    /// Not base64: enough for the tests to see what was encoded.
    fn mark(b: &[u8]) -> String {
        format!("ENC{}", b.len())
    }

    fn page<'a>(snippets: &'a [(&'a str, &'a str)]) -> PageParts<'a> {
        PageParts {
            index_html: INDEX,
            css: "body { color: red } </style> x",
            glue: GLUE_TEXT,
            snippets,
            wasm_gz_base64: "AAAA",
        }
    }

    #[test]
    fn the_file_holds_everything_and_loads_nothing() {
        let snippets = [(SNIPPET, "export function fetch_bytes() {}")];
        let run = Run {
            name: "gil.coreplay.gz",
            gz_base64: "H4sI+/==",
            query: "view=cores&t=</script>",
        };
        let html = assemble(&page(&snippets), &run, &mark).expect("assembles");
        // Trunk's loading and links to other files are gone; the body stays.
        assert!(!html.contains("./coreplay-frontend.js"), "{html}");
        assert!(!html.contains("style.css"), "{html}");
        assert!(!html.contains("modulepreload"), "{html}");
        assert!(html.contains("<noscript>needs JavaScript</noscript>"));
        assert!(html.contains("<title>coreplay</title>"));
        // The style is inline and cannot close its element early.
        assert!(html.contains("body { color: red } <\\/style> x"), "{html}");
        // The modules are in the import map, by the names the start-up script imports.
        assert!(html.contains(r#""coreplay-glue":"data:text/javascript;base64,ENC"#));
        assert!(html.contains(r#""coreplay-snippet-0":"data:text/javascript;base64,ENC"#));
        // The query cannot end the script element it is written into.
        assert!(
            html.contains(r#"query: "trace=gil.coreplay.gz&view=cores&t=\u003c/script>""#),
            "{html}"
        );
        assert_eq!(html.matches("</script>").count(), 5, "{html}");
        assert!(html.contains(">H4sI+/==</script>"));
        assert!(html.contains(">AAAA</script>"));
    }

    #[test]
    fn the_glues_imports_are_renamed_and_its_import_table_is_not() {
        let snippets = [(SNIPPET, "")];
        let glue = rename_imports(GLUE_TEXT, &snippets).expect("renames");
        assert!(glue.contains("from 'coreplay-snippet-0';"), "{glue}");
        assert!(glue.contains(r#"from "coreplay-snippet-0""#), "{glue}");
        assert!(
            glue.contains(r#"{ "./snippets/coreplay-frontend-abc/inline0.js": import1 }"#),
            "{glue}"
        );
    }

    #[test]
    fn a_minified_glues_imports_are_renamed_too() {
        // As esbuild writes it for the release page (scripts/pack-page.mjs).
        let minified = format!(
            r#"import{{fetch_bytes as W}}from"{SNIPPET}";import*as V from'{SNIPPET}';const x={{"{SNIPPET}":V}};"#
        );
        let glue = rename_imports(&minified, &[(SNIPPET, "")]).expect("renames");
        let page = PageParts {
            index_html: INDEX,
            css: "",
            glue: &format!("{minified}export{{_t as default,ut as initSync}};"),
            snippets: &[(SNIPPET, "")],
            wasm_gz_base64: "H4sI",
        };
        let run = Run {
            name: "a.coreplay.gz",
            gz_base64: "",
            query: "",
        };
        assert!(assemble(&page, &run, &|_| "ENC".into()).is_ok());
        assert!(glue.contains(r#"from"coreplay-snippet-0";"#), "{glue}");
        assert!(glue.contains("from'coreplay-snippet-0';"), "{glue}");
        assert!(glue.contains(&format!(r#"{{"{SNIPPET}":V}}"#)), "{glue}");
        let e = rename_imports(&minified, &[]).expect_err("one is missing");
        assert_eq!(e, StandaloneError::MissingPart("snippet the glue imports"));
    }

    #[test]
    fn a_snippet_the_glue_imports_but_was_not_given_is_refused() {
        let e = rename_imports(GLUE_TEXT, &[]).expect_err("one is missing");
        assert_eq!(e, StandaloneError::MissingPart("snippet the glue imports"));
        let e = rename_imports(GLUE_TEXT, &[("./snippets/other/inline0.js", "")])
            .expect_err("not imported");
        assert_eq!(
            e,
            StandaloneError::MissingPart("import of a snippet in the glue")
        );
    }

    #[test]
    fn names_and_contents_from_outside_are_checked() {
        let snippets = [(SNIPPET, "")];
        for name in ["../x.gz", "", ".hidden", "a b", "x\"y", "a/b"] {
            let run = Run {
                name,
                gz_base64: "",
                query: "",
            };
            assert!(
                matches!(
                    assemble(&page(&snippets), &run, &mark),
                    Err(StandaloneError::BadName(_))
                ),
                "{name:?}"
            );
        }
        let run = Run {
            name: "ok.coreplay.gz",
            gz_base64: "<script>",
            query: "",
        };
        assert_eq!(
            assemble(&page(&snippets), &run, &mark).expect_err("not base64"),
            StandaloneError::NotBase64("run")
        );
        let mut p = page(&snippets);
        p.index_html = "<html><body></body></html>";
        assert!(matches!(
            assemble(
                &p,
                &Run {
                    name: "a.gz",
                    gz_base64: "",
                    query: ""
                },
                &mark
            ),
            Err(StandaloneError::MissingPart(_))
        ));
    }
}
