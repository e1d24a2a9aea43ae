"""Python → Python across two processes: ringfile against multiprocessing's Queue and Pipe.

    python python/bench.py            # 5 interleaved rounds, a Markdown table on stdout
    python python/bench.py --quick    # 1 short round (a smoke test: every row runs)

Needs the package installed (``pip install ./python``). The sender is this process, the
receiver a spawned one; they are pinned to two different cores (the last two this process may
use). Each row sends the same payload N times and the receiver counts what arrives (checking
each length); a rate is N over the time from the first send to the receiver holding the last
message (both read CLOCK_MONOTONIC). Rounds run every row in turn, so a slow spell of a shared
machine hits all rows alike; a figure is the median of the rounds, the spread is min–max, and
ratios are taken within the run. The baseline for 64 KiB is a bare ``memoryview`` copy of the
same bytes into a preallocated buffer, in one process: the copy a Python receiver cannot avoid
if it keeps the bytes, and what the ring's path (one copy in, none out with ``recv_view``)
is measured against.
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

# The installed package, not the source folder beside this script (which lacks the extension).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import ringfile  # noqa: E402

SMALL = 64
LARGE = 64 * 1024
BATCH = 256


def cores():
    """The two cores to pin to (sender, receiver), or None where only one is usable."""
    usable = sorted(os.sched_getaffinity(0))
    return (usable[-2], usable[-1]) if len(usable) >= 2 else None


def pin(core):
    if core is not None:
        os.sched_setaffinity(0, {core})


# --- receivers (run in the spawned process) ------------------------------------------------


def receive_ring(path, size, how, core, ready, results):
    pin(core)
    count = 0
    consumer = ringfile.Ring.open(path).consumer()
    ready.set()
    if how == "recv":
        for msg in consumer:
            assert len(msg) == size
            count += 1
    elif how == "recv_batch":
        while True:
            batch = consumer.recv_batch(1024)
            if not batch:
                break
            for msg in batch:
                assert len(msg) == size
            count += len(batch)
    elif how == "recv_view":
        while True:
            view = consumer.recv_view()
            if view is None:
                break
            with view as data:
                # Reads the message in place: its length and last byte.
                assert len(data) == size and data[-1] == 0x5A
            count += 1
    else:
        raise ValueError(how)
    results.put((count, time.monotonic_ns()))


def receive_queue(queue, n, size, core, ready, results):
    pin(core)
    ready.set()
    for _ in range(n):
        assert len(queue.get()) == size
    results.put((n, time.monotonic_ns()))


def receive_pipe(conn, n, size, core, ready, results):
    pin(core)
    ready.set()
    for _ in range(n):
        assert len(conn.recv_bytes()) == size
    results.put((n, time.monotonic_ns()))


# --- senders (this process) ----------------------------------------------------------------


def run_pair(ctx, target, args, send, n, core_pair):
    """Starts the receiver, waits until it is ready, sends, and returns messages/s."""
    ready, results = ctx.Event(), ctx.Queue()
    sender_core, receiver_core = core_pair or (None, None)
    child = ctx.Process(target=target, args=(*args, receiver_core, ready, results))
    child.start()
    if not ready.wait(30):
        child.kill()
        sys.exit("bench: the receiver did not start within 30 s")
    pin(sender_core)
    start = time.monotonic_ns()
    send()
    count, end = results.get(timeout=120)
    child.join()
    if count != n:
        sys.exit(f"bench: the receiver got {count} of {n} messages")
    return n / ((end - start) / 1e9)


def ring_row(ctx, size, n, how, batched, core_pair):
    payload = b"\x5a" * size
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ring")
        ring = ringfile.Ring.create(path, capacity="1MiB")

        def send():
            with ring.producer() as producer:
                if batched:
                    batch = [payload] * BATCH
                    for _ in range(n // BATCH):
                        producer.send_batch(batch)
                else:
                    for _ in range(n):
                        producer.send(payload)

        return run_pair(ctx, receive_ring, (path, size, how), send, n, core_pair)


def queue_row(ctx, size, n, core_pair):
    payload = b"\x5a" * size
    queue = ctx.Queue()

    def send():
        for _ in range(n):
            queue.put(payload)

    return run_pair(ctx, receive_queue, (queue, n, size), send, n, core_pair)


def pipe_row(ctx, size, n, core_pair):
    payload = b"\x5a" * size
    receiver, sender = ctx.Pipe(duplex=False)

    def send():
        for _ in range(n):
            sender.send_bytes(payload)
        sender.close()

    return run_pair(ctx, receive_pipe, (receiver, n, size), send, n, core_pair)


def copy_row(size, n, core_pair):
    """A bare memoryview copy of `size` bytes into a preallocated buffer, n times."""
    pin(core_pair[0] if core_pair else None)
    source = memoryview(b"\x5a" * size)
    target = memoryview(bytearray(size))
    start = time.monotonic_ns()
    for _ in range(n):
        target[:] = source
    return n / ((time.monotonic_ns() - start) / 1e9)


def rows(quick):
    """(label, size, run(ctx, core_pair) -> msg/s). Counts give each run about 0.2–1 s."""
    k = 10 if quick else 1
    return [
        ("multiprocessing.Queue", SMALL, lambda c, p: queue_row(c, SMALL, 100_000 // k, p)),
        ("multiprocessing Pipe (send_bytes)", SMALL, lambda c, p: pipe_row(c, SMALL, 200_000 // k, p)),
        ("ringfile send / recv", SMALL, lambda c, p: ring_row(c, SMALL, 500_000 // k, "recv", False, p)),
        (
            f"ringfile send_batch({BATCH}) / recv_batch",
            SMALL,
            lambda c, p: ring_row(c, SMALL, 2_048_000 // k, "recv_batch", True, p),
        ),
        ("ringfile send / recv_view", SMALL, lambda c, p: ring_row(c, SMALL, 500_000 // k, "recv_view", False, p)),
        ("bare memoryview copy (one process)", LARGE, lambda c, p: copy_row(LARGE, 200_000 // k, p)),
        ("multiprocessing.Queue", LARGE, lambda c, p: queue_row(c, LARGE, 20_000 // k, p)),
        ("multiprocessing Pipe (send_bytes)", LARGE, lambda c, p: pipe_row(c, LARGE, 40_000 // k, p)),
        ("ringfile send / recv", LARGE, lambda c, p: ring_row(c, LARGE, 100_000 // k, "recv", False, p)),
        ("ringfile send / recv_view", LARGE, lambda c, p: ring_row(c, LARGE, 100_000 // k, "recv_view", False, p)),
    ]


def fmt_rate(r):
    return f"{r / 1e6:.2f} M" if r >= 1e6 else f"{r / 1e3:.0f} k"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round (smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; 1 with --quick)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    ctx = multiprocessing.get_context("spawn")
    core_pair = cores()
    table = rows(args.quick)
    samples = [[] for _ in table]
    for r in range(rounds):
        for i, (label, size, run) in enumerate(table):
            samples[i].append(run(ctx, core_pair))
        print(f"round {r + 1} of {rounds} done", file=sys.stderr)
    medians = [statistics.median(s) for s in samples]

    def baseline(size, label):
        return next(m for (l, s, _), m in zip(table, medians) if s == size and l == label)

    pinned = f"sender on core {core_pair[0]}, receiver on core {core_pair[1]}" if core_pair else "not pinned"
    print(
        f"Python {sys.version.split()[0]}, {rounds} interleaved round(s), median (spread min–max), "
        f"{pinned}; ringfile rings of 1 MiB, messages/s.\n"
    )
    print("| size | path | messages/s | spread | GB/s | ÷ Queue | ÷ memoryview copy |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for (label, size, _), s, m in zip(table, samples, medians):
        queue = baseline(size, "multiprocessing.Queue")
        copy = f"{m / baseline(LARGE, 'bare memoryview copy (one process)'):.2f}" if size == LARGE else ""
        spread = f"{fmt_rate(min(s))}–{fmt_rate(max(s))}"
        gbps = m * size / 1e9
        print(
            f"| {size if size < 1024 else str(size // 1024) + ' Ki'}B | {label} | {fmt_rate(m)} | {spread} "
            f"| {gbps:.2f} | {m / queue:.1f}× | {copy} |"
        )


if __name__ == "__main__":
    main()
