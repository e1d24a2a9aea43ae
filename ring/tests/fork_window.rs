//! A role its owner drops is free at once, even while a forked child that has not run yet
//! shares the descriptor that holds its lock.
//!
//! The child here is made with the raw `clone` system call, which runs no `pthread_atfork`
//! handler: it stands for a child that `fork` created but that has not been scheduled yet
//! (or was stopped before its handler ran), whose copy of the lock's descriptor still
//! refers to the parent's open file description. Then the same with `fork(3)` itself, where
//! the parent usually runs on before the child is first scheduled. One test in this file, so
//! that the forking process runs as few threads as possible.

#[path = "support/pipe.rs"]
mod support_pipe;

use ringfile::{Error, Ring, Role};
use std::io::Write;
use std::os::fd::AsRawFd;

/// What each child here does: it closes its copy of `exit_tx`, waits for a byte on `exit_rx`
/// (or the end of the pipe, when the parent exits however it exits) and leaves, running
/// nothing else. Only async-signal-safe calls: safe in a child forked from many threads.
fn wait_then_exit(exit_rx: &std::fs::File, exit_tx: &std::fs::File) -> ! {
    let (fd, tx) = (exit_rx.as_raw_fd(), exit_tx.as_raw_fd());
    let mut byte = 0u8;
    // SAFETY: closes the child's copy of a descriptor it never uses, reads one byte into a
    // local; then leaves at once.
    unsafe {
        libc::close(tx);
        libc::read(fd, (&mut byte as *mut u8).cast(), 1);
        libc::_exit(0)
    }
}

/// Waits for our child `pid`, which must exit with status 0.
fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}

/// A child that shares every descriptor of ours and ran no atfork handler, then does
/// [`wait_then_exit`]. Returns its pid.
fn child_that_never_ran_its_fork_handler(
    exit_rx: &std::fs::File,
    exit_tx: &std::fs::File,
) -> libc::pid_t {
    // SAFETY: a plain fork (clone with only SIGCHLD, no new stack: the child continues on a
    // copy of ours). The child only runs `wait_then_exit`, which never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    assert!(pid >= 0, "clone failed");
    if pid == 0 {
        wait_then_exit(exit_rx, exit_tx);
    }
    pid as libc::pid_t
}

#[test]
fn a_dropped_role_is_free_at_once_while_a_child_shares_its_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let ring = Ring::create(&path, 4096).unwrap();
    let mut producer = ring.producer().unwrap();
    let consumer = ring.consumer().unwrap();
    producer.send(b"kept").unwrap();

    let (exit_rx, mut exit_tx) = support_pipe::pipe();
    let pid = child_that_never_ran_its_fork_handler(&exit_rx, &exit_tx);

    // The child holds copies of both roles' descriptors, still pointing at our open file
    // descriptions. Roles we still hold stay ours...
    match Ring::open(&path).unwrap().consumer() {
        Err(Error::RoleTaken {
            role: Role::Consumer,
            ..
        }) => {}
        other => panic!("a second consumer attached beside a live one: {other:?}"),
    }
    // ...and one we drop is free at once, for this process and for others.
    drop(consumer);
    let mut consumer = Ring::open(&path)
        .unwrap()
        .consumer()
        .expect("a dropped consumer role stayed taken while a forked child shared its lock");
    assert_eq!(&*consumer.recv().unwrap().unwrap(), b"kept");
    drop(consumer);
    producer.close().unwrap();
    let mut producer = Ring::open(&path)
        .unwrap()
        .producer()
        .expect("a dropped producer role stayed taken while a forked child shared its lock");
    producer.send(b"next").unwrap();

    exit_tx.write_all(b"x").unwrap();
    reap(pid);
    drop(producer);

    // The reproduction with a real fork: the parent drops its consumer at once and
    // takes the role again, before or after its child first runs (it used to fail 5 of 5).
    for round in 0..5 {
        let consumer = Ring::open(&path).unwrap().consumer().unwrap();
        let (exit_rx, mut exit_tx) = support_pipe::pipe();
        // SAFETY: the child runs the atfork handler (async-signal-safe), then only
        // `wait_then_exit`, which never returns into the test.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            wait_then_exit(&exit_rx, &exit_tx);
        }
        drop(consumer);
        let again = Ring::open(&path).unwrap().consumer();
        exit_tx.write_all(b"x").unwrap();
        reap(pid);
        assert!(
            again.is_ok(),
            "round {round}: a dropped consumer role stayed taken after fork: {:?}",
            again.err()
        );
    }
}
