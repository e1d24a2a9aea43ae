"""The Python package through the built extension, against the Rust programs and across
real processes."""

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import ringfile
import generated

HERE = os.path.dirname(os.path.abspath(__file__))


def python(code, *args, **kwargs):
    """Starts a Python process running `code` (with this directory on its path)."""
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        # Not the checkout's python/ (whose ringfile/ has no built extension).
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_python_producer_to_the_rust_consumer_verifying_generated_messages(programs, ring_path):
    count, size = 20_000, 64
    ring = ringfile.Ring.create(ring_path, capacity="64KiB")
    consumer = subprocess.Popen(
        [programs["consumer"], "--verify", "--json", "--output", os.devnull, ring_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stream = random.randrange(1, 1 << 32)
    with ring.producer() as producer:
        for seq in range(0, count, 100):
            producer.send_batch(generated.message(stream, s, size) for s in range(seq, seq + 100))
    out, err = consumer.communicate(timeout=60)
    assert consumer.returncode == 0, err
    summary = json.loads(err.strip().splitlines()[-1])
    assert (summary["messages"], summary["errors"]) == (count, 0), summary


def test_rust_generated_messages_to_a_python_consumer_checking_each(programs, ring_path):
    count = 20_000
    ring = ringfile.Ring.create(ring_path, capacity="64KiB")
    consumer = ring.consumer()
    producer = subprocess.Popen(
        [programs["producer"], "--gen", str(count), "--size", "100", ring_path],
        stderr=subprocess.PIPE,
    )
    seq = 0
    for msg in consumer:
        generated.check(msg, seq)
        seq += 1
    assert seq == count
    assert producer.wait(timeout=60) == 0


def test_python_to_python_across_processes_every_kind_of_bytes(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="1MiB")
    reader = python(
        """
        import sys, ringfile, hashlib
        ring = ringfile.Ring.open(sys.argv[1])
        consumer = ring.consumer()
        n, digest = 0, hashlib.sha256()
        while True:
            batch = consumer.recv_batch(100)
            if not batch:
                break
            for msg in batch:
                digest.update(len(msg).to_bytes(4, "little") + msg)
                n += 1
        print(n, digest.hexdigest())
        """,
        ring_path,
    )
    import hashlib

    digest, n = hashlib.sha256(), 0
    with ring.producer() as producer:
        for i in range(3000):
            kind = i % 4
            data = os.urandom(i % 700)
            if kind == 1:
                data = bytearray(data)
            elif kind == 2:
                data = memoryview(data)
            elif kind == 3:
                data = np.frombuffer(data[: len(data) // 8 * 8], dtype=np.uint64)
            payload = bytes(memoryview(data).cast("B"))
            digest.update(len(payload).to_bytes(4, "little") + payload)
            n += 1
            producer.send(data)
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert out.split() == [str(n), digest.hexdigest()]


def test_a_killed_python_consumer_restarted_loses_nothing(ring_path):
    count = 50_000
    ring = ringfile.Ring.create(ring_path, capacity="64KiB", consumers=2)
    code = """
        import sys, ringfile
        consumer = ringfile.Ring.open(sys.argv[1]).consumer("archiver")
        print("ready", flush=True)
        for msg in consumer:
            print(int.from_bytes(msg[:8], "little"), flush=True)
        """
    seen = []

    def start():
        child = python(code, ring_path)
        assert child.stdout.readline().strip() == "ready"
        # Read as it prints, so that a full pipe never stops it.
        reader = threading.Thread(
            target=lambda: seen.extend(int(line) for line in child.stdout), daemon=True
        )
        reader.start()
        return child, reader

    first, first_reader = start()
    producer = ring.producer()
    for seq in range(count):
        producer.send(seq.to_bytes(8, "little") + b"x" * 56)
        if seq == count // 3:
            # Killed mid-stream, with messages in flight; the lines it printed are what it
            # received (a message printed but not yet released may come again).
            first.send_signal(signal.SIGKILL)
            first.wait()
            first_reader.join()
            second, second_reader = start()
    producer.close()
    assert second.wait(timeout=120) == 0, second.stderr.read()
    second_reader.join()
    # In order, nothing lost; only what was delivered and not yet released may repeat.
    resumed = [s for i, s in enumerate(seen) if i == 0 or s > seen[i - 1]]
    assert resumed == list(range(count))


def test_ctrl_c_interrupts_a_blocking_recv(ring_path):
    ringfile.Ring.create(ring_path, capacity="64KiB")
    child = python(
        """
        import sys, time, ringfile
        consumer = ringfile.Ring.open(sys.argv[1]).consumer()
        print("waiting", flush=True)
        start = time.monotonic()
        try:
            consumer.recv()
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - start, flush=True)
        """,
        ring_path,
    )
    assert child.stdout.readline().strip() == "waiting"
    time.sleep(0.3)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=10)
    assert out.startswith("interrupted"), (out, err)
    # Checked loosely (a test is no benchmark): the wait answers the signal, it does not
    # sleep through it.
    assert time.monotonic() - sent < 5


def test_exceptions_name_what_and_why(ring_path, tmp_path):
    with pytest.raises(ringfile.RingNotFound) as e:
        ringfile.Ring.open(str(tmp_path / "missing"))
    assert e.value.path.endswith("missing") and isinstance(e.value, FileNotFoundError)
    ring = ringfile.Ring.create(ring_path, capacity=4096)
    with pytest.raises(ringfile.RingExists):
        ringfile.Ring.create(ring_path)
    with pytest.raises(ringfile.InvalidArgument):
        ringfile.Ring.create(str(tmp_path / "odd"), capacity=1000)
    with pytest.raises(ValueError):
        ringfile.Ring.create(str(tmp_path / "bad"), capacity="lots")
    bad = tmp_path / "notaring"
    bad.write_bytes(b"\0" * 8192)
    with pytest.raises(ringfile.BadRingFile) as e:
        ringfile.Ring.open(str(bad))
    assert e.value.path == str(bad)
    producer = ring.producer()
    with pytest.raises(ringfile.RoleHeld):
        ringfile.Ring.open(ring_path).producer()
    with pytest.raises(ringfile.InvalidArgument):
        producer.send(b"x" * (ring.max_message_len + 1))
    consumer = ring.consumer()
    with pytest.raises(ringfile.RingEmpty):
        consumer.try_recv()
    with pytest.raises(ringfile.Timeout):
        consumer.recv(timeout=0.05)
    while True:
        try:
            producer.try_send(b"y" * 100)
        except ringfile.RingFull:
            break
    producer.abort("disk on fire")
    with pytest.raises(ringfile.Closed):
        producer.send(b"z")
    with pytest.raises(ringfile.StreamAborted) as e:
        while True:
            consumer.recv()
    assert e.value.reason == "disk on fire"


def test_a_producer_that_dies_is_reported(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="64KiB")
    consumer = ring.consumer()
    child = python(
        """
        import os, sys, ringfile
        producer = ringfile.Ring.open(sys.argv[1]).producer()
        producer.send(b"last words")
        os._exit(0)
        """,
        ring_path,
    )
    child.wait()
    assert consumer.recv(timeout=10) == b"last words"
    with pytest.raises(ringfile.ProducerDied) as e:
        consumer.recv(timeout=10)
    assert e.value.pid == child.pid


def test_named_consumers_each_get_every_message(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="64KiB", consumers=3)
    a, b = ring.consumer("a"), ring.consumer("b")
    with ring.producer() as producer:
        producer.send_batch([b"one", b"two", b"three"])
    assert list(a) == [b"one", b"two", b"three"]
    assert b.recv_batch(2) == [b"one", b"two"]
    assert b.recv_batch(2) == [b"three"]
    assert b.recv_batch(2) == []
    assert (a.name, b.name) == ("a", "b")


def test_a_producer_block_that_raises_aborts_the_stream(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="64KiB")
    consumer = ring.consumer()
    with pytest.raises(RuntimeError):
        with ring.producer() as producer:
            producer.send(b"before")
            raise RuntimeError("bad input")
    assert consumer.recv() == b"before"
    with pytest.raises(ringfile.StreamAborted) as e:
        consumer.recv()
    assert e.value.reason == "RuntimeError: bad input"


def mapping_of(path):
    """The (start, end) address ranges of this process's mappings of the file at `path`
    (found by inode: a ring made with O_TMPFILE is mapped under its first, unlinked name)."""
    inode = os.stat(path).st_ino
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(None, 5)
            if len(fields) >= 5 and int(fields[4]) == inode:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


def test_a_view_is_zero_copy_and_invalid_once_released(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="64KiB")
    producer, consumer = ring.producer(), ring.consumer()
    frame = np.arange(1000, dtype=np.float64)
    producer.send(frame)
    producer.send(b"next")
    ranges = mapping_of(ring_path)
    assert ranges, "the ring file is mapped"

    view = consumer.recv_view()
    with view as data:
        assert isinstance(data, memoryview) and data.readonly and len(data) == frame.nbytes
        array = np.frombuffer(data, dtype=np.float64)
        # In place: the array's bytes are the ring's, at the view's address, in the mapping.
        assert array.ctypes.data == view.address
        assert any(start <= view.address < view.address + len(view) <= end for start, end in ranges)
        assert np.array_equal(array, frame)
        with pytest.raises(TypeError):
            data[0] = 1  # read-only
        # The message is held: receiving again is refused, and so is releasing while the
        # array still reads it.
        with pytest.raises(ringfile.ViewOpen):
            consumer.recv(timeout=0)
        with pytest.raises(BufferError):
            view.release()
        assert np.array_equal(array, frame)  # still there, still the message
        del array
    assert view.released
    with pytest.raises(ValueError):
        data[0]  # the block's memoryview is released with the message
    with pytest.raises(BufferError):
        memoryview(view)
    # Released, the space went back and the next message comes.
    assert consumer.recv() == b"next"


def test_views_release_each_message_once_and_keep_nothing_back(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="4KiB")
    producer, consumer = ring.producer(), ring.consumer()
    # Far more than the ring holds: each view's release must really free its space.
    for i in range(2_000):
        producer.send(i.to_bytes(8, "little") * 8, timeout=5)
        if i % 2:
            with consumer.recv_view() as data:
                assert int.from_bytes(data[:8], "little") == i
        else:
            view = consumer.recv_view()
            assert view.tobytes()[:8] == i.to_bytes(8, "little")
            del view  # dropped unreleased: releases, as a Rust Message does
    producer.close()
    assert consumer.recv_view() is None and consumer.ended


def test_closing_a_consumer_with_a_view_open_leaves_the_message_to_the_next(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="64KiB", consumers=2)
    producer = ring.producer()
    producer.send(b"held")
    consumer = ring.consumer("reader")
    view = consumer.recv_view()
    held = memoryview(view)
    with pytest.raises(BufferError):
        consumer.close()  # the memory must outlive the exported memoryview
    held.release()
    consumer.close()
    assert view.released
    with pytest.raises(BufferError):
        memoryview(view)
    # Not released: the name resumes at it.
    assert ring.consumer("reader").recv(timeout=5) == b"held"


def test_a_lossy_consumer_refuses_views(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="64KiB", consumers=2)
    ring.producer().send(b"x")
    with pytest.raises(ringfile.InvalidArgument, match="lossy"):
        ring.consumer("fast", lossy=True).recv_view()


def test_roles_inherited_through_fork_raise_in_the_child(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="64KiB")
    producer, consumer = ring.producer(), ring.consumer()
    producer.send(b"viewed")
    producer.send(b"before")
    view = consumer.recv_view()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        # The child: its inherited roles refuse (they are the parent's), and so does the
        # view it inherited; a role it takes itself is refused while the parent holds it.
        outcome = []
        for attempt in (
            lambda: producer.send(b"child"),
            lambda: consumer.recv(timeout=0),
            view.release,
            producer.close,
        ):
            try:
                attempt()
                outcome.append("ok")
            except ringfile.Inherited:
                outcome.append("Inherited")
            except Exception as e:  # noqa: BLE001 - reported to the parent
                outcome.append(type(e).__name__)
        try:
            ring.producer()
            outcome.append("ok")
        except ringfile.RoleHeld:
            outcome.append("RoleHeld")
        except Exception as e:  # noqa: BLE001
            outcome.append(type(e).__name__)
        os.write(write, " ".join(outcome).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        said = pipe.read()
    os.waitpid(pid, 0)
    assert said == "Inherited Inherited Inherited Inherited RoleHeld"
    # The parent's roles are untouched: the child neither sent, consumed nor released.
    assert view.tobytes() == b"viewed"
    view.release()
    producer.send(b"after")
    producer.close()
    assert list(consumer) == [b"before", b"after"]


def threads_of_this_process():
    return len(os.listdir("/proc/self/task"))


def test_recv_async_across_processes_without_a_thread_per_ring(tmp_path):
    rings, count = 8, 2_000
    paths = [str(tmp_path / f"ring{i}") for i in range(rings)]
    consumers = [ringfile.Ring.create(p, capacity="4KiB").consumer() for p in paths]
    # A producer process per ring, each starting late, so that every task waits first.
    producers = [
        python(
            """
            import sys, time, ringfile
            time.sleep(0.5)
            with ringfile.Ring.open(sys.argv[1]).producer() as producer:
                for i in range(int(sys.argv[2])):
                    producer.send(i.to_bytes(8, "little"))
            """,
            path,
            str(count),
        )
        for path in paths
    ]
    threads_before = threads_of_this_process()
    most_threads = 0

    async def read(consumer, batched):
        nonlocal most_threads
        got = 0
        while True:
            if batched:
                messages = await consumer.recv_batch_async(max=100, timeout=60)
                if not messages:
                    return got
            else:
                message = await consumer.recv_async(timeout=60)
                if message is None:
                    return got
                messages = [message]
            for message in messages:
                assert int.from_bytes(message, "little") == got
                got += 1
            most_threads = max(most_threads, threads_of_this_process())

    async def main():
        return await asyncio.gather(*(read(c, i % 2 == 1) for i, c in enumerate(consumers)))

    assert asyncio.run(main()) == [count] * rings
    for producer in producers:
        assert producer.wait(timeout=60) == 0, producer.stderr.read()
    # One watcher thread for all eight rings, not one each.
    assert most_threads <= threads_before + 2, (threads_before, most_threads)


def test_recv_async_one_task_at_a_time_and_the_errors_of_recv(ring_path):
    ring = ringfile.Ring.create(ring_path, capacity="64KiB")
    producer, consumer = ring.producer(), ring.consumer()

    async def main():
        first = asyncio.ensure_future(consumer.recv_async())
        await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError, match="one task at a time"):
            await consumer.recv_async(timeout=1)
        producer.send(b"woken")
        assert await first == b"woken"
        with pytest.raises(ringfile.Timeout):
            await consumer.recv_async(timeout=0.05)
        # Cancelled while waiting: nothing received, the next receive gets the message.
        waiting = asyncio.ensure_future(consumer.recv_async())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        producer.send(b"kept")
        assert await consumer.recv_async(timeout=5) == b"kept"
        producer.abort("bad input")
        with pytest.raises(ringfile.StreamAborted) as aborted:
            await consumer.recv_async(timeout=5)
        assert aborted.value.reason == "bad input"

    asyncio.run(main())
