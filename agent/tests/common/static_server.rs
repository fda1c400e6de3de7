//! A static file server for the browser tests: what any web host does, nothing more (no
//! agent behind it). HTML pages get a small script that records the page's errors and
//! alerts for the test to read.
#![allow(dead_code)] // Each binary that includes it uses a different subset.

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// Collects what goes wrong in a page; injected at the top of every served HTML page.
pub const ERROR_HOOK: &str = r#"<script>
(function () {
  var errs = window.__coreplayErrors = [];
  function note(kind, what) { errs.push(kind + ": " + String(what).slice(0, 400)); }
  var error = console.error;
  console.error = function () {
    note("console.error", Array.prototype.map.call(arguments, String).join(" "));
    return error.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    note("error", e.message || (e.target && (e.target.src || e.target.href)) || "a resource failed to load");
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    note("unhandled rejection", e.reason && (e.reason.stack || e.reason));
  });
  window.alert = function (m) { note("alert", m); };
})();
</script>"#;

// ---------------------------------------------------------------------------------------------
// A static file server: what any web host does, nothing more (no agent behind it).

/// Serves the files under a folder on a free loopback port, one thread per connection; logs
/// every request path; stops when dropped.
pub struct StaticServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl StaticServer {
    pub fn start(root: PathBuf) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (root, log) = (root.clone(), Arc::clone(&log));
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &root, &log);
                });
            }
        });
        StaticServer {
            addr,
            requests,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("request log").clone()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript",
        "css" => "text/css",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "gz" => "application/gzip",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_one(stream: TcpStream, root: &Path, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    log.lock().expect("request log").push(target.to_string());
    let path = percent_decode(target.split(['?', '#']).next().unwrap_or("/"));
    let mut file = root.to_path_buf();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == ".." {
            return respond(
                stream,
                "403 Forbidden",
                "text/plain",
                b"no".to_vec(),
                method,
            );
        }
        file.push(segment);
    }
    if path.ends_with('/') {
        file.push("index.html");
    }
    match std::fs::read(&file) {
        Ok(mut body) => {
            if file.extension().is_some_and(|e| e == "html") {
                let text = String::from_utf8_lossy(&body).into_owned();
                let text = match text.find("<head>") {
                    Some(i) => format!("{}{ERROR_HOOK}{}", &text[..i + 6], &text[i + 6..]),
                    None => format!("{ERROR_HOOK}{text}"),
                };
                body = text.into_bytes();
            }
            respond(stream, "200 OK", content_type(&file), body, method)
        }
        Err(_) => respond(
            stream,
            "404 Not Found",
            "text/plain",
            b"not found".to_vec(),
            method,
        ),
    }
}

fn respond(
    mut stream: TcpStream,
    status: &str,
    ctype: &str,
    body: Vec<u8>,
    method: &str,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(&body)?;
    }
    stream.flush()
}

/// What the error hook noted on the page now (`["no error hook"]` on a page it did not
/// serve).
pub async fn errors(client: &fantoccini::Client) -> Vec<String> {
    let v = client
        .execute(
            "return window.__coreplayErrors ?? ['no error hook']",
            vec![],
        )
        .await
        .expect("read errors");
    serde_json::from_value(v).unwrap_or_default()
}
