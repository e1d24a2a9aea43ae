//! Async waits in a child created by `fork(2)` after the parent used them: the child
//! inherits the parent's list of watcher threads but not the threads, and must start its own
//! (else its waits would never be woken). One test in this file, so that the forking process
//! runs as few threads as possible.
#![cfg(feature = "async")]

#[path = "support/pipe.rs"]
mod support_pipe;

use ringfile::Ring;
use std::io::{Read, Write};
use std::time::Duration;

/// Waits (async) for one message that a thread sends after a pause, so that the wait is
/// really handed to a watcher; `true` if it arrived within 10 s.
fn awaited_message_arrives() -> bool {
    let ring = Ring::memfd(4096).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        producer.send(b"hello").unwrap();
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let arrived = rt.block_on(async {
        // The deadline first: a wait never woken must not pass because the deadline's own
        // wake-up polls it after the message came (as `tokio::time::timeout` would).
        tokio::select! {
            biased;
            () = tokio::time::sleep(Duration::from_secs(10)) => false,
            received = consumer.recv_async() => matches!(received, Ok(Some(_))),
        }
    });
    sender.join().unwrap();
    arrived
}

#[test]
fn a_forked_child_starts_its_own_watcher() {
    // The parent's watcher thread exists from here on.
    assert!(awaited_message_arrives());
    let (mut report_rx, mut report_tx) = support_pipe::pipe();
    // SAFETY: no other thread of this process holds a lock the child needs (the watcher
    // sleeps in the kernel holding none); the child runs a small program and leaves with
    // `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(report_rx);
        let verdict = if awaited_message_arrives() {
            b'y'
        } else {
            b'n'
        };
        let _ = report_tx.write_all(&[verdict]);
        // SAFETY: leaves the child at once, running no destructors or atexit handlers.
        unsafe { libc::_exit(0) };
    }
    drop(report_tx);
    let mut verdict = [0u8; 1];
    report_rx.read_exact(&mut verdict).unwrap();
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(verdict[0], b'y', "the child's async wait was never woken");
}
