//! Seeing a watched Python program from the inside. The agent carries a small
//! standard-library-only probe (`probe.py`, whose header specifies it and its record format);
//! for a started command it writes the probe as `sitecustomize.py` into a private directory
//! put first on `PYTHONPATH`, and hands the program the write end of a pipe. Every CPython
//! process of the program (the interpreter behind a wrapper or a pyenv shim included) then
//! reports its asyncio tasks, selector waits, `threading` names and the GIL's futex words; a
//! program that is not Python never imports it, so nothing is guessed from a program's name.
//!
//! - `records`: one line of the probe into a typed record (outside input: checked).
//! - `convert`: the pure step from records to the run's events.
//! - `gil`: the threads' GIL steps put in one order per process (one holder at a time).
//! - here: the private directory, the pipe and the thread that reads it.

use std::{
    ffi::OsString,
    fs,
    io::{self, BufRead, BufReader, Read},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::{fs::MetadataExt, fs::PermissionsExt, process::CommandExt},
    },
    path::PathBuf,
    process::Command,
    sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
    thread::JoinHandle,
};

pub mod convert;
pub mod gil;
pub mod records;

pub use convert::{Converter, Known};

/// The probe's source, written as `sitecustomize.py`.
pub const PROBE_SOURCE: &str = include_str!("probe.py");
/// Lines the reader keeps for the sampler at most; beyond, it stops reading until the sampler
/// catches up (the program's probe then buffers, and past its own limit stops quietly).
const QUEUE_LINES: usize = 65_536;

/// Why the probe could not be set up (the watch then goes on without it, and says so).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The private directory or the probe file.
    #[error("could not write the probe to a private temporary directory: {0}")]
    Dir(io::Error),
    /// The pipe.
    #[error("could not make the probe's pipe: {0}")]
    Pipe(io::Error),
}

/// A probe ready to be handed to a command: its directory and pipe.
#[derive(Debug)]
pub struct Probe {
    dir: PathBuf,
    read: Option<OwnedFd>,
    write: Option<OwnedFd>,
    ino: u64,
}

impl Probe {
    /// Writes the probe into a new private directory and makes its pipe.
    pub fn new() -> Result<Probe, ProbeError> {
        let dir = private_dir().map_err(ProbeError::Dir)?;
        // Dropped on any error below: the directory goes with it.
        let mut probe = Probe {
            dir,
            read: None,
            write: None,
            ino: 0,
        };
        let file = probe.dir.join("sitecustomize.py");
        fs::write(&file, PROBE_SOURCE).map_err(ProbeError::Dir)?;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).map_err(ProbeError::Dir)?;
        let (read, write) = pipe().map_err(ProbeError::Pipe)?;
        probe.ino = fs::metadata(format!("/proc/self/fd/{}", write.as_raw_fd()))
            .map_err(ProbeError::Pipe)?
            .ino();
        probe.read = Some(read);
        probe.write = Some(write);
        Ok(probe)
    }

    /// The private directory (removed when the probe is dropped).
    #[cfg(test)]
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Sets up `cmd` to load the probe: `PYTHONPATH` led by the private directory, the pipe's
    /// write end inherited (only by this child: the agent's copy stays close-on-exec).
    pub fn prepare(&self, cmd: &mut Command) {
        let Some(write) = self.write.as_ref() else {
            return;
        };
        let mut path = OsString::from(self.dir.as_os_str());
        if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
            path.push(":");
            path.push(old);
        }
        let fd: RawFd = write.as_raw_fd();
        cmd.env("PYTHONPATH", path)
            .env("COREPLAY_PROBE_FD", fd.to_string())
            .env("COREPLAY_PROBE_INO", self.ino.to_string());
        // SAFETY: between fork and exec only `fcntl`, which is async-signal-safe, on a
        // descriptor this process owns and keeps open until the child is spawned.
        unsafe {
            cmd.pre_exec(move || {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// Once the command is spawned: closes the agent's write end (the pipe ends when the
    /// program's processes are gone) and starts reading.
    pub fn started(&mut self) -> Option<ProbeFeed> {
        self.write = None;
        let read = self.read.take()?;
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let reader = std::thread::Builder::new()
            .name("watch-python".into())
            .spawn(move || read_lines(fs::File::from(read), &tx))
            .ok()?;
        Some(ProbeFeed {
            lines: rx,
            reader: Some(reader),
        })
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The probe's lines as the reader thread gets them.
#[derive(Debug)]
pub struct ProbeFeed {
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
}

impl ProbeFeed {
    /// Hands every line read so far to `conv`.
    pub fn drain_into(&self, conv: &mut Converter) {
        while let Ok(line) = self.lines.try_recv() {
            conv.line(&line);
        }
    }

    /// At the end: waits up to `wait` for the pipe to close (a daemon the program left
    /// behind may hold it open), then hands over the rest.
    pub fn finish(mut self, conv: &mut Converter, wait: std::time::Duration) {
        let deadline = std::time::Instant::now() + wait;
        loop {
            self.drain_into(conv);
            let done = self.reader.as_ref().is_none_or(JoinHandle::is_finished);
            if done || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        self.drain_into(conv);
        if let Some(r) = self.reader.take()
            && r.is_finished()
        {
            let _ = r.join();
        }
    }
}

/// Reads lines (each at most a chunk long; longer ones are cut and then refused by the parser)
/// until the pipe closes or the receiver is gone.
fn read_lines(file: impl Read, tx: &SyncSender<String>) {
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader
            .by_ref()
            .take(records::MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                } else if line.len() > records::MAX_LINE {
                    // Skip the rest of an overlong line.
                    let mut rest = Vec::new();
                    let _ = reader.read_until(b'\n', &mut rest);
                }
                let text = String::from_utf8_lossy(&line).into_owned();
                let mut msg = text;
                loop {
                    match tx.try_send(msg) {
                        Ok(()) => break,
                        Err(TrySendError::Disconnected(_)) => return,
                        Err(TrySendError::Full(m)) => {
                            msg = m;
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                    }
                }
            }
        }
    }
}

/// A new directory only this user can read (`mkdtemp`), under the temporary directory.
fn private_dir() -> io::Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut template = std::env::temp_dir()
        .join("coreplay-python-XXXXXX")
        .as_os_str()
        .as_bytes()
        .to_vec();
    template.push(0);
    // SAFETY: `template` is a writable NUL-terminated buffer ending in six X's, as mkdtemp
    // requires; it writes the name in place.
    let p = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    template.pop();
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&template)))
}

/// A pipe, both ends close-on-exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid two-element array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are new and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Whether a blocked thread waits on one of `gil`'s futex words, from the text of its
/// `/proc/<pid>/task/<tid>/syscall` (`<nr> <arg1> …`; `running` while it runs).
pub fn waits_on_gil(syscall: &str, gil: &[u64]) -> bool {
    const FUTEX: u64 = if cfg!(target_arch = "aarch64") {
        98
    } else {
        202
    };
    let mut f = syscall.split_ascii_whitespace();
    let nr = f.next().and_then(|n| n.parse::<u64>().ok());
    let addr = f
        .next()
        .and_then(|a| a.strip_prefix("0x"))
        .and_then(|a| u64::from_str_radix(a, 16).ok());
    matches!((nr, addr), (Some(FUTEX), Some(a)) if gil.contains(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_lives_in_a_private_directory_removed_afterwards() {
        let probe = Probe::new().expect("probe");
        let dir = probe.dir().to_path_buf();
        let mode = fs::metadata(&dir).expect("dir").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let text = fs::read_to_string(dir.join("sitecustomize.py")).expect("probe file");
        assert!(text.contains("PROBE_VERSION"));
        drop(probe);
        assert!(!dir.exists());
    }

    #[test]
    fn a_child_gets_the_pipe_and_its_lines_arrive() {
        let mut probe = Probe::new().expect("probe");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            // Through /proc: a shell's `>&N` may not take descriptors above 9.
            .arg("printf 'P %s\\nN %s\\n' $$ \"$PYTHONPATH\" > /proc/self/fd/$COREPLAY_PROBE_FD");
        probe.prepare(&mut cmd);
        let mut child = cmd.spawn().expect("sh");
        let feed = probe.started().expect("reader");
        assert!(child.wait().expect("wait").success());
        let mut conv = Converter::new(0);
        feed.finish(&mut conv, std::time::Duration::from_secs(5));
        let notes = conv.notes().join("\n");
        assert!(
            notes.contains(&probe.dir().display().to_string()),
            "{notes}"
        );
    }

    #[test]
    fn gil_waits_are_told_by_the_futex_address() {
        let gil = [0x7f35_26f4_e6f0, 0x7f35_26f4_e6f4];
        let futex = if cfg!(target_arch = "aarch64") {
            98
        } else {
            202
        };
        assert!(waits_on_gil(
            &format!("{futex} 0x7f3526f4e6f4 0x189 0x0 0x0 0x0 0x0 0x7ffd 0x7f00\n"),
            &gil
        ));
        assert!(!waits_on_gil(&format!("{futex} 0x1234 0x189"), &gil));
        assert!(!waits_on_gil("7 0x7f3526f4e6f4 0x1", &gil));
        assert!(!waits_on_gil("running", &gil));
        assert!(!waits_on_gil("", &gil));
    }
}
