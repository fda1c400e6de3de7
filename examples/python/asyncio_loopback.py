"""asyncio with many concurrent loopback TCP requests to a small asyncio server in the same
script (and the same event loop).

Run it under coreplay:

    coreplay watch -- python3 examples/python/asyncio_loopback.py

What to look for: one thread (event-loop) serves both sides. 200 clients connect, send a line
and wait; the server answers each after 50 ms without blocking. All 200 waits overlap, so a round
takes 50 ms plus the time to open 200 connections (well under a second) instead of
200 × 50 ms = 10 s. The thread runs in short bursts (accept,
read, write: tens of microseconds each) between waits in the selector (epoll): voluntary
switches, little CPU time.

Standard library only; about a second.
"""

import asyncio
import ctypes
import time

CLIENTS = 200
LATENCY_S = 0.05
ROUNDS = 5


def name_os_thread(name):
    """Names the calling OS thread (what `ps -L`, `top -H` and coreplay show)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


async def handle(reader, writer):
    line = await reader.readline()
    await asyncio.sleep(LATENCY_S)  # the "database" takes its time, without blocking the loop
    writer.write(b"answer to " + line)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def request(port, i):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"request {i}\n".encode())
    await writer.drain()
    answer = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return answer


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=CLIENTS)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for r in range(ROUNDS):
            start = time.perf_counter()
            answers = await asyncio.gather(*(request(port, i) for i in range(CLIENTS)))
            wall = time.perf_counter() - start
            ok = sum(1 for a in answers if a.startswith(b"answer to"))
            print(
                f"round {r}: {ok}/{CLIENTS} requests of {LATENCY_S * 1000:.0f} ms each in "
                f"{wall * 1000:.0f} ms (one after another: {CLIENTS * LATENCY_S:.0f} s)"
            )


if __name__ == "__main__":
    name_os_thread("event-loop")
    asyncio.run(main())
