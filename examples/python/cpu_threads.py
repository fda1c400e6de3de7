"""CPU-bound work on 4 `threading` threads: the GIL lets only one compute at a time.

Run it under coreplay:

    coreplay watch -- python3 examples/python/cpu_threads.py

What to look for: four threads named compute-0 … compute-3, but at any moment at most one of
them is on a CPU, even on a machine with many idle cores. They take turns about every 5 ms
(CPython's switch interval, `sys.getswitchinterval()`): a thread that waited that long asks the
holder to drop the GIL, and the holder hands it over. The wall time is about the same as doing
all the work in one thread; the waiting threads show voluntary context switches (they sleep on
the GIL's condition variable), not CPU time.

Python 3.11 and older do not give OS threads the names of their `threading.Thread`, so each
thread names itself with prctl(PR_SET_NAME) (Python 3.14+ does this by itself).
Standard library only; a few seconds at most.
"""

import ctypes
import sys
import threading
import time

THREADS = 4
ITERATIONS = 2_500_000  # per thread; about 0.3 s of one core each on a small VM


def name_os_thread(name):
    """Names the calling OS thread (what `ps -L`, `top -H` and coreplay show)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def name_thread_from_outside(thread):
    """Names a started thread from the thread that started it (Linux lets a process rename its
    own threads through /proc): a new thread must win the GIL before its own first line runs,
    which under load can take longer than a watcher waits to read its name."""
    try:
        with open(f"/proc/self/task/{thread.native_id}/comm", "w") as comm:
            comm.write(thread.name[:15])
    except OSError:
        pass


def work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def compute(results, index):
    name_os_thread(threading.current_thread().name)
    results[index] = work(ITERATIONS)


def main():
    name_os_thread("main")
    results = [0] * THREADS
    threads = [
        threading.Thread(target=compute, args=(results, i), name=f"compute-{i}")
        for i in range(THREADS)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
        name_thread_from_outside(t)
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    print(
        f"{THREADS} threads × {ITERATIONS} iterations: {wall:.2f} s wall "
        f"(switch interval {sys.getswitchinterval() * 1000:.0f} ms); checksum {sum(results)}"
    )


if __name__ == "__main__":
    main()
