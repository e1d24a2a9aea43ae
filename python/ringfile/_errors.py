"""The exceptions of ringfile: one base class, one subclass per failure a caller can act on.

Every exception carries the library's one-line message; those about a ring file have its
``path``, those about a process its ``pid`` (None where the file keeps none), an abort its
``reason``.
"""


class RingfileError(Exception):
    """Base class of every error ringfile raises."""

    path = None
    pid = None
    reason = None


class RingFull(RingfileError):
    """``try_send``: no room for the message now (the slowest consumer holds it)."""


class RingEmpty(RingfileError):
    """``try_recv``: no message waiting now (the stream is still open)."""


class Timeout(RingfileError, TimeoutError):
    """A wait given a ``timeout`` ran out."""


class Closed(RingfileError):
    """The producer or consumer was closed, aborted or detached; take a new one."""


class ProducerDied(RingfileError):
    """The producer died (killed, crashed) without ending its stream; ``pid`` is its pid.
    Everything it sent before was received; a new producer may attach and go on."""


class StreamAborted(RingfileError):
    """The producer ended its stream with an error; ``reason`` is what it said."""


class RoleHeld(RingfileError):
    """The role (the producer, or the consumer name) is held by another live process:
    ``pid``."""


class RingNotFound(RingfileError, FileNotFoundError):
    """No ring file at ``path``."""


class RingExists(RingfileError, FileExistsError):
    """``create``: something already exists at ``path``."""


class PermissionDenied(RingfileError, PermissionError):
    """The ring file at ``path`` cannot be opened for reading and writing, or belongs to
    another user."""


class BadRingFile(RingfileError):
    """The file at ``path`` is not a ring file this version reads, is damaged, or does not
    have the capacity or consumer slots asked for."""


class InvalidArgument(RingfileError, ValueError):
    """An argument out of range: a capacity that is not a power of two, a message longer
    than the ring carries, a bad consumer name..."""


class NoSuchConsumer(RingfileError):
    """No free consumer slot for a new name, or no such name."""


class ViewOpen(RingfileError):
    """A view from ``recv_view`` is still open: release it (leave its ``with`` block)
    before receiving again."""


class Inherited(RingfileError):
    """A role inherited across ``fork``: the child must take its own."""


__all__ = [name for name in dir() if not name.startswith("_")]
