//! A memfd ring handed to a program started with `Command` (`Ring::pass_to`), opened there
//! with `Ring::from_env`: across a real `exec`. The child is this test binary, run again
//! with `HANDOFF_CHILD` set to what it should do.

use ringfile::{Error, Ring};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Output};

const VAR: &str = "TEST_RING";

/// The child's side; does nothing in a normal test run.
#[test]
fn handoff_child() {
    let Ok(role) = std::env::var("HANDOFF_CHILD") else {
        return;
    };
    match role.as_str() {
        "consume" => {
            let ring = Ring::from_env(VAR).expect("open the ring passed to us");
            // The descriptor is owned once: a second open is refused, clearly.
            let again = Ring::from_env(VAR).unwrap_err();
            assert!(matches!(again, Error::BadHandoff { .. }), "{again:?}");
            assert!(again.to_string().contains("already opened"), "{again}");
            let mut consumer = ring.consumer().unwrap();
            let mut n = 0u32;
            while let Some(msg) = consumer.recv().unwrap() {
                assert_eq!(msg.value::<u32>().unwrap(), &n);
                n += 1;
            }
            println!("RECEIVED {n}");
        }
        // The variable names the number the ring had in the parent, but nothing was passed.
        "probe" => {
            let err = Ring::from_env(VAR).unwrap_err();
            println!("REFUSED {err}");
        }
        "unset" => {
            let err = Ring::from_env("NO_SUCH_RING_VARIABLE").unwrap_err();
            println!("REFUSED {err}");
        }
        other => panic!("unknown child role {other}"),
    }
}

fn child(role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "handoff_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HANDOFF_CHILD", role);
    command
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_memfd_ring_passed_to_a_command_is_read_by_the_program_it_runs() {
    let ring = Ring::memfd(4096).unwrap();
    let mut command = child("consume");
    ring.pass_to(&mut command, VAR).unwrap();
    let running = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The ring is dropped here; the command's duplicate keeps the descriptor alive.
    let mut producer = ring.producer().unwrap();
    drop(ring);
    for n in 0u32..10_000 {
        producer.send_value(&n).unwrap();
    }
    producer.close().unwrap();
    let out = stdout(&running.wait_with_output().unwrap());
    assert!(out.contains("RECEIVED 10000"), "{out}");
}

#[test]
fn no_other_program_inherits_a_ring() {
    let ring = Ring::memfd(4096).unwrap();
    let mut other = child("probe");
    // Tell it the number, but do not pass the ring: it must not be open there.
    other.env(VAR, ring.as_fd().as_raw_fd().to_string());
    let out = stdout(&other.output().unwrap());
    assert!(out.contains("REFUSED TEST_RING: descriptor"), "{out}");
    assert!(out.contains("is not open"), "{out}");

    let out = stdout(&child("unset").output().unwrap());
    assert!(
        out.contains("REFUSED NO_SUCH_RING_VARIABLE: not set"),
        "{out}"
    );
}
