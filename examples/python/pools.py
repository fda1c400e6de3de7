"""The same CPU-bound work on a ThreadPoolExecutor, then on a ProcessPoolExecutor.

Run it under coreplay:

    coreplay watch -- python3 examples/python/pools.py            # both, one after the other
    coreplay watch -- python3 examples/python/pools.py processes  # or only one: threads|processes

What to look for: with the thread pool, the pool threads (pool-thread-N) take turns on the
CPUs because of the GIL: no more than one runs at a time, and the wall time is that of doing the
work serially. With the process pool, new processes appear (proc-worker, one per core), each
with its own interpreter and its own GIL, and they run on different CPUs at the same time: the
wall time drops by about the number of cores, at the cost of starting processes and copying
arguments and results between them. The script prints both wall times.

Standard library only; a few seconds at most.
"""

import concurrent.futures as cf
import ctypes
import os
import sys
import threading
import time

TASKS = 4
ITERATIONS = 2_000_000  # per task; about 0.25 s of one core each on a small VM


def name_os_thread(name):
    """Names the calling OS thread (what `ps -L`, `top -H` and coreplay show); Python 3.14+
    does it for `threading.Thread` by itself."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def name_pool_thread():
    # ThreadPoolExecutor names its threads ThreadPoolExecutor-P_N.
    name_os_thread("pool-thread-" + threading.current_thread().name.rsplit("_", 1)[-1])


def name_worker_process():
    name_os_thread("proc-worker")


def timed(executor):
    start = time.perf_counter()
    with executor as pool:
        results = list(pool.map(work, [ITERATIONS] * TASKS))
    return time.perf_counter() - start, sum(results)


def main():
    name_os_thread("main")
    which = sys.argv[1] if len(sys.argv) > 1 else "both"
    if which not in ("both", "threads", "processes"):
        sys.exit("usage: pools.py [both|threads|processes]")
    workers = min(TASKS, os.cpu_count() or 1)
    if which in ("both", "threads"):
        wall, check = timed(cf.ThreadPoolExecutor(workers, initializer=name_pool_thread))
        print(f"ThreadPoolExecutor({workers}):  {wall:.2f} s wall for {TASKS} tasks (checksum {check})")
    if which in ("both", "processes"):
        wall, check = timed(cf.ProcessPoolExecutor(workers, initializer=name_worker_process))
        print(f"ProcessPoolExecutor({workers}): {wall:.2f} s wall for {TASKS} tasks (checksum {check})")


if __name__ == "__main__":
    main()
