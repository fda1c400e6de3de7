//! `coreplay export RUN --format html --out run.html`: the page and one run in a single HTML
//! file that plays from `file://` (an LMS upload, an e-mail attachment) with no server and no
//! network. The file is assembled by `coreplay_shared::standalone` from the page built into
//! this coreplay, exactly as the page's own "download as one HTML file" does.

use std::path::Path;

use base64::Engine as _;
use coreplay_shared::{
    event::Ns,
    standalone::{self, PageParts, Run, StandaloneError},
};
use flate2::{Compression, write::GzEncoder};

/// How the run is shown when the file opens (the page's address options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Show {
    /// Views, by the page's names (`cores`, `loop`, `timeline`, `summary`); empty: the page's
    /// choice.
    pub views: Vec<String>,
    /// The instant shown first, ns.
    pub at: Option<Ns>,
    /// Run time played per second, ns.
    pub speed: Option<Ns>,
    /// The compact layout made for iframes.
    pub embed: bool,
}

/// The page's view names.
pub const VIEWS: [&str; 4] = ["cores", "loop", "timeline", "summary"];

impl Show {
    /// The page-address query for these options (without `trace=`).
    pub fn query(&self) -> String {
        // It plays as it opens (unless the reader's system asks for reduced motion).
        let mut parts = vec!["autoplay".to_string()];
        if self.embed {
            parts.push("embed".to_string());
        }
        if !self.views.is_empty() {
            parts.push(format!("view={}", self.views.join(",")));
        }
        if let Some(at) = self.at {
            parts.push(format!("t={}ns", at));
        }
        if let Some(speed) = self.speed {
            parts.push(format!("speed={}ns", speed));
        }
        parts.join("&")
    }
}

/// Why the file cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// The page is not built into this coreplay.
    #[error("the page is not built: {}", crate::server::BUILD_HINT)]
    NoPage,
    /// The page's files do not fit together.
    #[error(transparent)]
    Assemble(#[from] StandaloneError),
    /// A view name the page does not know.
    #[error("--view {name:?}: the page's views are {known}", known = VIEWS.join(", "))]
    BadView {
        /// The name given.
        name: String,
    },
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    // Writing to a Vec cannot fail.
    let _ = std::io::Write::write_all(&mut enc, bytes);
    enc.finish().unwrap_or_default()
}

/// The name the run gets in the file: its own file name where that is a plain name, else a
/// plain one.
pub fn run_name(source: &Path) -> String {
    source
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| standalone::is_plain_name(n))
        .map_or_else(|| "run.coreplay.gz".to_string(), str::to_string)
}

/// The standalone file for the run whose `.coreplay.gz` bytes are `run_gz` (named `name`),
/// from `page` (the built page's files: path inside `dist/`, contents).
pub fn assemble_from(
    page: &[(String, Vec<u8>)],
    name: &str,
    run_gz: &[u8],
    show: &Show,
) -> Result<String, HtmlError> {
    if let Some(bad) = show.views.iter().find(|v| !VIEWS.contains(&v.as_str())) {
        return Err(HtmlError::BadView { name: bad.clone() });
    }
    let file = |name: &str| {
        page.iter()
            .find(|(p, _)| p == name)
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
    };
    let index = file("index.html").ok_or(HtmlError::NoPage)?;
    let css = file("style.css").ok_or(StandaloneError::MissingPart("style.css"))?;
    let glue =
        file("coreplay-frontend.js").ok_or(StandaloneError::MissingPart("coreplay-frontend.js"))?;
    let wasm = page
        .iter()
        .find(|(p, _)| p == "coreplay-frontend_bg.wasm")
        .map(|(_, b)| b)
        .ok_or(StandaloneError::MissingPart("coreplay-frontend_bg.wasm"))?;
    let snippets: Vec<(String, String)> = page
        .iter()
        .filter(|(p, _)| p.starts_with("snippets/") && p.ends_with(".js"))
        .map(|(p, b)| (format!("./{p}"), String::from_utf8_lossy(b).into_owned()))
        .collect();
    let snippet_refs: Vec<(&str, &str)> = snippets
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let wasm_gz = base64(&gzip(wasm));
    let run_b64 = base64(run_gz);
    let query = show.query();
    Ok(standalone::assemble(
        &PageParts {
            index_html: &index,
            css: &css,
            glue: &glue,
            snippets: &snippet_refs,
            wasm_gz_base64: &wasm_gz,
        },
        &Run {
            name,
            gz_base64: &run_b64,
            query: &query,
        },
        &base64,
    )?)
}

/// The standalone file from the page built into this coreplay.
pub fn assemble(name: &str, run_gz: &[u8], show: &Show) -> Result<String, HtmlError> {
    let page = crate::server::page_files();
    if page.is_empty() {
        return Err(HtmlError::NoPage);
    }
    assemble_from(&page, name, run_gz, show)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Vec<(String, Vec<u8>)> {
        let f = |p: &str, t: &str| (p.to_string(), t.as_bytes().to_vec());
        vec![
            f(
                "index.html",
                "<html><head><script type=\"module\">x</script></head><body></body></html>",
            ),
            f("style.css", "body{}"),
            f(
                "coreplay-frontend.js",
                "import { a } from './snippets/x/inline0.js';\nexport { initSync, __wbg_init as default };",
            ),
            f("snippets/x/inline0.js", "export function a() {}"),
            ("coreplay-frontend_bg.wasm".into(), vec![0, 97, 115, 109]),
        ]
    }

    #[test]
    fn the_options_become_the_pages_query() {
        let show = Show {
            views: vec!["cores".into(), "timeline".into()],
            at: Some(12_500_000),
            speed: Some(10_000),
            embed: true,
        };
        assert_eq!(
            show.query(),
            "autoplay&embed&view=cores,timeline&t=12500000ns&speed=10000ns"
        );
        assert_eq!(Show::default().query(), "autoplay");
    }

    #[test]
    fn a_file_is_assembled_from_the_pages_parts_and_checked() {
        let html = assemble_from(&page(), "a.coreplay.gz", &[1, 2, 3], &Show::default())
            .expect("assembles");
        assert!(html.contains(">AQID</script>"), "the run, base64");
        assert!(html.contains("coreplay-snippet-0"));
        let bad = Show {
            views: vec!["cpus".into()],
            ..Show::default()
        };
        let e = assemble_from(&page(), "a.gz", &[], &bad).expect_err("unknown view");
        assert!(
            e.to_string().contains("cores, loop, timeline, summary"),
            "{e}"
        );
        let mut missing = page();
        missing.retain(|(p, _)| p != "style.css");
        let e = assemble_from(&missing, "a.gz", &[], &Show::default()).expect_err("no css");
        assert!(e.to_string().contains("style.css"), "{e}");
    }

    #[test]
    fn a_run_keeps_its_plain_name_or_gets_one() {
        assert_eq!(run_name(Path::new("/x/gil.coreplay.gz")), "gil.coreplay.gz");
        assert_eq!(run_name(Path::new("/x/my run.gz")), "run.coreplay.gz");
    }
}
