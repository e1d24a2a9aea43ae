//! The async API (feature `tokio`) within one process: both runtimes, waiting for data and
//! for space, cancellation at every await point, timeouts, the end of the stream. The same
//! API against the real programs, across processes, is tested in
//! `consumer/tests/async_peers.rs`.
#![cfg(feature = "async")]

#[cfg(target_arch = "x86_64")]
#[path = "support/seccomp.rs"]
mod seccomp;

use ringfile::{Error, Ring};
use std::time::Duration;
use tokio::time::timeout;

/// Generous bound on a whole test, so that a lost wake-up fails instead of hanging CI.
const PATIENCE: Duration = Duration::from_secs(60);

fn message(seq: u64) -> Vec<u8> {
    let len = 8 + (seq % 57) as usize;
    let mut m = seq.to_le_bytes().to_vec();
    m.resize(len, seq as u8);
    m
}

fn seq_of(msg: &[u8]) -> u64 {
    assert_eq!(
        msg,
        &message(u64::from_le_bytes(msg[..8].try_into().unwrap()))[..]
    );
    u64::from_le_bytes(msg[..8].try_into().unwrap())
}

/// A producer task and a consumer task on a small ring, so that each waits for the other
/// thousands of times; every message arrives once, in order.
async fn stream_through_small_ring(count: u64) {
    let ring = Ring::memfd(1024).unwrap();
    let (mut producer, mut consumer) = (ring.producer().unwrap(), ring.consumer().unwrap());
    let sender = tokio::spawn(async move {
        for seq in 0..count {
            if seq % 3 == 0 {
                let msg = message(seq);
                let mut claim = producer.claim_async(msg.len()).await.unwrap();
                claim.copy_from_slice(&msg);
                claim.commit();
            } else {
                producer.send_async(&message(seq)).await.unwrap();
            }
        }
        producer.close().unwrap();
    });
    let mut next = 0;
    while let Some(msg) = consumer.recv_async().await.unwrap() {
        assert_eq!(seq_of(&msg), next);
        next += 1;
    }
    assert_eq!(next, count);
    sender.await.unwrap();
}

#[test]
fn tasks_stream_through_a_small_ring_on_the_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { timeout(PATIENCE, stream_through_small_ring(50_000)).await })
        .expect("lost wake-up");
}

#[test]
fn tasks_stream_through_a_small_ring_on_the_multi_threaded_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { timeout(PATIENCE, stream_through_small_ring(50_000)).await })
        .expect("lost wake-up");
}

/// A thread that receives from `ring` with the blocking API until the end of the stream,
/// checking that messages arrive in order; it returns how many arrived.
fn blocking_reader(ring: &Ring) -> std::thread::JoinHandle<u64> {
    let mut consumer = ring.consumer().unwrap();
    std::thread::spawn(move || {
        let mut next = 0;
        while let Some(msg) = consumer.recv().unwrap() {
            assert_eq!(seq_of(&msg), next);
            next += 1;
        }
        next
    })
}

/// A batch that mixes blocking and async sends, and claims, on a small ring drained by a
/// blocking consumer thread: each kind of send waits for room many times, and every message
/// arrives once, in order (the batch's own view of the free space is never stale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_mixes_blocking_async_and_claimed_sends() {
    const COUNT: u64 = 20_000;
    let ring = Ring::memfd(1024).unwrap();
    let blocking = blocking_reader(&ring);
    let mut producer = ring.producer().unwrap();
    timeout(PATIENCE, async {
        let mut seq = 0;
        while seq < COUNT {
            let mut batch = producer.batch();
            for _ in 0..10 {
                let msg = message(seq);
                match seq % 3 {
                    0 => batch.send_async(&msg).await.unwrap(),
                    1 => batch.send(&msg).unwrap(),
                    _ => {
                        let mut claim = batch.claim(msg.len()).unwrap();
                        claim.copy_from_slice(&msg);
                        claim.commit();
                    }
                }
                seq += 1;
            }
        }
    })
    .await
    .expect("lost wake-up");
    producer.close().unwrap();
    assert_eq!(blocking.join().unwrap(), COUNT);
}

/// An async consumer fed by a blocking producer thread, and an async producer read by a
/// blocking consumer thread: the two kinds of waiter wake each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_and_blocking_sides_wake_each_other() {
    let ring = Ring::memfd(1024).unwrap();
    let mut producer = ring.producer().unwrap();
    let blocking = std::thread::spawn(move || {
        for seq in 0..20_000 {
            producer.send(&message(seq)).unwrap();
        }
        producer.close().unwrap();
    });
    let mut consumer = ring.consumer().unwrap();
    let mut next = 0;
    timeout(PATIENCE, async {
        while let Some(msg) = consumer.recv_async().await.unwrap() {
            assert_eq!(seq_of(&msg), next);
            next += 1;
        }
    })
    .await
    .expect("lost wake-up");
    assert_eq!(next, 20_000);
    blocking.join().unwrap();
    drop(consumer);

    let ring = Ring::memfd(1024).unwrap();
    let blocking = blocking_reader(&ring);
    let mut producer = ring.producer().unwrap();
    timeout(PATIENCE, async {
        for seq in 0..20_000 {
            producer.send_async(&message(seq)).await.unwrap();
        }
    })
    .await
    .expect("lost wake-up");
    producer.close().unwrap();
    assert_eq!(blocking.join().unwrap(), 20_000);
}

/// Futures dropped while waiting (timeouts of zero to a few microseconds, so most of them
/// are) lose and duplicate nothing, on either side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waits_lose_and_duplicate_nothing() {
    const COUNT: u64 = 20_000;
    let ring = Ring::memfd(512).unwrap();
    let (mut producer, mut consumer) = (ring.producer().unwrap(), ring.consumer().unwrap());
    let sender = tokio::spawn(async move {
        let mut cancelled = 0u64;
        let mut seq = 0;
        while seq < COUNT {
            let msg = message(seq);
            let sent = tokio::select! {
                biased;
                sent = producer.send_async(&msg) => Some(sent),
                () = tokio::task::yield_now() => None,
            };
            match sent {
                Some(sent) => {
                    sent.unwrap();
                    seq += 1;
                }
                None => cancelled += 1, // not sent: send the same message again
            }
        }
        producer.close().unwrap();
        cancelled
    });
    let mut next = 0;
    let mut cancelled = 0u64;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "lost wake-up");
        // Alternately a timeout (tokio rounds it up to a millisecond) and a race against a
        // task yield, which cancels the receive whenever the ring is empty when it is polled.
        let received = if next % 2 == 0 {
            timeout(Duration::from_micros(1), consumer.recv_async())
                .await
                .ok()
        } else {
            tokio::select! {
                biased;
                received = consumer.recv_async() => Some(received),
                () = tokio::task::yield_now() => None,
            }
        };
        match received {
            Some(Ok(Some(msg))) => {
                assert_eq!(seq_of(&msg), next, "lost or duplicated");
                next += 1;
            }
            Some(Ok(None)) => break,
            Some(Err(e)) => panic!("{e}"),
            None => cancelled += 1,
        }
    }
    assert_eq!(next, COUNT);
    let sender_cancelled = sender.await.unwrap();
    eprintln!("cancelled waits: consumer {cancelled}, producer {sender_cancelled}");
}

/// A wait cancelled on an empty ring leaves its registration behind; the next receive takes
/// it over and gets the message exactly once. Also with `select!`.
#[tokio::test(flavor = "current_thread")]
async fn a_receive_cancelled_on_an_empty_ring_gets_the_message_next_time() {
    let ring = Ring::memfd(4096).unwrap();
    let (mut producer, mut consumer) = (ring.producer().unwrap(), ring.consumer().unwrap());
    assert!(timeout(Duration::ZERO, consumer.recv_async())
        .await
        .is_err());
    tokio::select! {
        _ = consumer.recv_async() => panic!("nothing was sent"),
        _ = tokio::time::sleep(Duration::from_millis(5)) => {}
    }
    producer.send(b"one").unwrap();
    producer.close().unwrap();
    assert_eq!(&*consumer.recv_async().await.unwrap().unwrap(), b"one");
    assert!(consumer.recv_async().await.unwrap().is_none());
}

/// `send_async` on a full ring with no consumer waits (and can be timed out); a message too
/// large fails at once; `recv_batch_async` and the stream see the same messages.
#[tokio::test(flavor = "current_thread")]
async fn full_ring_large_message_batches_and_streams() {
    let ring = Ring::memfd(256).unwrap();
    let mut producer = ring.producer().unwrap();
    let max = ring.max_message_len();
    assert!(matches!(
        producer.send_async(&vec![0; max + 1]).await,
        Err(Error::TooLarge { .. })
    ));
    let mut sent = 0u64;
    while producer.try_send(&message(sent)).is_ok() {
        sent += 1;
    }
    assert!(timeout(
        Duration::from_millis(20),
        producer.send_async(&message(sent))
    )
    .await
    .is_err());
    producer.close().unwrap();

    let mut consumer = ring.consumer().unwrap();
    let mut batch = consumer.recv_batch_async().await.unwrap();
    let first = seq_of(batch.next().unwrap().unwrap());
    assert_eq!(first, 0);
    batch.unread();
    let mut stream = consumer.stream();
    let mut got = 0;
    while let Some(msg) = next(&mut stream).await {
        assert_eq!(seq_of(&msg.unwrap()), got);
        got += 1;
    }
    assert_eq!(got, sent);
}

/// A consumer awaiting an empty ring whose producer went away without closing learns it, as
/// a blocking one does.
#[tokio::test(flavor = "current_thread")]
async fn awaiting_a_producer_that_left_without_closing_ends_in_producer_died() {
    let ring = Ring::memfd(4096).unwrap();
    let mut consumer = ring.consumer().unwrap();
    let mut producer = ring.producer().unwrap();
    producer.send(b"last").unwrap();
    producer.abandon();
    assert_eq!(&*consumer.recv_async().await.unwrap().unwrap(), b"last");
    let err = timeout(PATIENCE, consumer.recv_async())
        .await
        .expect("never noticed")
        .unwrap_err();
    assert!(matches!(err, Error::ProducerDied { .. }), "{err}");
}

async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}

/// Where the kernel has no `futex_waitv` (before Linux 5.16) or a seccomp filter forbids it,
/// the watcher falls back to checking the words it watches in short naps: everything still
/// arrives, no wake-up is lost. Run in a helper process (this test binary again) whose
/// `futex_waitv` calls fail with `ENOSYS`, as on an old kernel.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_futex_waitv_the_watcher_falls_back_and_loses_nothing() {
    const HELPER: &str = "RINGFILE_TEST_NO_FUTEX_WAITV";
    if std::env::var_os(HELPER).is_some() {
        // The helper: prove the call is really gone, then stream with waits on both sides.
        // SAFETY: futex_waitv with no futexes only returns an error; nothing is accessed.
        let rc = unsafe { libc::syscall(libc::SYS_futex_waitv, 0usize, 0u32, 0u32, 0usize, 0) };
        assert_eq!(rc, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ENOSYS)
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { timeout(PATIENCE, stream_through_small_ring(5_000)).await })
            .expect("lost wake-up");
        return;
    }
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "without_futex_waitv_the_watcher_falls_back_and_loses_nothing",
        "--nocapture",
    ])
    .env(HELPER, "1");
    seccomp::deny_syscall(&mut cmd, libc::SYS_futex_waitv, None, libc::ENOSYS);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}
