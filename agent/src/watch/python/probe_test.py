"""Tests of probe.py, coreplay's Python probe (see its docstring for the record format).

Each test runs real Python child processes the way the agent does: probe.py copied as
`sitecustomize.py` into a temporary directory first on PYTHONPATH, COREPLAY_PROBE_FD naming the
write end of a pipe passed to the child, COREPLAY_PROBE_INO its inode. The checks are about facts
in the records and outputs (orders, counts, equalities), never about how long something took, so
that they hold on a slow or busy machine; the only time limits are guards against a hang.

Run: python3 agent/src/watch/python/probe_test.py   (or, in this directory: python3 -m unittest probe_test)
Standard library only.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, 'probe.py')
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
LOOPBACK = os.path.join(REPO, 'examples', 'python', 'asyncio_loopback.py')
GUARD_S = 300                      # a child that runs longer than this is hung

# fields per record kind (text fields included)
FIELDS = {'H': 4, 'T': 4, 'S': 7, 'R': 6, 'W': 4, 'L': 7, 'Q': 7, 'G': 3, 'N': 2, 'E': 2,
          'X': 2}
FUTEX_NR = {'x86_64': 202, 'aarch64': 98}


def text(field):
    """Decodes a text field."""
    return '' if field == '-' else urllib.parse.unquote(field)


def without_probe_frames(stderr):
    """Before Python 3.11 the probe cannot hide its own frame from a traceback (its docstring
    says so): drop those frames there. From 3.11 on, stderr must be the same as is."""
    if sys.version_info >= (3, 11):
        return stderr
    lines = stderr.splitlines(True)
    out = []
    while lines:
        line = lines.pop(0)
        if line.startswith('  File ') and 'sitecustomize.py' in line:
            while lines and lines[0].startswith('    '):
                lines.pop(0)
            continue
        out.append(line)
    return ''.join(out)


def parse(data):
    """Records as (pid, fields), in the order written. Checks the framing: every write (from a
    `P` line to the next) is at most 4096 bytes, every line belongs to a P, fields are sane."""
    chunks = data.split(b'\nP ')
    for i, chunk in enumerate(chunks):
        size = len(chunk) + (1 if i + 1 < len(chunks) else 0) + (2 if i else 0)
        assert size <= 4096, 'a write of %d bytes' % size
    assert not data or data.startswith(b'P ') and data.endswith(b'\n'), data[:80]
    records = []
    pid = None
    for line in data.decode('ascii').split('\n')[:-1]:
        fields = line.split(' ')
        if fields[0] == 'P':
            assert len(fields) == 2, line
            pid = int(fields[1])
            continue
        assert pid is not None, line
        kind = fields[0]
        assert kind in FIELDS and len(fields) == FIELDS[kind], line
        ints = {'T': 3, 'S': 5, 'R': 6, 'W': 3, 'L': 7, 'Q': 7, 'X': 2, 'H': 2}.get(kind, 1)
        for f in fields[1:ints]:
            int(f)
        records.append((pid, fields))
    return records


class Child(object):
    """A Python child process, with the probe or without, whose records are read as they come."""

    def __init__(self, case, argv, probe=True, env=None, ino_delta=0, pass_fd=True,
                 fd_in_env=True, stdin=subprocess.DEVNULL, pythonpath=()):
        env = dict(os.environ if env is None else env)
        for k in list(env):
            if k in ('COREPLAY_PROBE_FD', 'COREPLAY_PROBE_INO', 'PYTHONPATH'):
                del env[k]
        path = ([case.probe_dir] if probe else []) + list(pythonpath)
        if path:
            env['PYTHONPATH'] = os.pathsep.join(path)
        self.read_fd, write_fd = os.pipe()
        if fd_in_env:
            env['COREPLAY_PROBE_FD'] = str(write_fd)
            env['COREPLAY_PROBE_INO'] = str(os.fstat(write_fd).st_ino + ino_delta)
        self.data = bytearray()
        self.cond = threading.Condition()
        self.eof = False
        self.proc = subprocess.Popen(
            [sys.executable] + list(argv), env=env, stdin=stdin, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, pass_fds=(write_fd,) if pass_fd else (), cwd=case.tmp)
        os.close(write_fd)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            b = os.read(self.read_fd, 65536)
            with self.cond:
                if not b:
                    self.eof = True
                else:
                    self.data += b
                self.cond.notify_all()
            if not b:
                break
        os.close(self.read_fd)

    def records(self):
        with self.cond:
            data = bytes(self.data)
        return parse(data[:data.rfind(b'\n') + 1])

    def wait_for(self, predicate):
        """Waits until predicate(records) is true (or the child ended, or the guard)."""
        give_up = time.monotonic() + GUARD_S
        while True:
            records = self.records()
            if predicate(records):
                return records
            with self.cond:
                if self.eof or time.monotonic() > give_up:
                    return records
                self.cond.wait(0.1)

    def finish(self, stdin_data=None):
        try:
            out, err = self.proc.communicate(stdin_data, timeout=GUARD_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.reader.join(GUARD_S)
        self.stdout, self.stderr = out.decode(), err.decode()
        self.returncode = self.proc.returncode
        self.all = parse(bytes(self.data))
        return self


class ProbeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='coreplay-probe-test-')
        cls.probe_dir = os.path.join(cls.tmp, 'probe')
        os.mkdir(cls.probe_dir)
        shutil.copy(PROBE, os.path.join(cls.probe_dir, 'sitecustomize.py'))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def program(self, name, source):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(textwrap.dedent(source))
        return path

    def run_py(self, argv, **kw):
        stdin_data = kw.pop('input', None)
        if stdin_data is not None:
            kw['stdin'] = subprocess.PIPE
        return Child(self, argv, **kw).finish(stdin_data)

    def assert_same_run(self, a, b):
        self.assertEqual(a.stdout, b.stdout)
        self.assertEqual(without_probe_frames(a.stderr), b.stderr)
        self.assertEqual(a.returncode, b.returncode)

    # -----------------------------------------------------------------------------------------

    def test_asyncio_tasks_wakes_waits_and_queues(self):
        n = 20
        prog = self.program('tasks.py', '''
            import asyncio, sys
            N = int(sys.argv[1])

            async def handle(reader, writer):
                line = await reader.readline()
                writer.write(b'echo ' + line)
                await writer.drain()
                writer.close()
                await writer.wait_closed()

            async def worker(i, port):
                for _ in range(3):
                    await asyncio.sleep(0.01)
                reader, writer = await asyncio.open_connection('127.0.0.1', port)
                writer.write(b'hello %d\\n' % i)
                await writer.drain()
                line = await reader.readline()
                writer.close()
                await writer.wait_closed()
                return line

            async def main():
                server = await asyncio.start_server(handle, '127.0.0.1', 0)
                port = server.sockets[0].getsockname()[1]
                async with server:
                    lines = await asyncio.gather(*(worker(i, port) for i in range(N)))
                assert lines == [b'echo hello %d\\n' % i for i in range(N)], lines
                print('ok')

            asyncio.run(main())
        ''')
        run = self.run_py([prog, str(n)])
        self.assertEqual((run.returncode, run.stdout, run.stderr), (0, 'ok\n', ''))
        pids = {pid for pid, _ in run.all}
        self.assertEqual(pids, {run.proc.pid})
        recs = [f for _, f in run.all]
        kinds = [f[0] for f in recs]
        self.assertEqual(kinds[0], 'H')
        self.assertEqual(kinds[-1], 'X')
        self.assertNotIn('E', kinds)

        tasks = {}                        # id -> S fields
        for f in recs:
            if f[0] == 'S':
                self.assertNotIn(f[1], tasks)
                tasks[f[1]] = f
        coros = [text(f[6]) for f in tasks.values()]
        self.assertEqual(coros.count('worker'), n)
        self.assertEqual(coros.count('main'), 1)
        self.assertEqual(coros.count('handle'), n)   # the server's connection handlers

        steps, wakes = self.check_tasks(recs, tasks)
        for t, rs in steps.items():
            self.assertEqual(rs[-1][5], '1', 'task %s (%s)' % (t, text(tasks[t][6])))

        # what woke the workers: three timers (the sleeps) and I/O (the echo's answer)
        for t, f in tasks.items():
            if text(f[6]) == 'worker':
                self.assertGreaterEqual(wakes[t].count('timer'), 3, wakes[t])
                self.assertGreaterEqual(wakes[t].count('io'), 1, wakes[t])
        all_by = [f[3] for f in recs if f[0] == 'W']
        self.assertIn('io', all_by)
        self.assertIn('timer', all_by)
        self.assertTrue(any(f[0] == 'L' and int(f[6]) > 0 for f in recs))   # woken by events

    def check_tasks(self, recs, tasks):
        """The invariants of S, W, R, L and Q records of one process with one event loop.
        Returns each task's R records and the `by` of its W records."""
        # per task: S first; steps on one thread, in order, not overlapping; a W before each
        # step; the last step finishes the task (or cancels it)
        steps = {t: [] for t in tasks}
        woken = dict.fromkeys(tasks, False)
        wakes = {t: [] for t in tasks}
        seen = set()
        for f in recs:
            if f[0] in ('W', 'R'):
                self.assertIn(f[1], seen, 'W/R before S: %s' % (f,))
            if f[0] == 'S':
                seen.add(f[1])
            elif f[0] == 'W':
                woken[f[1]] = True
                wakes[f[1]].append(f[3])
                by = f[3]
                if by.startswith('task:'):
                    self.assertIn(by[5:], tasks)
                else:
                    self.assertIn(by, ('io', 'timer', 'other'))
            elif f[0] == 'R':
                self.assertTrue(woken[f[1]], 'a step without a wake: %s' % (f,))
                woken[f[1]] = False
                steps[f[1]].append(f)
        loop_tids = {f[2] for f in recs if f[0] == 'L'}
        self.assertEqual(len(loop_tids), 1)
        for t, rs in steps.items():
            self.assertTrue(rs, 'task %s never stepped' % t)
            self.assertEqual({r[2] for r in rs}, loop_tids)
            for a, b in zip(rs, rs[1:]):
                self.assertLessEqual(int(a[4]), int(b[3]))
                self.assertEqual(a[5], '0')
            self.assertLessEqual(int(rs[0][3]), int(rs[0][4]))
            self.assertGreaterEqual(int(rs[0][3]), int(tasks[t][2]))
            self.assertIn(rs[-1][5], ('1', '2'), 'task %s (%s)' % (t, text(tasks[t][6])))

        # Q: `ready` equals the woken-and-not-stepped set rebuilt from W and R, `waiting` the
        # created-and-unfinished tasks less those
        ready, live, nq = set(), set(), 0
        for f in recs:
            if f[0] == 'S':
                live.add(f[1])
            elif f[0] == 'W':
                ready.add(f[1])
            elif f[0] == 'R':
                ready.discard(f[1])
                if f[5] != '0':
                    live.discard(f[1])
            elif f[0] == 'Q':
                nq += 1
                self.assertEqual(int(f[4]), len(ready), f)
                self.assertEqual(int(f[5]), len(live - ready), f)
                self.assertGreaterEqual(int(f[6]), 0)
        self.assertGreater(nq, 0)
        self.assertFalse(live)

        # selector waits and steps of the loop's thread never overlap
        spans = sorted([(int(f[3]), int(f[4]), 'L') for f in recs if f[0] == 'L'] +
                       [(int(f[3]), int(f[4]), 'R') for f in recs if f[0] == 'R'])
        for a, b in zip(spans, spans[1:]):
            self.assertLessEqual(a[0], a[1])
            self.assertLessEqual(a[1], b[0], (a, b))
        return steps, wakes

    def test_cancel_timeout_and_executor_wakes(self):
        prog = self.program('cancel.py', '''
            import asyncio, threading

            async def sleeper():
                await asyncio.sleep(3600)

            async def slow():
                await asyncio.sleep(3600)

            async def main():
                t = asyncio.ensure_future(sleeper())
                await asyncio.sleep(0)
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    print('cancelled')
                try:
                    await asyncio.wait_for(slow(), 0.01)
                except asyncio.TimeoutError:
                    print('timeout')
                # the executor's job ends after main is suspended: its result comes from the
                # executor's thread (call_soon_threadsafe)
                done = threading.Event()
                loop = asyncio.get_running_loop()
                loop.call_soon(done.set)
                await loop.run_in_executor(None, done.wait)
                print('executor')

            asyncio.run(main())
        ''')
        run = self.run_py([prog])
        self.assertEqual((run.returncode, run.stdout, run.stderr),
                         (0, 'cancelled\ntimeout\nexecutor\n', ''))
        recs = [f for _, f in run.all]
        tasks = {f[1]: f for f in recs if f[0] == 'S'}
        steps, wakes = self.check_tasks(recs, tasks)
        by_coro = {text(f[6]): t for t, f in tasks.items()}
        main, sleeper = by_coro['main'], by_coro['sleeper']
        self.assertEqual(steps[sleeper][-1][5], '2')             # cancelled
        self.assertEqual(wakes[sleeper][-1], 'task:' + main)     # by main's t.cancel()
        self.assertEqual(steps[main][-1][5], '1')
        self.assertIn('task:' + sleeper, wakes[main])            # `await t` ended
        self.assertIn('timer', wakes[main])                      # wait_for's deadline
        self.assertEqual(wakes[main][-1], 'other')               # the executor's result
        names = [text(f[3]) for f in recs if f[0] == 'T']
        # asyncio names its default executor's threads from 3.9 on.
        prefix = 'asyncio' if sys.version_info >= (3, 9) else 'ThreadPoolExecutor'
        self.assertTrue(any(n.startswith(prefix) for n in names), names)

    def test_foreign_event_loop_is_noted(self):
        prog = self.program('foreign.py', '''
            import asyncio.events
            class ForeignLoop(object):
                pass
            asyncio.events._set_running_loop(ForeignLoop())
            asyncio.events._set_running_loop(None)
            print('ok')
        ''')
        run = self.run_py([prog])
        self.assertEqual((run.returncode, run.stdout), (0, 'ok\n'))
        notes = [text(f[1]) for _, f in run.all if f[0] == 'N']
        self.assertTrue(any('ForeignLoop' in n and 'not seen' in n for n in notes), notes)

    def test_exceptions_and_reprs_read_as_without_the_probe(self):
        prog = self.program('boom.py', '''
            import asyncio, gc

            async def lost():
                raise KeyError('never retrieved')

            async def main():
                t = asyncio.ensure_future(lost())
                await asyncio.sleep(0)
                print(repr(t).split(' defined at ')[0])
                print(repr(t.get_coro()).split(' at 0x')[0])
                del t
                gc.collect()
                await asyncio.sleep(0.01)
                raise ValueError('boom')

            asyncio.run(main())
        ''')
        interrupted = self.program('interrupt.py', '''
            import asyncio

            def interrupt():
                raise KeyboardInterrupt

            async def main():
                asyncio.get_running_loop().call_soon(interrupt)
                await asyncio.sleep(3600)

            asyncio.run(main())
        ''')
        closed = self.program('closed.py', '''
            import asyncio, traceback

            async def nothing():
                pass

            loop = asyncio.new_event_loop()
            loop.close()
            coro = nothing()
            try:
                loop.create_task(coro)
            except RuntimeError:
                traceback.print_exc()
            coro.close()
        ''')
        for p, expect in ((prog, 'ValueError: boom'), (interrupted, 'KeyboardInterrupt'),
                          (closed, 'Event loop is closed')):
            with_probe = self.run_py([p])
            without = self.run_py([p], probe=False)
            self.assert_same_run(with_probe, without)
            self.assertIn(expect, with_probe.stderr)
            stderr = with_probe.stderr
            if sys.version_info < (3, 11):
                # Documented: before 3.11 a traced coroutine's traceback shows one frame of
                # the probe (its `File ".../sitecustomize.py"` line and the code line under
                # it); nothing else differs.
                lines = stderr.splitlines(keepends=True)
                kept, skip = [], 0
                for line in lines:
                    if skip:
                        skip -= 1
                        continue
                    if 'sitecustomize.py"' in line and line.lstrip().startswith('File '):
                        skip = 1
                        continue
                    kept.append(line)
                stderr = ''.join(kept)
                self.assertEqual(stderr.count('Traceback'), without.stderr.count('Traceback'))
            self.assertNotIn('sitecustomize', stderr)
            self.assertNotIn('E', [f[0] for _, f in with_probe.all])
            if p == prog:
                self.assertIn('Task exception was never retrieved', with_probe.stderr)
                self.assertIn('S', [f[0] for _, f in with_probe.all])

    def test_program_sitecustomize_runs_and_usercustomize_untouched(self):
        own = os.path.join(self.tmp, 'own-site')
        os.makedirs(own, exist_ok=True)
        with open(os.path.join(own, 'sitecustomize.py'), 'w') as f:
            f.write('import sys\nprint("OWN-SITECUSTOMIZE", __name__)\nsys.own_marker = 1\n')
        with open(os.path.join(own, 'usercustomize.py'), 'w') as f:
            f.write('print("OWN-USERCUSTOMIZE", __name__)\n')
        prog = self.program('site_check.py', '''
            import sys, site
            print(sys.modules['sitecustomize'].__file__, getattr(sys, 'own_marker', None))
            print('usersite', site.ENABLE_USER_SITE)
        ''')
        with_probe = self.run_py([prog], pythonpath=[own])
        without = self.run_py([prog], probe=False, pythonpath=[own])
        self.assert_same_run(with_probe, without)
        lines = with_probe.stdout.splitlines()
        self.assertEqual(lines[0], 'OWN-SITECUSTOMIZE sitecustomize')
        self.assertEqual(lines[-2], os.path.join(own, 'sitecustomize.py') + ' 1')
        if lines[-1] == 'usersite True':          # site.py runs usercustomize after ours
            self.assertEqual(lines[1], 'OWN-USERCUSTOMIZE usercustomize')
        self.assertEqual([f[0] for _, f in with_probe.all][:2], ['H', 'T'])

    def test_error_in_program_sitecustomize_is_reported_as_usual(self):
        own = os.path.join(self.tmp, 'bad-site')
        os.makedirs(own, exist_ok=True)
        with open(os.path.join(own, 'sitecustomize.py'), 'w') as f:
            f.write('raise ValueError("bad site")\n')
        prog = self.program('hello.py', 'print("hello")\n')
        with_probe = self.run_py([prog], pythonpath=[own])
        without = self.run_py([prog], probe=False, pythonpath=[own])
        self.assert_same_run(with_probe, without)
        self.assertIn('Error in sitecustomize', with_probe.stderr)
        self.assertEqual(with_probe.stdout, 'hello\n')
        self.assertIn('H', [f[0] for _, f in with_probe.all])

    def test_forced_failure_leaves_the_program_alone(self):
        prog = self.program('fails.py', '''
            import asyncio, sys, threading
            async def main():
                await asyncio.sleep(0)
                return 7
            t = threading.Thread(target=print, args=('thread',), name='t1')
            t.start(); t.join()
            print('result', asyncio.run(main()))
            print('to stderr', file=sys.stderr)
            sys.exit(3)
        ''')
        env = dict(os.environ, COREPLAY_PROBE_FAIL='1')
        with_probe = self.run_py([prog], env=env)
        without = self.run_py([prog], probe=False, env=env)
        self.assert_same_run(with_probe, without)
        self.assertEqual(with_probe.returncode, 3)
        kinds = [f[0] for _, f in with_probe.all]
        self.assertIn('E', kinds)
        self.assertLessEqual(set(kinds), {'H', 'E'})
        message = [text(f[1]) for _, f in with_probe.all if f[0] == 'E'][0]
        self.assertIn('COREPLAY_PROBE_FAIL', message)

    def test_inert_without_the_pipe(self):
        prog = self.program('plain.py', '''
            import asyncio, threading
            async def main():
                await asyncio.sleep(0)
            asyncio.run(main())
            t = threading.Thread(target=lambda: None); t.start(); t.join()
            print('plain')
        ''')
        baseline = self.run_py([prog], probe=False)
        for variant in (dict(fd_in_env=False), dict(ino_delta=1), dict(pass_fd=False)):
            run = self.run_py([prog], **variant)
            self.assert_same_run(run, baseline)
            self.assertEqual(run.all, [], variant)

    def test_full_or_broken_pipe_never_blocks_or_kills_the_program(self):
        prog = self.program('busy_loop.py', '''
            import asyncio, signal, sys
            if sys.argv[1] == 'wait':
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # a dead agent must not kill us
                sys.stdin.readline()
            async def spin(n):
                for _ in range(n):
                    await asyncio.sleep(0)
            async def main():
                await asyncio.gather(*(spin(1000) for _ in range(5)))
            asyncio.run(main())
            print('ok')
        ''')
        env = dict(os.environ)
        env['PYTHONPATH'] = self.probe_dir

        # nobody reads: the pipe fills (64 KiB) long before the program ends
        r, w = os.pipe()
        env.update(COREPLAY_PROBE_FD=str(w), COREPLAY_PROBE_INO=str(os.fstat(w).st_ino))
        proc = subprocess.Popen([sys.executable, prog, 'run'], env=env, pass_fds=(w,),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(w)
        out, err = proc.communicate(timeout=GUARD_S)
        self.assertEqual((proc.returncode, out, err), (0, b'ok\n', b''))
        os.set_blocking(r, False)
        data = b''
        while True:
            try:
                b = os.read(r, 65536)
            except BlockingIOError:
                break
            if not b:
                break
            data += b
        os.close(r)
        records = parse(data)                       # whole writes only, never a torn line
        self.assertEqual(records[0][1][0], 'H')
        self.assertGreater(len(data), 32768)
        self.assertNotIn('X', [f[0] for _, f in records])   # it was still full at exit

        # the agent goes away after the first records; the program has SIGPIPE at default
        r, w = os.pipe()
        env.update(COREPLAY_PROBE_FD=str(w), COREPLAY_PROBE_INO=str(os.fstat(w).st_ino))
        proc = subprocess.Popen([sys.executable, prog, 'wait'], env=env, pass_fds=(w,),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        os.close(w)
        first = os.read(r, 65536)
        self.assertTrue(first.startswith(b'P '), first)
        os.close(r)
        out, err = proc.communicate(b'go\n', timeout=GUARD_S)
        self.assertEqual((proc.returncode, out, err), (0, b'ok\n', b''))

    def test_thread_names(self):
        prog = self.program('names.py', '''
            import json, threading
            go = threading.Event()
            names = ['worker-alpha', 'a-very-long-thread-name-xyz', 'ünïcode name']
            ts = [threading.Thread(target=go.wait, name=n) for n in names]
            for t in ts:
                t.start()
            def comm(tid):
                with open('/proc/self/task/%d/comm' % tid, encoding='utf-8') as f:
                    return f.read().rstrip('\\n')
            info = {'threads': [[t.native_id, t.name, comm(t.native_id)] for t in ts]}
            ts[0].name = 'renamed-x'
            info['renamed'] = [ts[0].native_id, comm(ts[0].native_id)]
            info['main'] = [threading.get_native_id(), comm(threading.get_native_id())]
            go.set()
            for t in ts:
                t.join()
            print(json.dumps(info))
        ''')
        run = self.run_py([prog])
        self.assertEqual(run.returncode, 0, run.stderr)
        info = json.loads(run.stdout)
        t_records = [(int(f[1]), text(f[3])) for _, f in run.all if f[0] == 'T']
        main_tid, main_comm = info['main']
        self.assertEqual(t_records[0], (main_tid, 'MainThread'))
        self.assertNotEqual(main_comm, 'MainThread')
        for tid, name, comm in info['threads']:
            self.assertIn((tid, name), t_records)
            expect = name.encode()[:15].decode('utf-8', 'ignore')
            self.assertEqual(comm, expect)
        self.assertIn((info['renamed'][0], 'renamed-x'), t_records)
        self.assertEqual(info['renamed'][1], 'renamed-x')

    def test_gil_futex_address(self):
        nr = FUTEX_NR.get(os.uname().machine)
        if nr is None:
            self.skipTest('futex number unknown here')
        prog = self.program('spin.py', '''
            import sys, threading
            stop = False
            def spin():
                x = 0
                while not stop:
                    x += 1
            ts = [threading.Thread(target=spin, name='spin-%d' % i) for i in range(3)]
            for t in ts:
                t.start()
            sys.stdin.read()          # until the test closes our stdin
            stop = True
            for t in ts:
                t.join()
            print('done')
        ''')
        child = Child(self, [prog], stdin=subprocess.PIPE)
        try:
            def ready(recs):
                kinds = [f[0] for _, f in recs]
                return 'G' in kinds and kinds.count('T') >= 4
            recs = child.wait_for(ready)
            g = [f for _, f in recs if f[0] == 'G']
            self.assertTrue(g, 'no G record')
            if sys.version_info >= (3, 13) and not getattr(sys, '_is_gil_enabled', bool)():
                self.assertEqual(g[0][1], '-')
                return
            self.assertNotEqual(g[0][1], '-', text(g[0][2]))
            addrs = {int(a, 16) for a in g[0][1].split(',')}
            spinners = [int(f[1]) for _, f in recs if f[0] == 'T' and text(f[3]).startswith('spin-')]
            self.assertEqual(len(spinners), 3)
            found = None
            give_up = time.monotonic() + GUARD_S
            samples = 0
            while found is None and samples < 200000 and time.monotonic() < give_up:
                for tid in spinners:
                    try:
                        with open('/proc/%d/task/%d/syscall' % (child.proc.pid, tid)) as f:
                            fields = f.read().split()
                    except OSError:
                        continue
                    samples += 1
                    if len(fields) > 1 and fields[0] == str(nr) and int(fields[1], 16) in addrs:
                        found = (tid, fields[1])
                        break
            self.assertIsNotNone(found, 'no spinning thread seen waiting at %s in %d samples'
                                 % (g[0][1], samples))
        finally:
            child.proc.stdin.close()
            child.proc.stdin = None
            child.finish()
        self.assertEqual(child.stdout, 'done\n')

    def test_fork_child_writes_its_own_records_subprocess_child_none(self):
        prog = self.program('forks.py', '''
            import asyncio, multiprocessing, os, subprocess, sys

            async def tick():
                await asyncio.sleep(0)

            def child():
                asyncio.run(tick())
                print('fork-child', os.getpid(), flush=True)

            if __name__ == '__main__':
                asyncio.run(tick())
                p = multiprocessing.get_context('fork').Process(target=child)
                p.start()
                p.join()
                sub = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                                     stdout=subprocess.PIPE, universal_newlines=True)
                print('sub', sub.stdout.strip(), sub.returncode)
                print('parent', os.getpid(), p.exitcode)
        ''')
        run = self.run_py([prog])
        self.assertEqual(run.returncode, 0, run.stderr)
        out = dict(line.split(' ', 1) for line in run.stdout.splitlines())
        parent, fork_child = run.proc.pid, int(out['fork-child'])
        sub_pid = int(out['sub'].split()[0])
        self.assertEqual(out['sub'].split()[1], '0')
        self.assertEqual(out['parent'], '%d 0' % parent)
        by_pid = {}
        for pid, f in run.all:
            by_pid.setdefault(pid, []).append(f)
        self.assertEqual(set(by_pid), {parent, fork_child})
        self.assertNotIn(sub_pid, by_pid)
        for pid in (parent, fork_child):
            kinds = [f[0] for f in by_pid[pid]]
            self.assertEqual(kinds[0], 'H', pid)
            self.assertIn('S', kinds)
            self.assertEqual(kinds[-1], 'X', pid)
            self.assertNotIn('E', kinds)
        parent_tasks = {f[1] for f in by_pid[parent] if f[0] == 'S'}
        child_tasks = {f[1] for f in by_pid[fork_child] if f[0] == 'S'}
        self.assertFalse(parent_tasks & child_tasks)   # no record of the parent's repeated

    def test_fork_while_learning_the_gil_keeps_the_switch_interval(self):
        prog = self.program('fork_early.py', '''
            import os, sys, threading, time, warnings
            warnings.simplefilter('ignore', DeprecationWarning)   # 3.12+: fork with threads
            before = sys.getswitchinterval()
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
            give_up = time.monotonic() + 10       # the probe lowers it for a while, soon
            while sys.getswitchinterval() == before and time.monotonic() < give_up:
                time.sleep(0.001)
            lowered = sys.getswitchinterval() != before
            pid = os.fork()
            if pid == 0:
                print('child', sys.getswitchinterval() == before, flush=True)
                os._exit(0)
            os.waitpid(pid, 0)
            print('forked while lowered', lowered)
        ''')
        run = self.run_py([prog])
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stderr, '')
        self.assertEqual(run.stdout.splitlines()[0], 'child True')
        self.assertNotIn('E', [f[0] for _, f in run.all])

    def test_overhead_on_asyncio_loopback(self):
        """Prints the wall-time ratio with/without the probe (median of 3); asserts only that
        both ran the example right."""
        if not os.path.exists(LOOPBACK):
            self.skipTest('examples/python/asyncio_loopback.py not found')
        times = {True: [], False: []}
        for _ in range(3):
            for probe in (False, True):
                t0 = time.perf_counter()
                run = self.run_py([LOOPBACK], probe=probe)
                times[probe].append(time.perf_counter() - t0)
                self.assertEqual(run.returncode, 0, run.stderr)
                self.assertEqual(run.stdout.count('200/200 requests'), 5, run.stdout)
                if probe:
                    self.assertNotIn('E', [f[0] for _, f in run.all])
        ratio = statistics.median(times[True]) / statistics.median(times[False])
        sys.stderr.write('\n  asyncio_loopback.py wall time with the probe / without: %.2f '
                         '(medians of 3: %.3f s / %.3f s) ... ' % (
                             ratio, statistics.median(times[True]),
                             statistics.median(times[False])))


if __name__ == '__main__':
    unittest.main()
