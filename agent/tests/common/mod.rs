//! Test helpers: the real `coreplay` binary started on a free port, killed when dropped.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The agent binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_coreplay");

/// A running agent.
pub struct Agent {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Agent {
    /// Starts `coreplay serve --listen 127.0.0.1:0 ARGS…` and waits for its URL line.
    pub fn start(args: &[&str]) -> Agent {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            // Runs the agent keeps go to a folder of the test's, not the user's.
            .env("XDG_DATA_HOME", test_data_home())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("agent starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next()
            .expect("agent prints its URL")
            .expect("stdout readable");
        let addr = line
            .trim()
            .strip_prefix("coreplay is serving on http://")
            .and_then(|rest| rest.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        Agent { child, addr }
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the agent to exit by itself; its exit code, or `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// The agent's WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The page URL of the lab, following live runs as they measure (what most browser
    /// tests look at; the lessons and the still page have tests of their own).
    pub fn page_url(&self) -> String {
        format!("http://{}/?lab&follow", self.addr)
    }

    /// The page's own address, without parameters (a newcomer's first visit).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A plain HTTP GET; returns status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, body) = self.get_bytes(path);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET path` on the agent: the status code and the body's bytes.
    pub fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("response");
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head and body");
        let head = String::from_utf8_lossy(&response[..split]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        (status, response[split + 4..].to_vec())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Threads of process `pid`.
pub fn task_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Child processes of `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                // Field 4 (ppid) follows the parenthesised command name.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// A data folder for the agents this test process starts (`XDG_DATA_HOME`), so the runs they
/// keep land in the system's temporary folder.
pub fn test_data_home() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("coreplay-test-data-{}", std::process::id()))
}

/// One watch at a time within a test binary, so that each measures its own program rather
/// than another test's.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Python interpreter itself (not a version manager's shell shim, which would add its
/// own processes to every watch), when there is a `python3`.
pub fn python() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !path.is_empty()).then_some(path)
}

/// The path of an example program in `examples/python/`.
pub fn example(name: &str) -> String {
    format!("{}/../examples/python/{name}", env!("CARGO_MANIFEST_DIR"))
}
