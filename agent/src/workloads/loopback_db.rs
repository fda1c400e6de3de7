//! The stand-in database: a real TCP server on loopback that answers each request after a
//! fixed latency. It runs as its own process (`coreplay __loopback-db`), so the thousands of
//! sockets of `io-async` are split between two processes' file limits, as with a real server.
//!
//! Protocol: the client sends `GET <n>\n`; after the latency the server answers `OK <n>\n`.
//! Requests on one connection are answered in order.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader as AsyncBufReader};

use super::WorkloadError;

/// Longest request line the server reads.
const MAX_LINE: usize = 64;

/// Runs the server until stdin closes (the parent is gone) or it is killed. Prints
/// `listening <addr>` on stdout once ready. Returns the exit code.
pub fn main(latency_ms: u32) -> i32 {
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loopback-db: {e}");
            return 1;
        }
    };
    let latency = Duration::from_millis(u64::from(latency_ms));
    runtime.block_on(async move {
        let socket = match tokio::net::TcpSocket::new_v4() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("loopback-db: {e}");
                return 1;
            }
        };
        let bound = socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .and_then(|()| socket.listen(8192));
        let listener = match bound {
            Ok(l) => l,
            Err(e) => {
                eprintln!("loopback-db: {e}");
                return 1;
            }
        };
        match listener.local_addr() {
            Ok(addr) => println!("listening {addr}"),
            Err(_) => return 1,
        }
        // The parent holds our stdin; when it closes, the parent is gone and so are we.
        let parent_gone = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        });
        tokio::select! {
            _ = parent_gone => 0,
            () = accept_loop(listener, latency) => 0,
        }
    })
}

async fn accept_loop(listener: tokio::net::TcpListener, latency: Duration) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = AsyncBufReader::new(read.take(1 << 20)).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.len() > MAX_LINE {
                    break;
                }
                let Some(n) = line.strip_prefix("GET ") else {
                    break;
                };
                tokio::time::sleep(latency).await;
                if write
                    .write_all(format!("OK {n}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
}

/// Raises this process's open-file limit to its hard limit (thousands of sockets).
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit/setrlimit to read and write.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}

/// A running loopback server process; killed and reaped on drop.
#[derive(Debug)]
pub struct LoopbackDb {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl LoopbackDb {
    /// Starts `exe __loopback-db --latency-ms L` and waits for its address.
    pub fn start(exe: &Path, latency_ms: u32) -> Result<LoopbackDb, WorkloadError> {
        let mut child = Command::new(exe)
            .args(["__loopback-db", "--latency-ms", &latency_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| WorkloadError::Spawn {
                what: "the loopback server".into(),
                source,
            })?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok());
        match (read, addr) {
            (Some(Ok(_)), Some(addr)) => Ok(LoopbackDb { child, addr }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(WorkloadError::Peer(format!(
                    "the loopback server did not start (it said {line:?})"
                )))
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it now (in-flight requests fail, which unblocks their clients).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LoopbackDb {
    fn drop(&mut self) {
        self.kill();
    }
}
