//! The async API (ringfile's `tokio` feature) against the real programs, across processes:
//! an async consumer fed by the `producer` program, an async producer read by the `consumer`
//! program, cancelled waits in between, and a producer killed under an awaiting consumer.

mod common;

use common::*;
use ringfile::{Error, Ring};
use ringfile_cli::generated::{self, SequenceChecker};
use std::time::Duration;
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(120);

/// A program this test started, killed if the test fails before it ends (a producer left
/// waiting for room, or sending forever, must not outlive a failed test).
struct Started(Option<std::process::Child>);

impl Started {
    fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }
    fn kill(&mut self) {
        let _ = self.0.as_mut().unwrap().kill();
    }
    /// The child, to wait for (no longer killed on drop).
    fn child(mut self) -> std::process::Child {
        self.0.take().unwrap()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Receives (async) until the end of the stream, checking every generated message; returns
/// how many arrived and how many receives were cancelled on the way (`cancel_every` > 0:
/// every so many receives race a task yield, which cancels them if nothing is there yet).
async fn receive_all(ring: &Ring, cancel_every: u64) -> (u64, u64) {
    let mut consumer = ring.consumer().unwrap();
    let mut checker = SequenceChecker::default();
    let (mut count, mut cancelled, mut attempts) = (0u64, 0u64, 0u64);
    loop {
        attempts += 1;
        let received = if cancel_every > 0 && attempts.is_multiple_of(cancel_every) {
            tokio::select! {
                biased;
                received = consumer.recv_async() => Some(received),
                () = tokio::task::yield_now() => None,
            }
        } else {
            Some(consumer.recv_async().await)
        };
        match received {
            None => cancelled += 1,
            Some(Ok(Some(msg))) => {
                if let Some(problem) = checker.check(&msg) {
                    panic!("message {count}: {problem}");
                }
                count += 1;
            }
            Some(Ok(None)) => return (count, cancelled),
            Some(Err(e)) => panic!("{e}"),
        }
    }
}

#[test]
fn an_async_consumer_reads_every_message_the_producer_program_sends() {
    for flavor in ["current_thread", "multi_thread"] {
        let dir = Dir::new();
        // A small ring: the producer waits for space and the consumer for data, many times.
        let ring = Ring::create(dir.ring(), 16 * 1024).unwrap();
        let mut p = producer();
        p.args(["--gen", "200000", "--size", "64"]).arg(dir.ring());
        let p = Started(Some(spawn(p)));
        let rt = match flavor {
            "current_thread" => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        }
        .enable_all()
        .build()
        .unwrap();
        let (count, cancelled) = rt
            .block_on(async { timeout(PATIENCE, receive_all(&ring, 7)).await })
            .unwrap_or_else(|_| panic!("{flavor}: a wake-up was lost"));
        assert_eq!(count, 200_000, "{flavor}");
        eprintln!("{flavor}: {cancelled} receives cancelled");
        let p = wait(p.child(), "producer");
        assert!(p.status.success(), "{}", stderr(&p));
    }
}

#[test]
fn an_async_producer_feeds_the_consumer_program() {
    let dir = Dir::new();
    let ring = Ring::create(dir.ring(), 16 * 1024).unwrap();
    let mut c = consumer();
    c.args(["--verify", "--json"]).arg(dir.ring());
    let c = Started(Some(spawn(c)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sending = async {
        let mut producer = ring.producer().unwrap();
        let mut msg = vec![0u8; 64];
        let mut cancelled = 0u64;
        let mut seq = 0u64;
        while seq < 200_000 {
            generated::fill(&mut msg, 7, seq, ringfile::diagnostics::monotonic_ns());
            if seq.is_multiple_of(2) {
                // Half the sends race a task yield: a cancelled one sends nothing, and the
                // same message is sent again.
                tokio::select! {
                    biased;
                    sent = producer.send_async(&msg) => { sent.unwrap(); seq += 1; }
                    () = tokio::task::yield_now() => cancelled += 1,
                }
            } else {
                let mut claim = producer.claim_async(msg.len()).await.unwrap();
                claim.copy_from_slice(&msg);
                claim.commit();
                seq += 1;
            }
        }
        producer.close().unwrap();
        eprintln!("{cancelled} sends cancelled");
    };
    rt.block_on(async { timeout(PATIENCE, sending).await })
        .expect("a wake-up was lost");
    let c = wait(c.child(), "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    let s = summary(&c);
    assert_eq!(s["messages"], 200_000);
    assert_eq!(s["errors"], 0, "{s}");
}

#[test]
fn an_async_consumer_learns_that_the_producer_program_was_killed() {
    let dir = Dir::new();
    let ring = Ring::create(dir.ring(), 64 * 1024).unwrap();
    let mut p = producer();
    p.args(["--gen", "1000000000", "--size", "64", "--rate", "2000"])
        .arg(dir.ring());
    let mut p = Started(Some(spawn(p)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let receiving = async {
        let mut consumer = ring.consumer().unwrap();
        let mut count = 0u64;
        loop {
            match consumer.recv_async().await {
                Ok(Some(_)) => {
                    count += 1;
                    if count == 100 {
                        p.kill(); // SIGKILL: no chance to close the stream
                    }
                }
                Ok(None) => return Ok(count),
                Err(e) => return Err((e, count)),
            }
        }
    };
    let outcome = rt.block_on(async { timeout(PATIENCE, receiving).await });
    let pid = p.id();
    drop(p); // killed already; reaped here
    match outcome.expect("never noticed the producer died") {
        Err((Error::ProducerDied { pid: died, .. }, count)) => {
            assert_eq!(died, Some(pid));
            assert!(count >= 100);
        }
        other => panic!("expected ProducerDied, got {other:?}"),
    }
}
