"""ringfile: stream messages between processes through a lock-free ring in a shared file.

A ring file (in /dev/shm, say) holds a ring of messages; one process takes its producer,
one or more take consumers. Every message sent is received whole, in order, once by each
consumer; a consumer sees the end of the stream, an abort, or a producer that died. This
package is the Rust library's own code, with Python classes around it.

    >>> import ringfile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ring")
    >>> ring = ringfile.Ring.create(path, capacity="64KiB")
    >>> with ring.producer() as producer:
    ...     producer.send(b"hello")
    ...     producer.send(bytearray(b"world"))
    >>> [msg for msg in ring.consumer()]
    [b'hello', b'world']

Without a copy, ``with consumer.recv_view() as data:`` reads a message in place (a
read-only memoryview; ``numpy.frombuffer(data, ...)``) and releases it on leaving the block.

Waits release the GIL and answer Ctrl-C; ``timeout`` is in seconds. See ``Ring``,
``Producer``, ``Consumer``, ``View`` and the exceptions in ``ringfile._errors`` (all exported here).
"""

from ringfile._ringfile import DEFAULT_CAPACITY, Consumer, Producer, Ring, View
from ringfile._errors import *  # noqa: F401,F403
from ringfile import _errors

__all__ = ["Ring", "Producer", "Consumer", "View", "DEFAULT_CAPACITY"] + _errors.__all__
