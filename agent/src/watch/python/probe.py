"""coreplay's Python probe: what the threads and asyncio tasks of a watched Python program do.

Role
====
`coreplay watch -- python3 prog.py` samples a program's threads from /proc. This file tells it
what /proc cannot: which asyncio task ran when, what woke it, how long the event loop waited in
its selector, the names Python gave its threads, and where the GIL's futex lives. The agent embeds
it and writes it as `sitecustomize.py` into a private directory that it puts first on PYTHONPATH,
so every Python process of the watched program imports it at start-up (before the program's own
code). It uses the standard library only and runs on CPython 3.8 to 3.14.

It is active only when the environment has COREPLAY_PROBE_FD (a file descriptor number: the write
end of a pipe the agent reads) and COREPLAY_PROBE_INO (that pipe's inode number), and
os.fstat(COREPLAY_PROBE_FD) is a FIFO with that inode. A process that inherited the environment
but not the descriptor (subprocess closes descriptors by default) or that has another file at that
number stays inert. COREPLAY_PROBE_FAIL=1 makes the set-up fail on purpose (it writes one E
record and nothing more), to test that a failing probe leaves the program alone.

The probe sets O_NONBLOCK on the pipe (that flag belongs to the open file description, which the
agent shares if it kept a copy of the write end): a write that would block is retried later, at
exit for up to a second; with more than 200000 records waiting, or a broken pipe (SIGPIPE is
blocked around the write when the program does not ignore it), it stops quietly. When the
environment forbids bytecode caches (PYTHONDONTWRITEBYTECODE), it writes its own .pyc beside
itself anyway (the agent's private directory), sparing the program's other Python processes the
compilation (about 9 ms).

Whatever happens, the probe leaves the program's output, exit status and behaviour as they were,
but for what it is for or says below (OS thread names, task.get_coro(), three threads wanting
the GIL for about 30 to 170 ms, with a switch interval of 200 us, once): every hook forwards to the original and hides its own frame from
tracebacks (Python >= 3.11); an
internal error disables the probe (the patched functions are restored) after one E record; a
broken or full pipe disables it quietly. Then, active or not, it runs the program's own
`sitecustomize` (the next one on sys.path), under that name, so that errors in it are reported by
site.py as usual. site.py runs `usercustomize` afterwards as always. PYTHONPATH is left as it is:
child Python processes load the probe too, and are inert unless they hold the descriptor (children
made by fork do: they write their own records, under their own pid).

Record format (probe version 1)
===============================
The probe writes lines of ASCII text, each ending in "\\n", with fields separated by one space.
Writes are at most 4096 bytes (PIPE_BUF: atomic, so the writes of several processes and threads
never mix inside a line) and each write starts with a `P` line; the records after it, up to the
next `P` line, belong to that process. The records of one process are in the order it wrote
them (for a loop's records: the order things happened on its thread); the writes of different
processes interleave.

    time     CLOCK_MONOTONIC in nanoseconds (time.monotonic_ns()), absolute, decimal integer.
    os_tid   a Linux thread id (gettid(), threading.get_native_id()), decimal.
    task     a task id: 1, 2, 3, ... in the order the process created the tasks (per process;
             a forked child goes on counting from its parent's count).
    loop     an event loop id: 1, 2, 3, ... per process, in the order the probe first saw them.
    text     a string, always the last field(s) of a record: cut to 64 characters (messages to
             300), then percent-encoded exactly like urllib.parse.quote(s, safe='') of its UTF-8
             bytes (characters UTF-8 cannot encode become backslash escapes first), except that
             the empty string is written `-` and the one-character string "-" is written `%2D`.
             It has no space and no newline; decode: `-` -> "", otherwise
             urllib.parse.unquote(field).

P <pid>
    Chunk header: starts every write.
H <version> <python_version> <implementation>
    Hello, once when a process starts (again in a child made by fork, and again in a process
    that exec()s into another Python). version: 1. python_version: text, e.g. `3.11.7`.
    implementation: text, sys.implementation.name, e.g. `cpython`.
T <os_tid> <time> <name>
    A Python thread's threading name: the main thread at start-up (`MainThread`), each
    threading.Thread when it starts (written from inside the thread, before its run()), and again
    when a started thread's name is changed (Thread.name = ...). The probe also sets the OS name of
    each thread it starts (/proc/<pid>/task/<tid>/comm) to its threading name cut to 15 bytes,
    except the main thread's (that would rename the process), unless Python does so itself
    (3.14 and later).
S <task> <time> <loop> <os_tid> <name> <coro>
    A task was created by loop.create_task() (asyncio.create_task, ensure_future, gather,
    TaskGroup, asyncio.run's main task, a server's connection handlers ...): time of the call,
    the loop it belongs to, the thread that created it, name = task.get_name() (text),
    coro = the coroutine's __qualname__ (text). The S record of a task comes before all its
    W and R records.
R <task> <os_tid> <start> <end> <done>
    One step of a task: one call into its coroutine (send or throw), from start to end, on the
    thread running its loop. done: 0 = the coroutine yielded (the task is still pending);
    1 = the coroutine returned or raised an exception (the task is finished);
    2 = CancelledError came out of the coroutine (the task is cancelled). A task's steps never
    overlap; its last R has done 1 or 2 (none if the program ended first).
W <task> <time> <by>
    The task became ready: its step was put on the loop's ready queue (loop.call_soon of the
    task's step or wake-up). by says what did it:
      io       a callback that the selector made ready (a socket or pipe became readable or
               writable), directly or through futures and callbacks it resolved;
      timer    a timer callback (asyncio.sleep, loop.call_later/call_at, timeouts), directly or
               through futures and callbacks it resolved;
      task:<t> a step of task t, directly or through futures and callbacks it resolved: t
               finished (and this task awaited it), t set a result or an event this task
               waited for, t cancelled this task, t created this task (its first W), or t is
               this task, ready again after yielding (await asyncio.sleep(0));
      other    anything else: call_soon_threadsafe from another thread (run_in_executor results,
               run_coroutine_threadsafe), code running outside the loop's callbacks, or unknown.
    Every step of a task comes after a W of that task since its previous step (on Python < 3.10
    the W of a wake-up by a future is written when the step starts, so still before its R, with
    the time the wake-up was queued), except the first step of an eager task (3.12+ eager task
    factory), which runs inside create_task without being queued.
L <loop> <os_tid> <start> <end> <timeout_ns> <nevents>
    One wait of the loop in its selector (epoll_wait, select ...): the time asked (-1: no limit,
    0: a poll) and the number of events it returned. Steps (R) of the loop's tasks never fall
    inside an L interval.
Q <loop> <os_tid> <time> <ready> <waiting> <timers>
    The loop's queues at the end of one iteration (after the callbacks of that iteration ran,
    before the next selector wait); written only when one of the three numbers changed since the
    loop's previous Q.
      ready    tasks of this loop that are ready and have not stepped yet. Exactly: the size of
               the set obtained by reading this process's records in order, adding the task at
               each W and removing it at each R (R removes at the end of the step). (A task's
               step queued from another thread, which asyncio itself never does, can make its W
               land just after a Q that already counts it.)
      waiting  tasks of this loop that were created (S) and have not finished (no R with done
               1 or 2), less `ready`: tasks awaiting something (I/O, a timer, another task, a
               future).
      timers   timer callbacks scheduled on the loop and not cancelled (asyncio.sleep,
               call_later, wait_for/timeout deadlines): callbacks, not tasks.
G <addresses> <how>
    The futex words a thread waits on while it waits for the GIL, as 0x-prefixed lowercase hex,
    comma-separated, e.g. `0x7f3526f4e6f0,0x7f3526f4e6f4,0x7f3526f4e6f8`: the second field of
    /proc/<pid>/task/<tid>/syscall when its first field is the futex system call (202 on x86_64,
    98 on aarch64). A thread blocked in futex on one of these addresses is waiting for the GIL
    (glibc puts the words of the GIL's condition variables and mutexes there; the set is what was
    seen, not necessarily every word). how: text. `G - <reason>` (text) when unknown, e.g.
    on a free-threaded build. Written once per process, when it starts its first thread through
    threading (a single-threaded process cannot wait for the GIL); a child made by fork repeats
    its parent's G if the parent had one (same addresses), else learns its own likewise.
    To learn them, the probe runs three helper threads, named `coreplay-gil`, in a pure-Python
    loop for about 30 to 170 ms (at most 300 ms, or 1 s if it sees nothing) with
    sys.setswitchinterval(200 us), and reads their syscall files. (Meanwhile a fork() by the
    program sees those threads: Python 3.12+ then warns that the process is multi-threaded.)
N <message>
    A note: something the probe cannot see (e.g. an event loop that is not asyncio's, such as
    uvloop, whose tasks, wakes and waits are then missing). message: text.
E <message>
    The probe failed and is disabled from here on; the program goes on unchanged. message: text.
X <time>
    The process is exiting (atexit, or os._exit as used by multiprocessing's forked children):
    its last record.

How it hooks (per Python version)
=================================
  * asyncio is patched when the program imports it (a post-import hook on sys.meta_path):
    BaseEventLoop.create_task wraps the coroutine in a _Traced object that forwards
    send/throw/close (and every other attribute) to it and times each step; task.get_coro()
    returns that wrapper and inspect.iscoroutine() is false for it (asyncio.iscoroutine() is
    true). BaseEventLoop._call_soon (which call_soon uses; call_soon itself if it did not) and
    call_soon_threadsafe (unless it goes through _call_soon, as before 3.13) see a task's step
    or wake-up being queued: the C Task (3.8-3.14) and the Python Task both queue them through
    loop.call_soon, with a callback whose __self__ is the task (TaskStepMethWrapper,
    task_wakeup, Task.__step/__wakeup; on 3.8/3.9 the C wake-up callback has no __self__, hence
    the late W).
    events.Handle._run knows which callback runs (and so what caused what it queues),
    BaseSelectorEventLoop._process_events marks the callbacks the selector made ready, the
    loop's selector.select (an instance attribute) gives L, BaseEventLoop._run_once gives Q,
    and asyncio.events._set_running_loop tells the thread running each loop.
  * threading.Thread._bootstrap_inner and the Thread.name setter give T and OS thread names.
  * os.register_at_fork, atexit and os._exit keep forked children and exits right.
What it cannot see: tasks built directly with asyncio.Task(...) rather than loop.create_task, or
whose coroutine a custom task factory wraps again; event loops that are not asyncio's
BaseEventLoop (uvloop: one N record); loops without a selector (L records missing); threads
started with _thread directly (no T record). On Python < 3.11 the traceback of an exception raised
by a traced coroutine shows one extra frame of this file. Tools that read a task's coroutine frames
from outside the process (python -m asyncio ps, 3.14) see the wrapper, not the coroutine.
"""

import os
import stat
import sys
import time
import _thread
import _collections_abc
from _collections import deque

try:
    import _signal
except ImportError:                # not on Linux: _raw_write falls back to a plain write
    _signal = None

PROBE_VERSION = 1

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

_CHUNK = 4096                  # PIPE_BUF on Linux: writes up to this size are atomic
_FLUSH_NS = 50000000           # flush at the end of a loop iteration after 50 ms ...
_FLUSH_RECORDS = 100           # ... or with about 3.5 KB of records waiting (one write)
_MAX_RECORDS = 200000          # records kept while the pipe is full; beyond: stop quietly
_NAME_MAX = 64
_MSG_MAX = 300
_ST = '_coreplay_state'        # attribute holding a loop's _LoopState
_IO, _TIMER, _OTHER = 'io', 'timer', 'other'
_GIL_SWITCH = 0.0002           # switch interval while learning the GIL's futex words
_PY311 = sys.version_info >= (3, 11)

_mono = time.monotonic_ns
_native_id = _thread.get_native_id
_get_ident = _thread.get_ident

# futex system call numbers by machine (os.uname().machine); 32-bit ones also futex_time64
_FUTEX_NR = {
    'x86_64': (202,), 'amd64': (202,), 'aarch64': (98,), 'arm64': (98,), 'riscv64': (98,),
    'loongarch64': (98,), 'ppc64le': (221,), 'ppc64': (221,), 's390x': (238,),
    'i386': (240, 422), 'i686': (240, 422), 'armv7l': (240, 422), 'armv6l': (240, 422),
}

# ---------------------------------------------------------------------------------------------
# Process-wide state
# ---------------------------------------------------------------------------------------------

_on = False                    # recording
_fd = None                     # the pipe, while it works
_failed = False                # an E record was written
_pid = 0
_buf = deque()                 # records waiting to be written (appends are thread-safe)
_append = _buf.append
_flush_lock = _thread.allocate_lock()
_last_flush = 0
_patches = []                  # (owner, name, original or _MISSING): what to restore
_MISSING = object()
_selectors = []                # weak references to selectors given an instance-level select
_notes = set()
_task_ids = None               # itertools.count(1), made when asyncio is patched
_loop_ids = None
_states = []                   # weak references to _LoopState objects
_gil_lock = _thread.allocate_lock()   # held once a discovery started
_gil_line = None               # the G record, once known
_gil_stop = [False]
_gil_saved_switch = None       # the program's switch interval while the discovery lowers it
_py_names_threads = False      # Python (3.14+) names OS threads itself
_main_thread = None


# ---------------------------------------------------------------------------------------------
# Output: encoding, buffering, writing
# ---------------------------------------------------------------------------------------------

_SAFE = frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~')


def _enc(s, limit=_NAME_MAX):
    """A text field: cut to `limit` characters, percent-encoded as documented above."""
    if not isinstance(s, str):
        s = str(s)
    s = s[:limit]
    if not s:
        return '-'
    if s == '-':
        return '%2D'
    if _SAFE.issuperset(s):
        return s
    return ''.join(chr(b) if chr(b) in _SAFE else '%%%02X' % b
                   for b in s.encode('utf-8', 'backslashreplace'))


def _write(data, deadline):
    """Writes one chunk. True when written; False when the pipe stayed full (until `deadline`,
    or at once when it is None). A broken pipe or any other error stops the probe quietly."""
    while True:
        try:
            n = _raw_write(data)
        except BlockingIOError:
            if deadline is None or _mono() >= deadline:
                return False
            time.sleep(0.002)
            continue
        except OSError:
            _stop_quietly()
            return False
        if n >= len(data):
            return True
        data = data[n:]        # cannot happen on a pipe (<= PIPE_BUF is all or nothing)


def _raw_write(data):
    """os.write, with SIGPIPE blocked when the program does not ignore it (Python ignores it by
    default): a dead agent must not kill the program with SIGPIPE."""
    try:
        if _signal.getsignal(_signal.SIGPIPE) == _signal.SIG_IGN:
            return os.write(_fd, data)
        old = _signal.pthread_sigmask(_signal.SIG_BLOCK, [_signal.SIGPIPE])
    except (AttributeError, OSError, ValueError):
        return os.write(_fd, data)
    try:
        return os.write(_fd, data)
    except BrokenPipeError:
        if _signal.SIGPIPE not in old:
            try:
                _signal.sigtimedwait([_signal.SIGPIPE], 0)   # consume ours
            except (OSError, AttributeError):
                pass
        raise
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old)


def _flush(deadline=None):
    """Writes the buffered records in chunks of at most PIPE_BUF bytes, each starting with
    `P <pid>`. Never waits unless given a deadline (exit). If another thread is flushing, leaves
    the records to it (it looks again after it let go of the lock)."""
    global _last_flush
    while _fd is not None:
        if deadline is None:
            if not _flush_lock.acquire(False):
                return
        elif not _flush_lock.acquire(True, max(0.001, (deadline - _mono()) / 1e9)):
            return
        try:
            _last_flush = _mono()
            head = 'P %d\n' % _pid
            while _buf and _fd is not None:
                lines = []
                size = len(head)
                while _buf:
                    n = len(_buf[0]) + 1
                    if size + n > _CHUNK and lines:
                        break
                    lines.append(_buf.popleft())
                    size += n
                lines.append('')
                data = (head + '\n'.join(lines)).encode('ascii', 'replace')
                if not _write(data, deadline):
                    if _fd is not None:              # full: keep them, in order, for later
                        lines.pop()
                        _buf.extendleft(reversed(lines))
                        if len(_buf) > _MAX_RECORDS:
                            _stop_quietly()
                    return
        except Exception:
            _stop_quietly()
        finally:
            _flush_lock.release()
        if not _buf:
            return


def _stop_quietly():
    """The pipe is gone or stuck: stop recording without a word."""
    global _fd
    _disable()
    _fd = None
    _buf.clear()


def _disable():
    """Stops recording and puts back every patched function."""
    global _on
    _on = False
    _gil_stop[0] = True
    for owner, name, orig in reversed(_patches):
        try:
            if orig is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, orig)
        except Exception:
            pass
    del _patches[:]
    for ref in _selectors:
        sel = ref()
        if sel is not None:
            try:
                del sel.select
            except Exception:
                pass
    del _selectors[:]


def _fail(exc, where):
    """An internal error: disable the probe, write one E record."""
    global _failed
    _disable()
    if _failed or _fd is None:
        return
    _failed = True
    try:
        _append('E ' + _enc('%s: %s: %s' % (where, type(exc).__name__, exc), _MSG_MAX))
        _flush()
    except Exception:
        pass


def _note(msg):
    """An N record, once per message."""
    if msg not in _notes and _on:
        _notes.add(msg)
        _append('N ' + _enc(msg, _MSG_MAX))


def _hide(exc):
    """Removes the calling wrapper's frame from the traceback of an exception passing through it,
    so that tracebacks read as without the probe. Works where a bare `raise` re-raises with
    exc.__traceback__ (3.11+); a no-op before."""
    if _PY311:
        tb = exc.__traceback__
        if tb is not None and tb.tb_frame is sys._getframe(1):
            exc.__traceback__ = tb.tb_next


def _patch(owner, name, new):
    """Sets owner.name = new, remembering how to undo it."""
    orig = owner.__dict__.get(name, _MISSING) if isinstance(owner, type) else getattr(owner, name)
    _patches.append((owner, name, orig))
    setattr(owner, name, new)


# ---------------------------------------------------------------------------------------------
# Process life: hello, fork, exit
# ---------------------------------------------------------------------------------------------

def _hello():
    _append('H %d %s %s' % (PROBE_VERSION, _enc(sys.version.split()[0]),
                            _enc(sys.implementation.name)))


def _current_thread_name():
    threading = sys.modules.get('threading')
    if threading is not None:
        try:
            return threading.current_thread().name
        except Exception:
            pass
    return 'MainThread'


def _after_fork_child():
    """In a child made by fork: a new pid, a fresh buffer (the parent writes its own records), a
    fresh lock (another thread may have held it), and the hello records again."""
    global _pid, _flush_lock, _gil_lock
    try:
        _flush_lock = _thread.allocate_lock()
        _buf.clear()
        _pid = os.getpid()
        _restore_switch()        # a discovery may have been under way: its threads are gone
        if not _on:
            return
        if _gil_line is None:
            _gil_lock = _thread.allocate_lock()
            _gil_stop[0] = False
        tid = _native_id()
        _hello()
        _append('T %d %d %s' % (tid, _mono(), _enc(_current_thread_name())))
        if _gil_line is not None:
            _append(_gil_line)
        for ref in _states:
            st = ref()
            if st is not None and st.tid is not None:
                st.tid = tid             # only this thread survived the fork
        _flush()
    except Exception as e:
        _fail(e, 'fork')


def _at_exit():
    global _on
    _gil_stop[0] = True
    if _on:
        _on = False              # X is the last record; the hooks just forward from here on
        _append('X %d' % _mono())
    _flush(_mono() + 1000000000)


def _make_os_exit(orig):
    def _exit(status):
        # os._exit skips atexit (multiprocessing's forked children end this way)
        global _on
        if _on:
            try:
                _on = False
                _gil_stop[0] = True
                _append('X %d' % _mono())
                _flush(_mono() + 500000000)
            except BaseException:
                pass
        orig(status)
    return _exit


# ---------------------------------------------------------------------------------------------
# Threads: names, OS names, the GIL's futex words
# ---------------------------------------------------------------------------------------------

def _set_comm(path, name):
    """Sets an OS thread name (comm: 15 bytes, cut on a character boundary)."""
    b = name.encode('utf-8', 'replace')[:15].decode('utf-8', 'ignore').encode('utf-8')
    if not b:
        return
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, b)
    finally:
        os.close(fd)


def _thread_started(thread):
    """In a new threading.Thread, before its run()."""
    name = thread.name
    if not _py_names_threads:
        try:
            _set_comm('/proc/thread-self/comm', name)
        except OSError as e:
            _note('cannot set OS thread names: %s' % (e,))
    _append('T %d %d %s' % (_native_id(), _mono(), _enc(name)))
    _flush()
    _gil_start()


def _thread_renamed(thread):
    tid = getattr(thread, '_native_id', None)
    if tid is None or not thread.is_alive():
        return                   # not started: its T record at start has the new name
    name = thread.name
    _append('T %d %d %s' % (tid, _mono(), _enc(name)))
    _flush()
    if not _py_names_threads and thread is not _main_thread:
        try:
            _set_comm('/proc/self/task/%d/comm' % tid, name)
        except OSError:
            pass


def _patch_threading(threading):
    global _py_names_threads, _main_thread
    Thread = threading.Thread
    _py_names_threads = hasattr(Thread, '_set_os_name')
    _main_thread = threading.main_thread()
    orig_bootstrap = Thread.__dict__.get('_bootstrap_inner')
    if orig_bootstrap is None:
        _note('threading.Thread._bootstrap_inner missing: no T records for new threads')
    else:
        def _bootstrap_inner(self):
            if _on:
                try:
                    _thread_started(self)
                except Exception as e:
                    _fail(e, 'thread start')
            return orig_bootstrap(self)
        _patch(Thread, '_bootstrap_inner', _bootstrap_inner)

    prop = Thread.__dict__.get('name')
    if isinstance(prop, property) and prop.fset is not None:
        fset = prop.fset

        def _set_name(self, value):
            try:
                fset(self, value)
            except BaseException as e:
                _hide(e)
                raise
            if _on:
                try:
                    _thread_renamed(self)
                except Exception as e:
                    _fail(e, 'thread rename')
        _patch(Thread, 'name', property(prop.fget, _set_name, prop.fdel, prop.__doc__))


def _gil_start():
    """Learns the GIL's futex words once, in the background, when the process has 2 threads."""
    if _gil_line is not None or not _gil_lock.acquire(False):
        return
    _thread.start_new_thread(_gil_discover, ())


def _gil_discover():
    global _gil_line
    try:
        line = _gil_find()
    except Exception as e:
        line = 'G - ' + _enc('discovery failed: %s: %s' % (type(e).__name__, e), _MSG_MAX)
    if _on and line:
        _gil_line = line
        _append(line)
        _flush()


def _restore_switch():
    """Puts the program's switch interval back, unless the program changed it meanwhile."""
    global _gil_saved_switch
    old, _gil_saved_switch = _gil_saved_switch, None
    if old is not None and abs(sys.getswitchinterval() - _GIL_SWITCH) < 1e-7:
        sys.setswitchinterval(old)


def _gil_find():
    """Runs 3 helper threads that only want the GIL, and reads which futex word each is blocked
    on from /proc/self/task/<tid>/syscall. Only the GIL can block them, so every futex address
    seen is one of the GIL's."""
    global _gil_saved_switch
    try:
        _set_comm('/proc/thread-self/comm', 'coreplay-gil')
    except OSError:
        pass
    gil_enabled = getattr(sys, '_is_gil_enabled', None)
    if gil_enabled is not None and not gil_enabled():
        return 'G - ' + _enc('no GIL (free-threaded build)')
    machine = os.uname().machine
    nrs = _FUTEX_NR.get(machine)
    if nrs is None:
        return 'G - ' + _enc('futex system call number unknown on %s' % machine)
    tids = []
    locks = []
    fds = []
    stop = _gil_stop
    nhelp = 3

    def helper(lock):
        try:
            tids.append(_native_id())
            try:
                _set_comm('/proc/thread-self/comm', 'coreplay-gil')
            except OSError:
                pass
            x = 0
            while not stop[0]:
                x += 1
        finally:
            lock.release()

    start = _mono()
    _gil_saved_switch = sys.getswitchinterval()
    sys.setswitchinterval(_GIL_SWITCH)
    try:
        for _ in range(nhelp):
            lock = _thread.allocate_lock()
            lock.acquire()
            locks.append(lock)
            _thread.start_new_thread(helper, (lock,))
        while len(tids) < nhelp:
            if _mono() > start + 2000000000 or stop[0]:
                return 'G - ' + _enc('helper threads did not start')
            time.sleep(0.001)
        try:
            for tid in tids:
                fds.append(os.open('/proc/self/task/%d/syscall' % tid, os.O_RDONLY))
        except OSError as e:
            return 'G - ' + _enc('cannot read /proc/self/task/<tid>/syscall: %s' % (e,), _MSG_MAX)
        # Between rounds the observer sleeps 1 ms, so that the helpers settle into their waits
        # (one runs, the others wait on the GIL's condition variable); each read then gives the
        # GIL up again, which wakes one waiter and leaves the others waiting. Enough: 8 waits
        # seen at 2 addresses or more (usually 30 to 170 ms); else stop at 300 ms with what was
        # seen, or at 1 s.
        samples = hits = 0
        seen = {}
        enough, longest = start + 300000000, start + 1000000000
        while not stop[0]:
            for fd in fds:
                fields = os.pread(fd, 256, 0).split()
                samples += 1
                if len(fields) > 1 and fields[0].isdigit() and int(fields[0]) in nrs:
                    hits += 1
                    addr = int(fields[1], 16)
                    seen[addr] = seen.get(addr, 0) + 1
            now = _mono()
            if (hits >= 8 and len(seen) >= 2) or (now >= enough and hits) or now >= longest:
                break
            time.sleep(0.001)
        if not seen:
            return 'G - ' + _enc('no helper thread seen waiting in futex (%d samples)' % samples)
        how = '%d futex waits in %d samples of %d helper threads wanting the GIL, %d ms' % (
            hits, samples, nhelp, (_mono() - start) // 1000000)
        return 'G %s %s' % (','.join('0x%x' % a for a in sorted(seen)), _enc(how, _MSG_MAX))
    finally:
        _restore_switch()
        for fd in fds:
            os.close(fd)
        stop[0] = True
        for lock in locks:
            lock.acquire(True, 2.0)


# ---------------------------------------------------------------------------------------------
# asyncio: tasks (S, R), wakes (W), selector waits (L), queues (Q)
# ---------------------------------------------------------------------------------------------

class _LoopState(object):
    """What the probe keeps per event loop (as the loop's attribute _coreplay_state)."""
    __slots__ = ('id', 'tid', 'cause', 'ready', 'origin', 'live', 'last_q', 'late',
                 'prune_at', 'sel_done', '__weakref__')

    def __init__(self, loop_id):
        self.id = loop_id
        self.tid = None          # OS thread running the loop
        self.cause = None        # what the callback or step now running counts as (a `by`)
        self.ready = set()       # ids of tasks woken and not stepped since
        self.origin = {}         # queued handle -> its task's _Traced (a step or wake-up), the
        #                          `by` of what queued it, or (time, by) for a late W
        self.live = 0            # tasks announced (S) and not finished
        self.last_q = None
        self.late = None
        self.prune_at = 1024
        self.sel_done = False


_LATE = ('late',)                # marker: a task's wake-up whose task is not known yet (< 3.10)
_STEP_TYPES = frozenset(('TaskStepMethWrapper', 'TaskWakeupMethWrapper'))
_STEP_NAMES = frozenset(('task_wakeup', '__step', '__wakeup', '_Task__step', '_Task__wakeup'))
_cb_kinds = {}                   # callback type -> 0: never a task's, 1: always, 2: by __name__


def _classify(cb):
    """The _Traced of the task whose step or wake-up `cb` is; _LATE for a task's step or wake-up
    whose task cannot be known (3.8/3.9 C wake-up); None for any other callback."""
    kind = _cb_kinds.get(type(cb))
    if kind is None:
        tn = type(cb).__name__
        kind = 1 if tn in _STEP_TYPES else (
            2 if tn in ('method', 'builtin_function_or_method') else 0)
        if len(_cb_kinds) < 1000:
            _cb_kinds[type(cb)] = kind
    if kind == 0 or (kind == 2 and getattr(cb, '__name__', None) not in _STEP_NAMES):
        return None
    task = getattr(cb, '__self__', None)
    if task is None:
        return _LATE
    w = getattr(task, '_coro', None)
    if type(w) is _Traced and w.st is not None:
        return w
    return None


class _Traced(_collections_abc.Coroutine):
    """Stands for a task's coroutine: forwards everything to it and records each step."""
    __slots__ = ('_coro', '_send', '_throw', 'id', 'st', 'cause', 'announced', 'pending',
                 'finished')

    def __init__(self, coro, st):
        self._coro = coro
        self._send = coro.send
        self._throw = coro.throw
        self.id = next(_task_ids)
        self.st = st                 # None: not recorded
        self.cause = 'task:%d' % self.id
        self.announced = False       # S written; until then W and R wait in `pending`
        self.pending = []
        self.finished = False

    # the coroutine protocol -------------------------------------------------------------------
    # send (also __next__) and throw each are one frame between the Task and the coroutine
    # (hidden from tracebacks by _hide); the C Task calls __next__ (PyIter_Send) or send, and
    # throw.

    def send(self, value=None):
        st = self.st
        if st is None or not _on:
            try:
                return self._send(value)
            except BaseException as e:
                _hide(e)
                raise
        prev = st.cause
        if prev is _LATE:
            prev = self._late_wake(st)
        st.cause = self.cause
        t0 = _mono()
        try:
            r = self._send(value)
        except BaseException as e:
            st.cause = prev
            self._stepped(t0, 2 if isinstance(e, _CancelledError) else 1)
            _hide(e)
            raise
        st.cause = prev
        if self.announced and _on:
            st.ready.discard(self.id)
            _append('R %d %d %d %d 0' % (self.id, st.tid or _native_id(), t0, _mono()))
        else:
            self._stepped(t0, 0)
        return r

    # The C Task steps a coroutine through __next__ (PyIter_Send with None) or send: the same
    # function serves both, still one frame.
    __next__ = send

    def throw(self, *args):
        st = self.st
        if st is None or not _on:
            try:
                return self._throw(*args)
            except BaseException as e:
                _hide(e)
                raise
        prev = st.cause
        if prev is _LATE:
            prev = self._late_wake(st)
        st.cause = self.cause
        t0 = _mono()
        try:
            r = self._throw(*args)
        except BaseException as e:
            st.cause = prev
            self._stepped(t0, 2 if isinstance(e, _CancelledError) else 1)
            _hide(e)
            raise
        st.cause = prev
        if self.announced and _on:
            st.ready.discard(self.id)
            _append('R %d %d %d %d 0' % (self.id, st.tid or _native_id(), t0, _mono()))
        else:
            self._stepped(t0, 0)
        return r

    def close(self):
        return self._coro.close()

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __getattr__(self, name):
        # cr_frame, cr_code, cr_await, cr_running, __qualname__, __name__, gi_* ...
        return getattr(object.__getattribute__(self, '_coro'), name)

    def __repr__(self):
        return repr(self._coro)

    # recording ---------------------------------------------------------------------------------

    def announce(self, task, at):
        """After create_task returned: the S record, then what waited for it."""
        st = self.st
        if st is None:
            return
        if not self.finished and getattr(task, '_coro', None) is not self:
            _note('a task factory wraps coroutines again: those tasks are not traced')
            self.st = None
            self.pending = None
            return
        get_name = getattr(task, 'get_name', None)
        name = get_name() if get_name is not None else ''
        qualname = getattr(self._coro, '__qualname__', None) or type(self._coro).__name__
        _append('S %d %d %d %d %s %s' % (self.id, at, st.id, _native_id(), _enc(name),
                                         _enc(qualname)))
        self.announced = True
        st.live += 1
        pending, self.pending = self.pending, None
        for rec in pending:
            if len(rec) == 2:
                self._woken_now(st, rec[0], rec[1])
            else:
                self._stepped_now(st, rec[0], rec[1], rec[2])

    def woken(self, by, at=None):
        """The task's step or wake-up was queued (at `at`, default now)."""
        if self.finished:
            return
        if at is None:
            at = _mono()
        if not self.announced:
            self.pending.append((at, by))
        else:
            self._woken_now(self.st, at, by)

    def _woken_now(self, st, at, by):
        st.ready.add(self.id)
        _append('W %d %d %s' % (self.id, at, by))

    def _late_wake(self, st):
        """First step inside a wake-up callback whose task was unknown when it was queued."""
        late, st.late = st.late, None
        if type(late) is tuple:
            try:
                self.woken(late[1], late[0])
            except Exception as e:
                _fail(e, 'task wake')
        return self.cause            # what the rest of that callback does is this task's doing

    def _stepped(self, t0, done):
        try:
            t1 = _mono()
            if done:
                self.finished = True
            if not _on:
                return
            if not self.announced:
                if self.pending is not None:
                    self.pending.append((t0, t1, done))
            else:
                self._stepped_now(self.st, t0, t1, done)
        except Exception as e:
            _fail(e, 'task step')

    def _stepped_now(self, st, t0, t1, done):
        st.ready.discard(self.id)
        if done:
            st.live -= 1
        _append('R %d %d %d %d %d' % (self.id, st.tid or _native_id(), t0, t1, done))


_CancelledError = None           # set when asyncio is patched
_BaseEventLoop = None


def _state(loop):
    st = loop.__dict__.get(_ST)
    if st is None:
        import weakref
        st = _LoopState(next(_loop_ids))
        setattr(loop, _ST, st)
        if len(_states) > 64:
            _states[:] = [r for r in _states if r() is not None]
        _states.append(weakref.ref(st))
    return st


def _loop_running(loop):
    """asyncio.events._set_running_loop(loop): `loop` starts running on this thread."""
    if not isinstance(loop, _BaseEventLoop):
        _note('event loop %s.%s is not asyncio\'s: its tasks, wakes and selector waits are not '
              'seen' % (type(loop).__module__, type(loop).__qualname__))
        return
    st = _state(loop)
    st.tid = _native_id()
    if not st.sel_done:
        _wrap_selector(loop, st)


def _wrap_selector(loop, st):
    """Gives the loop's selector an instance-level select that writes L records."""
    import weakref
    st.sel_done = True
    sel = getattr(loop, '_selector', None)
    if sel is None or not hasattr(sel, 'select'):
        _note('event loop %s has no selector: no L records' % type(loop).__qualname__)
        return
    orig = sel.select

    def select(timeout=None):
        if not _on:
            try:
                return orig(timeout)
            except BaseException as e:
                _hide(e)
                raise
        if _buf and (timeout is None or timeout >= 0.01):
            _flush()             # about to sleep: let the agent have what we have
        t0 = _mono()
        try:
            events = orig(timeout)
        except BaseException as e:
            _hide(e)
            raise
        t1 = _mono()
        try:
            _append('L %d %d %d %d %d %d' % (
                st.id, st.tid or _native_id(), t0, t1,
                -1 if timeout is None else int(timeout * 1e9), len(events)))
        except Exception as e:
            _fail(e, 'selector wait')
        return events

    sel.select = select
    _selectors.append(weakref.ref(sel))


def _iteration_end(loop, st):
    """After one _run_once: the Q record, a flush when due, pruning."""
    at = _mono()
    ready = len(st.ready)
    timers = len(loop._scheduled) - loop._timer_cancelled_count
    q = (ready, st.live - ready, timers if timers > 0 else 0)
    if q != st.last_q:
        st.last_q = q
        if st.tid is None:
            st.tid = _native_id()
        _append('Q %d %d %d %d %d %d' % ((st.id, st.tid, at) + q))
    if not st.sel_done:
        _wrap_selector(loop, st)
    if len(_buf) >= _FLUSH_RECORDS or at - _last_flush >= _FLUSH_NS:
        _flush()
    origin = st.origin
    if len(origin) > st.prune_at:
        # handles cancelled in the ready queue are dropped without running: forget them
        for h in [h for h in origin if h._cancelled]:
            origin.pop(h, None)
        st.prune_at = max(1024, 2 * len(origin))


def _queued(loop, st, cb, handle):
    """A callback was queued (call_soon): a task became ready (W), or remember what queued the
    callback. st.origin[handle]: the task (its step), a `by` string, or (time, by) for a late W.
    """
    w = _classify(cb)
    by = st.cause
    if by is None or type(by) is not str or loop._thread_id != _get_ident():
        by = _OTHER              # outside the loop's callbacks, or another thread
    if w is None:
        if by is not _OTHER:
            st.origin[handle] = by
    elif w is _LATE:
        st.origin[handle] = (_mono(), by)
    else:
        st.origin[handle] = w
        if w.announced:
            if not w.finished:
                st.ready.add(w.id)
                _append('W %d %d %s' % (w.id, _mono(), by))
        else:
            w.woken(by)


def _calls(func, name):
    """Whether Python function `func` refers to attribute or global `name`."""
    code = getattr(func, '__code__', None)
    return code is not None and name in code.co_names


def _patch_asyncio(asyncio):
    global _CancelledError, _BaseEventLoop, _task_ids, _loop_ids
    import itertools
    from asyncio import base_events, coroutines, events
    try:
        from asyncio import selector_events
    except ImportError:
        selector_events = None
    _task_ids = itertools.count(1)
    _loop_ids = itertools.count(1)
    _CancelledError = asyncio.CancelledError
    iscoroutine = coroutines.iscoroutine
    BEL = _BaseEventLoop = base_events.BaseEventLoop
    for name in ('create_task', 'call_soon', 'call_soon_threadsafe', '_run_once'):
        if name not in BEL.__dict__:
            _note('asyncio.BaseEventLoop.%s missing: asyncio not traced' % name)
            return
    if '_run' not in events.Handle.__dict__:
        _note('asyncio.Handle._run missing: asyncio not traced')
        return

    orig_create_task = BEL.create_task

    def create_task(self, coro, *args, **kwargs):
        w = None
        if _on and type(coro) is not _Traced:
            try:
                if iscoroutine(coro):
                    w = _Traced(coro, _state(self))
                    at = _mono()
            except Exception as e:
                _fail(e, 'create_task')
                w = None
        try:
            task = orig_create_task(self, coro if w is None else w, *args, **kwargs)
        except BaseException as e:
            if w is not None:
                w.st = None
                w.pending = None
            _hide(e)
            raise
        if w is not None and _on:
            try:
                w.announce(task, at)
            except Exception as e:
                _fail(e, 'create_task')
        return task

    # call_soon (and call_soon_threadsafe up to 3.12) queue through _call_soon(callback, args,
    # context): hooking it is cheaper than hooking call_soon(callback, *args, context=None)
    orig_call_soon = BEL.call_soon
    hook_private = '_call_soon' in BEL.__dict__ and _calls(orig_call_soon, '_call_soon')
    threadsafe_private = hook_private and _calls(BEL.call_soon_threadsafe, '_call_soon')

    if hook_private:
        orig_private = BEL._call_soon

        def _call_soon(self, callback, args, context):
            try:
                handle = orig_private(self, callback, args, context)
            except BaseException as e:
                _hide(e)
                raise
            if _on:
                st = self.__dict__.get(_ST)
                if st is not None:
                    try:
                        _queued(self, st, callback, handle)
                    except Exception as e:
                        _fail(e, 'call_soon')
            return handle
    else:
        def call_soon(self, callback, *args, context=None):
            try:
                handle = orig_call_soon(self, callback, *args, context=context)
            except BaseException as e:
                _hide(e)
                raise
            if _on:
                st = self.__dict__.get(_ST)
                if st is not None:
                    try:
                        _queued(self, st, callback, handle)
                    except Exception as e:
                        _fail(e, 'call_soon')
            return handle

    orig_call_soon_threadsafe = BEL.call_soon_threadsafe

    def call_soon_threadsafe(self, callback, *args, context=None):
        st = self.__dict__.get(_ST) if _on else None
        by = _OTHER
        w = None
        if st is not None:
            try:
                if self._thread_id == _get_ident():
                    by = st.cause if type(st.cause) is str else _OTHER
                w = _classify(callback)
                if w is not None and w is not _LATE and not self._closed:
                    w.woken(by)              # before it is queued: the loop may run it at once
                else:
                    w = None
            except Exception as e:
                _fail(e, 'call_soon_threadsafe')
                st = None
        try:
            handle = orig_call_soon_threadsafe(self, callback, *args, context=context)
        except BaseException as e:
            _hide(e)
            raise
        if st is not None and _on:
            if w is not None:
                st.origin[handle] = w
            elif by is not _OTHER:
                st.origin[handle] = by
        return handle

    orig_run_once = BEL._run_once

    def _run_once(self):
        try:
            orig_run_once(self)
        except BaseException as e:
            _hide(e)
            raise
        if _on:
            st = self.__dict__.get(_ST)
            if st is not None:
                try:
                    _iteration_end(self, st)
                except Exception as e:
                    _fail(e, 'loop iteration')

    orig_handle_run = events.Handle._run
    TimerHandle = events.TimerHandle

    def _run(self):
        st = getattr(self._loop, _ST, None) if _on else None
        if st is None:
            try:
                return orig_handle_run(self)
            except BaseException as e:
                _hide(e)
                raise
        prev = st.cause
        try:
            # what queued this callback decides what it counts as (see _queued)
            c = st.origin.pop(self, None)
            if c is None:
                st.cause = _TIMER if isinstance(self, TimerHandle) else _OTHER
            elif type(c) is str:
                st.cause = c
            elif type(c) is _Traced:
                st.cause = c.cause
            else:
                st.late = c
                st.cause = _LATE
        except Exception as e:
            _fail(e, 'callback')
        try:
            return orig_handle_run(self)
        except BaseException as e:
            _hide(e)
            raise
        finally:
            st.cause = prev

    if selector_events is not None and '_process_events' in getattr(
            selector_events, 'BaseSelectorEventLoop', object).__dict__:
        SEL = selector_events.BaseSelectorEventLoop
        orig_process_events = SEL._process_events

        def _process_events(self, event_list):
            st = self.__dict__.get(_ST) if _on else None
            n0 = len(self._ready) if st is not None else 0
            try:
                orig_process_events(self, event_list)
            except BaseException as e:
                _hide(e)
                raise
            if st is not None and _on:
                try:
                    ready = self._ready
                    n1 = len(ready)
                    if n1 > n0:
                        origin = st.origin
                        for i in range(n0, n1):
                            origin[ready[i]] = _IO
                except Exception as e:
                    _fail(e, 'selector events')
        _patch(SEL, '_process_events', _process_events)
    else:
        _note('asyncio selector loop not found: wakes by I/O are counted as other')

    orig_set_running_loop = events._set_running_loop

    def _set_running_loop(loop):
        orig_set_running_loop(loop)
        if loop is not None and _on:
            try:
                _loop_running(loop)
            except Exception as e:
                _fail(e, 'loop start')

    _patch(BEL, 'create_task', create_task)
    if hook_private:
        _patch(BEL, '_call_soon', _call_soon)
    else:
        _patch(BEL, 'call_soon', call_soon)
    if not threadsafe_private:
        _patch(BEL, 'call_soon_threadsafe', call_soon_threadsafe)
    _patch(BEL, '_run_once', _run_once)
    _patch(events.Handle, '_run', _run)
    _patch(events, '_set_running_loop', _set_running_loop)
    if getattr(asyncio, '_set_running_loop', None) is orig_set_running_loop:
        _patch(asyncio, '_set_running_loop', _set_running_loop)


# ---------------------------------------------------------------------------------------------
# Patching modules when the program imports them
# ---------------------------------------------------------------------------------------------

class _PostImportHook(object):
    """A sys.meta_path finder that finds nothing itself: for the modules it watches, it asks the
    other finders, and has the module's loader call a hook once the module is executed."""

    def __init__(self, hooks):
        self.hooks = hooks       # module name -> function(module)
        self.busy = set()

    def find_spec(self, name, path=None, target=None):
        hook = self.hooks.get(name)
        if hook is None or name in self.busy:
            return None
        self.busy.add(name)
        try:
            spec = None
            for finder in sys.meta_path:
                find_spec = getattr(finder, 'find_spec', None)
                if finder is self or find_spec is None:
                    continue
                spec = find_spec(name, path, target)
                if spec is not None:
                    break
        finally:
            self.busy.discard(name)
        if spec is None:
            return None
        loader = spec.loader
        try:
            exec_module = loader.exec_module
            if isinstance(loader, type) or not hasattr(loader, '__dict__'):
                raise TypeError('shared loader')
        except Exception:
            _note('cannot watch the import of %s: not traced' % name)
            return spec

        def exec_and_patch(module):
            try:
                del loader.exec_module
            except AttributeError:
                pass
            try:
                exec_module(module)
            except BaseException as e:
                _hide(e)
                raise
            self.done(name, hook, module)

        loader.exec_module = exec_and_patch
        return spec

    def done(self, name, hook, module):
        self.hooks.pop(name, None)
        if not self.hooks:
            try:
                sys.meta_path.remove(self)
            except ValueError:
                pass
        if _on:
            try:
                hook(module)
            except Exception as e:
                _fail(e, 'patching %s' % name)


# ---------------------------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------------------------

def _setup():
    import atexit
    atexit.register(_at_exit)
    os.register_at_fork(after_in_child=_after_fork_child)
    _patch(os, '_exit', _make_os_exit(os._exit))
    _append('T %d %d %s' % (_native_id(), _mono(), _enc(_current_thread_name())))
    hooks = {}
    for name, hook in (('threading', _patch_threading), ('asyncio', _patch_asyncio)):
        module = sys.modules.get(name)
        if module is not None:
            hook(module)
        else:
            hooks[name] = hook
    if hooks:
        sys.meta_path.insert(0, _PostImportHook(hooks))


def _activate():
    """Turns the probe on when the agent's pipe is really there; never raises."""
    global _on, _fd, _pid
    try:
        fd = int(os.environ['COREPLAY_PROBE_FD'])
        ino = int(os.environ['COREPLAY_PROBE_INO'])
        st = os.fstat(fd)
    except (KeyError, ValueError, OSError):
        return
    if not stat.S_ISFIFO(st.st_mode) or st.st_ino != ino:
        return
    _fd = fd
    _pid = os.getpid()
    try:
        os.set_blocking(fd, False)
        _on = True
        _hello()
        if os.environ.get('COREPLAY_PROBE_FAIL') == '1':
            raise RuntimeError('forced failure (COREPLAY_PROBE_FAIL=1)')
        _setup()
    except Exception as e:
        _fail(e, 'set-up')
    try:
        _flush()
    except Exception:
        pass


def _chain_sitecustomize():
    """Runs the program's own sitecustomize (the next one on sys.path) as `sitecustomize`, the
    way `import sitecustomize` would have; its errors go to site.py, which reports them."""
    try:
        here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
        path = [p for p in sys.path
                if isinstance(p, str) and os.path.realpath(p or os.curdir) != here]
        import importlib.machinery
        import importlib.util
        spec = importlib.machinery.PathFinder.find_spec('sitecustomize', path)
        if spec is None or spec.loader is None:
            return
        module = importlib.util.module_from_spec(spec)
    except Exception as e:
        if _on:
            _note('cannot look for the program\'s sitecustomize: %s: %s' % (type(e).__name__, e))
        return
    sys.modules['sitecustomize'] = module   # `import sitecustomize` ends up binding this one
    spec.loader.exec_module(module)


def _cache_bytecode(code):
    """Compiling this file costs about 9 ms, at every Python start when the environment forbids
    bytecode caches (PYTHONDONTWRITEBYTECODE). The file lives in the agent's private directory,
    so cache it there anyway, for the program's other Python processes."""
    try:
        cached = globals().get('__cached__')
        if not sys.dont_write_bytecode or not cached or os.path.exists(cached):
            return
        from importlib import _bootstrap_external as bx
        st = os.stat(__file__)
        data = bx._code_to_timestamp_pyc(code, int(st.st_mtime), st.st_size)
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        bx._write_atomic(cached, data, 0o600)
    except Exception:
        pass


_activate()
_cache_bytecode(sys._getframe(0).f_code)
_chain_sitecustomize()
