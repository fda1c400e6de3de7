"""Many concurrent asyncio sleeps on one thread: concurrency without parallelism.

Run it under coreplay:

    coreplay watch -- python3 examples/python/asyncio_sleeps.py

What to look for: 1000 tasks are waiting at once, yet there is one thread (event-loop), and it
is almost never on a CPU: it sleeps in the selector (epoll) until the next timer is due, wakes,
runs the tasks whose sleep ended (a few microseconds each), and sleeps again. Its switches are
voluntary; the whole run takes about as long as the longest sleep, not the sum of them.

Standard library only; about two seconds.
"""

import asyncio
import ctypes
import random
import time

TASKS = 1000
ROUNDS = 3


def name_os_thread(name):
    """Names the calling OS thread (what `ps -L`, `top -H` and coreplay show)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


async def nap(rng):
    delay = rng.uniform(0.05, 0.5)
    await asyncio.sleep(delay)
    return delay


async def main():
    rng = random.Random(7)
    for r in range(ROUNDS):
        start = time.perf_counter()
        delays = await asyncio.gather(*(nap(rng) for _ in range(TASKS)))
        wall = time.perf_counter() - start
        print(
            f"round {r}: {TASKS} sleeps totalling {sum(delays):.0f} s done in {wall:.2f} s "
            f"on one thread"
        )


if __name__ == "__main__":
    name_os_thread("event-loop")
    asyncio.run(main())
