//! Reading another program's threads from `/proc`, cheaply enough to do a thousand times a
//! second: each followed thread's files stay open and are re-read with `pread` at offset 0.
//!
//! - `/proc/PID/task/TID/schedstat`: CPU time (ns), time spent runnable but waiting (ns), and
//!   how many times the thread was put on a CPU. It is three numbers, the cheapest read, and
//!   tells whether anything happened since the last sample; the other files are read only then.
//! - `/proc/PID/task/TID/stat`: the state (`R`unning or runnable, `S`leeping, `D` in
//!   uninterruptible sleep, usually I/O, `Z`ombie…), the CPU it last ran on (field 39), `utime`
//!   and `stime` (fields 14, 15, in clock ticks), the name (`comm`), the exit code (field 52).
//! - `/proc/PID/task/TID/status`: `voluntary_ctxt_switches`, `nonvoluntary_ctxt_switches` and,
//!   for a process's main thread, its peak resident memory (`VmHWM`).
//!
//! Processes are found by listing `/proc` and reading each new entry's parent (field 4).

use std::{
    collections::HashSet,
    fs::File,
    io,
    os::unix::fs::{FileExt, MetadataExt},
    path::PathBuf,
};

use crate::trace::clock::SwitchCounts;

/// Why a thread's files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The thread (or process) is gone.
    #[error("thread {0} is gone")]
    Gone(u32),
    /// The file exists but could not be read (permissions).
    #[error("cannot read {path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file's content was not what the kernel documents.
    #[error("unexpected content in {0}")]
    Parse(PathBuf),
}

/// The fields of `stat` the sampler uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The thread's name (`comm`, at most 15 bytes).
    pub comm: String,
    /// One-letter state: `R`, `S`, `D`, `Z`, `T`, `t`, `X`, `I`…
    pub state: u8,
    /// Parent process id.
    pub ppid: u32,
    /// User plus system CPU time, clock ticks.
    pub cpu_ticks: u64,
    /// The CPU it last ran on (OS index).
    pub processor: u32,
    /// The exit status in `waitpid` form, once it has exited (Linux ≥ 3.5).
    pub exit_code: Option<i32>,
}

/// The three numbers of `schedstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedStat {
    /// CPU time, ns.
    pub run_ns: u64,
    /// Time runnable but waiting for a CPU, ns (updated when it gets one).
    pub wait_ns: u64,
    /// Times it was put on a CPU.
    pub slices: u64,
}

/// The fields of `status` the sampler uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// The kernel's switch counters.
    pub counts: SwitchCounts,
    /// Peak resident memory (`VmHWM`), bytes; absent for threads of exited processes.
    pub peak_rss_bytes: Option<u64>,
}

/// Parses `/proc/…/stat`. The name is in parentheses and may itself hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let comm = String::from_utf8_lossy(text.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    // Field 3 (state) is the first after the name.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        comm,
        state: *field(3)?.as_bytes().first()?,
        ppid: u32::try_from(num(4)?).ok()?,
        cpu_ticks: num(14)?.saturating_add(num(15)?),
        processor: u32::try_from(num(39)?).ok()?,
        exit_code: field(52).and_then(|f| f.parse::<i32>().ok()),
    })
}

/// Parses `/proc/…/schedstat`.
pub fn parse_schedstat(text: &[u8]) -> Option<SchedStat> {
    let text = std::str::from_utf8(text).ok()?;
    let mut it = text.split_ascii_whitespace().map(|f| f.parse::<u64>().ok());
    Some(SchedStat {
        run_ns: it.next()??,
        wait_ns: it.next()??,
        slices: it.next()??,
    })
}

/// Parses `/proc/…/status`.
pub fn parse_status(text: &[u8]) -> Option<Status> {
    let text = std::str::from_utf8(text).ok()?;
    let mut voluntary = None;
    let mut involuntary = None;
    let mut peak = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
            voluntary = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
            involuntary = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("VmHWM:") {
            peak = v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
                .map(|kib| kib * 1024);
        }
    }
    Some(Status {
        counts: SwitchCounts {
            voluntary: voluntary?,
            involuntary: involuntary?,
        },
        peak_rss_bytes: peak,
    })
}

/// A thread's `/proc` files, open for re-reading.
#[derive(Debug)]
pub struct TaskFiles {
    tid: u32,
    dir: PathBuf,
    stat: File,
    status: File,
    schedstat: Option<File>,
    buf: Vec<u8>,
}

impl TaskFiles {
    /// Opens the files of thread `tid` of process `pid`.
    pub fn open(pid: u32, tid: u32) -> Result<TaskFiles, ProcError> {
        let dir = PathBuf::from(format!("/proc/{pid}/task/{tid}"));
        let open = |name: &str| {
            let path = dir.join(name);
            File::open(&path).map_err(|source| match source.kind() {
                io::ErrorKind::NotFound => ProcError::Gone(tid),
                _ if source.raw_os_error() == Some(libc::ESRCH) => ProcError::Gone(tid),
                _ => ProcError::Io { path, source },
            })
        };
        Ok(TaskFiles {
            tid,
            stat: open("stat")?,
            status: open("status")?,
            schedstat: open("schedstat").ok(),
            dir,
            buf: vec![0; 4096],
        })
    }

    /// Whether `schedstat` is there (kernels with `CONFIG_SCHED_INFO`).
    pub fn has_schedstat(&self) -> bool {
        self.schedstat.is_some()
    }

    fn pread(
        tid: u32,
        file: &File,
        buf: &mut Vec<u8>,
        dir: &std::path::Path,
        name: &str,
    ) -> Result<usize, ProcError> {
        loop {
            match file.read_at(buf, 0) {
                // An exited thread's files read as empty or fail with ESRCH.
                Ok(0) => return Err(ProcError::Gone(tid)),
                Ok(n) if n < buf.len() => return Ok(n),
                Ok(_) => {
                    let grown = buf.len() * 2;
                    if grown > 1 << 20 {
                        return Err(ProcError::Parse(dir.join(name)));
                    }
                    buf.resize(grown, 0);
                }
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    return Err(ProcError::Gone(tid));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ProcError::Io {
                        path: dir.join(name),
                        source,
                    });
                }
            }
        }
    }

    /// Reads `stat`.
    pub fn stat(&mut self) -> Result<Stat, ProcError> {
        let n = Self::pread(self.tid, &self.stat, &mut self.buf, &self.dir, "stat")?;
        parse_stat(&self.buf[..n]).ok_or_else(|| ProcError::Parse(self.dir.join("stat")))
    }

    /// Reads `status`.
    pub fn status(&mut self) -> Result<Status, ProcError> {
        let n = Self::pread(self.tid, &self.status, &mut self.buf, &self.dir, "status")?;
        parse_status(&self.buf[..n]).ok_or_else(|| ProcError::Parse(self.dir.join("status")))
    }

    /// Reads `schedstat`; `None` where the kernel has none.
    pub fn schedstat(&mut self) -> Result<Option<SchedStat>, ProcError> {
        let Some(file) = &self.schedstat else {
            return Ok(None);
        };
        let n = Self::pread(self.tid, file, &mut self.buf, &self.dir, "schedstat")?;
        parse_schedstat(&self.buf[..n])
            .map(Some)
            .ok_or_else(|| ProcError::Parse(self.dir.join("schedstat")))
    }
}

/// The most recently created process or thread id in the system (the last field of
/// `/proc/loadavg`): while it stays the same, nothing new was created anywhere, so there is
/// nothing to look for.
#[derive(Debug)]
pub struct LastPid {
    file: File,
    buf: [u8; 256],
}

impl LastPid {
    /// Opens `/proc/loadavg`.
    pub fn open() -> Option<LastPid> {
        Some(LastPid {
            file: File::open("/proc/loadavg").ok()?,
            buf: [0; 256],
        })
    }

    /// The last id given out, if readable.
    pub fn read(&mut self) -> Option<u64> {
        let n = self.file.read_at(&mut self.buf, 0).ok()?;
        let text = std::str::from_utf8(self.buf.get(..n)?).ok()?;
        text.split_ascii_whitespace().last()?.parse().ok()
    }
}

/// Whether process `pid` exists.
pub fn process_exists(pid: u32) -> bool {
    std::fs::metadata(format!("/proc/{pid}/task")).is_ok()
}

/// Threads of process `pid` by the link count of its `task` directory (threads + 2): one
/// `stat` call, so a change can be noticed every sample without listing the directory.
pub fn thread_count_hint(pid: u32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/task"))
        .ok()
        .map(|m| m.nlink().saturating_sub(2))
}

/// The OS ids of process `pid`'s threads (empty when it is gone).
pub fn threads_of(pid: u32) -> Vec<u32> {
    numeric_entries(&format!("/proc/{pid}/task"))
}

/// Every process id in `/proc`.
pub fn all_pids() -> Vec<u32> {
    numeric_entries("/proc")
}

fn numeric_entries(dir: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// The parent of process `pid`, if it still exists.
pub fn parent_of(pid: u32) -> Option<u32> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).map(|s| s.ppid)
}

/// Process `pid`'s command line, arguments joined by spaces (`None` when it has none, e.g. a
/// zombie).
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then(|| args.join(" "))
}

/// Finds processes that descend from the followed ones by listing `/proc` and reading the
/// parent of each entry not seen before (so a steady machine costs one directory listing).
#[derive(Debug, Default)]
pub struct Descendants {
    seen: HashSet<u32>,
}

impl Descendants {
    /// Processes new since the last call whose parent is in `followed` (or is itself such a
    /// new process), parents before children.
    pub fn new_children(&mut self, followed: &HashSet<u32>) -> Vec<u32> {
        let listing = all_pids();
        let fresh: Vec<(u32, u32)> = listing
            .iter()
            .filter(|p| !self.seen.contains(p))
            .filter_map(|&p| parent_of(p).map(|pp| (p, pp)))
            .collect();
        self.seen = listing.into_iter().collect();
        let mut found: Vec<u32> = Vec::new();
        loop {
            let before = found.len();
            for &(pid, ppid) in &fresh {
                if !followed.contains(&pid)
                    && !found.contains(&pid)
                    && (followed.contains(&ppid) || found.contains(&ppid))
                {
                    found.push(pid);
                }
            }
            if found.len() == before {
                return found;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_name() {
        let line =
            b"4242 (a) b (c) S 17 4242 7917 0 -1 4194304 96 0 0 0 12 30 0 0 20 0 1 0 968842 \
3133440 361 18446744073709551615 1 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 1 1 1 1 1 1 1 256\n";
        let s = parse_stat(line).expect("parses");
        assert_eq!(s.comm, "a) b (c");
        assert_eq!(
            (s.state, s.ppid, s.cpu_ticks, s.processor),
            (b'S', 17, 42, 1)
        );
        assert_eq!(s.exit_code, Some(256));
        assert!(parse_stat(b"12 (x").is_none());
        assert!(parse_stat(b"").is_none());
    }

    #[test]
    fn own_files_read_back() {
        // A running thread's CPU time is updated at switches and scheduler ticks: make one.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let pid = std::process::id();
        let tid = crate::trace::clock::os_tid();
        let mut files = TaskFiles::open(pid, tid).expect("own files");
        let stat = files.stat().expect("stat");
        assert_eq!(stat.state, b'R', "reading our own stat, we run");
        assert!(stat.processor < 4096);
        let status = files.status().expect("status");
        let ours = crate::trace::clock::proc_switch_counts().expect("own counts");
        assert!(status.counts.voluntary <= ours.voluntary);
        if let Some(s) = files.schedstat().expect("schedstat") {
            assert!(s.run_ns > 0 && s.slices > 0);
        }
        assert!(threads_of(pid).contains(&tid));
        assert!(thread_count_hint(pid).is_some_and(|n| n >= 1));
        assert!(cmdline(pid).is_some());
        let mut last = LastPid::open().expect("/proc/loadavg");
        let before = last.read().expect("a last pid");
        let _ = std::thread::spawn(|| ()).join();
        assert!(
            last.read().is_some_and(|after| after != before),
            "a thread was created"
        );
        assert_eq!(parent_of(pid), Some(std::os::unix::process::parent_id()));
        assert!(parse_schedstat(b"1 2").is_none());
        assert!(parse_status(b"Name: x\n").is_none());
    }

    #[test]
    fn a_gone_thread_is_gone() {
        let handle = std::thread::spawn(crate::trace::clock::os_tid);
        let tid = handle.join().expect("joined");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(matches!(
            TaskFiles::open(std::process::id(), tid),
            Err(ProcError::Gone(_))
        ));
    }

    #[test]
    fn children_are_found() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        let mut d = Descendants::default();
        let followed: HashSet<u32> = [std::process::id()].into_iter().collect();
        let found = d.new_children(&followed);
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(d.new_children(&followed).is_empty(), "only new ones");
        let _ = child.kill();
        let _ = child.wait();
    }
}
