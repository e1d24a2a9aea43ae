//! Roles across `fork(2)`: a child inherits the parent's `Producer` and `Consumer` (and the
//! descriptors that hold their locks), but the roles stay the parent's. Dropping them in the
//! child changes nothing, and the child does not keep the parent's roles taken after the
//! parent gives them up.
//!
//! One test in this file, so that the forking process runs as few threads as possible.

#[path = "support/pipe.rs"]
mod support_pipe;

use ringfile::{Error, Ring};
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn a_forked_child_neither_changes_nor_keeps_the_parents_roles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let ring = Ring::create(&path, 4096).unwrap();
    let mut producer = ring.producer().unwrap();
    let consumer = ring.consumer().unwrap();
    producer.send(b"before fork").unwrap();

    let (mut report_rx, mut report_tx) = support_pipe::pipe();
    let (mut exit_rx, mut exit_tx) = support_pipe::pipe();
    // SAFETY: the child only drops the inherited values, tries to take a role (which
    // allocates: glibc's malloc is usable in a forked child), writes one byte to a pipe,
    // waits for one and leaves with `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(exit_tx);
        drop(report_rx);
        // Inherited: dropping the producer must not touch the ring; the consumer is kept
        // (with its descriptor) for as long as the child lives.
        drop(producer);
        let _kept = consumer;
        let verdict = match Ring::open(&path).and_then(|r| r.producer()) {
            Err(Error::RoleTaken { .. }) => b'y', // the parent still holds it
            _ => b'n',
        };
        let _ = report_tx.write_all(&[verdict]);
        let mut byte = [0u8; 1];
        let _ = exit_rx.read(&mut byte); // live on until the parent is done
                                         // SAFETY: leaves the child at once, running no destructors or atexit handlers.
        unsafe { libc::_exit(0) };
    }
    drop(report_tx);
    drop(exit_rx);
    let mut verdict = [0u8; 1];
    report_rx.read_exact(&mut verdict).unwrap();
    assert_eq!(
        verdict[0], b'y',
        "the child could take the producer role from its parent"
    );

    // The child lives on, holding its copy of the consumer and its lock's descriptor. The parent's roles
    // must still be its own to give up: a new consumer can attach once it drops its own...
    drop(consumer);
    let mut consumer = ring
        .consumer()
        .expect("the child keeps the consumer role taken");
    // ...and the parent producer's death is seen although the child inherited its lock
    // (and dropped its copy of the producer, which must not have marked it detached).
    producer.abandon();
    assert_eq!(&*consumer.recv().unwrap().unwrap(), b"before fork");
    match consumer.recv_timeout(Duration::from_secs(10)) {
        Err(Error::ProducerDied { .. }) => {}
        other => panic!("the parent producer's death went unreported: {other:?}"),
    }

    exit_tx.write_all(b"x").unwrap();
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}
