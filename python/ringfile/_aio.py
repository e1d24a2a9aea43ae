"""asyncio waits of ringfile (``Consumer.recv_async``, ``Consumer.recv_batch_async``).

No thread per ring: the library's one watcher thread per process sleeps on the futex words
of every ring a task waits on and, when a producer publishes, writes to the consumer's
eventfd, which the event loop watches (``loop.add_reader``). A message already in the ring
is returned at once, without a trip through the loop.
"""

import asyncio
import os

from ringfile._errors import Timeout


def _woken(fd, future):
    try:
        os.read(fd, 8)
    except BlockingIOError:
        pass
    if not future.done():
        future.set_result(None)


async def receive(consumer, max, timeout):
    """Polls the consumer's async receive; while it waits, awaits its eventfd."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    consumer._awaiting(True)
    try:
        fd = consumer._wake_fd()
        while True:
            done, value = consumer._poll(max)
            if done:
                return value
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                raise Timeout(f"no message within {timeout} s")
            woken = loop.create_future()
            loop.add_reader(fd, _woken, fd, woken)
            try:
                # A wake-up written between the poll and add_reader leaves the eventfd
                # readable, so the loop calls _woken at once: none is lost.
                await asyncio.wait_for(woken, left)
            except asyncio.TimeoutError:
                pass  # polled once more above, then Timeout
            finally:
                loop.remove_reader(fd)
    finally:
        consumer._awaiting(False)
