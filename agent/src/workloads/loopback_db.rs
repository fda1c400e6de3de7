//! The stand-in database: a real TCP server on loopback that answers each request after a
//! fixed latency. It runs as its own process (`coreplay __loopback-db`), so the thousands of
//! sockets of `io-async` are split between two processes' file limits, as with a real server.
//!
//! Protocol: the client sends `GET <n>\n`; after the latency the server answers `OK <n>\n`.
//! Requests on one connection are answered in order.
//!
//! Connections that arrive faster than the server accepts them wait in its listening socket's
//! queue, which the kernel caps (`net.core.somaxconn`, 4096 on current kernels, 128 on older
//! ones). A connection that finds the queue full is not refused: the kernel drops its first
//! packet and the client sends it again a whole second later. `io-async` opens thousands at
//! once, so a single socket made some of its requests wait a second for the server's queue
//! rather than for the event loop (measured here: 10 000 requests at 0 ms took 1.1 s instead of
//! 0.4, with 2 600 connections dropped per run). The server therefore listens on as many
//! sockets sharing its port (`SO_REUSEPORT`, the kernel spreads connections among them) as
//! twice the connections it expects need.

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

/// The most listening sockets the server opens: with current kernels' queues of 4 096, twice
/// the room 10 000 connections need is 5; kernels before 5.4 queue only 128, and 64 of those
/// hold 8 192.
const MAX_LISTENERS: u32 = 64;

/// How many sockets to listen on for `connections` at once, each with a queue of `queue`
/// places: twice what they need, so that an uneven spread does not fill one.
fn listeners_for(connections: u32, queue: u32) -> u32 {
    (connections.saturating_mul(2).div_ceil(queue.max(1))).clamp(1, MAX_LISTENERS)
}

/// The kernel's cap on a listening socket's queue (`net.core.somaxconn`).
pub fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(128)
}

/// `count` sockets listening on one loopback port, with queues of `queue`.
fn listen_all(count: u32, queue: u32) -> std::io::Result<Vec<tokio::net::TcpListener>> {
    let mut listeners: Vec<tokio::net::TcpListener> = Vec::new();
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 0));
    for _ in 0..count {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(queue)?;
        // The first socket's port, which the others share.
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Runs the server until stdin closes (the parent is gone) or it is killed, ready for
/// `connections` at once. Prints `listening <addr>` on stdout once ready. Returns the exit
/// code.
pub fn main(latency_ms: u32, connections: u32) -> i32 {
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
        let queue = somaxconn();
        let listeners = match listen_all(listeners_for(connections, queue), queue) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("loopback-db: {e}");
                return 1;
            }
        };
        match listeners.first().map(tokio::net::TcpListener::local_addr) {
            Some(Ok(addr)) => println!("listening {addr}"),
            _ => return 1,
        }
        // The parent holds our stdin; when it closes, the parent is gone and so are we.
        let parent_gone = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        });
        for listener in listeners {
            tokio::spawn(accept_loop(listener, latency));
        }
        let _ = parent_gone.await;
        0
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
    /// Starts `exe __loopback-db --latency-ms L --connections N`, ready for N connections at
    /// once, and waits for its address.
    pub fn start(
        exe: &Path,
        latency_ms: u32,
        connections: u32,
    ) -> Result<LoopbackDb, WorkloadError> {
        let mut child = Command::new(exe)
            .args([
                "__loopback-db",
                "--latency-ms",
                &latency_ms.to_string(),
                "--connections",
                &connections.to_string(),
            ])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_leave_twice_the_room_the_connections_need() {
        // Current kernels (queue 4 096): 10 000 at once need 3 sockets' room, twice that is 5.
        assert_eq!(listeners_for(10_000, 4_096), 5);
        assert_eq!(listeners_for(1_000, 4_096), 1);
        assert_eq!(listeners_for(2_048, 4_096), 1);
        assert_eq!(listeners_for(2_049, 4_096), 2);
        // Older kernels (queue 128) are capped; nothing divides by zero or opens none.
        assert_eq!(listeners_for(1_000, 128), 16);
        assert_eq!(listeners_for(10_000, 128), MAX_LISTENERS);
        assert_eq!(listeners_for(0, 0), 1);
        assert_eq!(listeners_for(u32::MAX, 1), MAX_LISTENERS);
    }

    #[test]
    fn every_listener_shares_one_port() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let listeners = listen_all(3, 16).expect("three listeners");
            let ports: Vec<u16> = listeners
                .iter()
                .map(|l| l.local_addr().expect("an address").port())
                .collect();
            assert_eq!(ports.len(), 3);
            assert!(ports.iter().all(|&p| p == ports[0] && p != 0), "{ports:?}");
        });
    }
}
