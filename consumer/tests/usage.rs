//! What a shell user meets: starting order, capacity mismatches, options that would do
//! nothing, short usage errors, `--json` on every exit, errors printed once, permissions,
//! and what a waiting program says. Each test drives the real binaries.

mod common;
#[path = "../../ring/tests/support/pty.rs"]
mod pty;
use common::*;
use pty::Pty;
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::Duration;

fn signal(child: &Child, sig: i32) {
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn run(cmd: std::process::Command, what: &str) -> std::process::Output {
    wait(spawn(cmd), what)
}

/// The non-empty lines of stderr.
fn stderr_lines(out: &std::process::Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_consumer_without_capacity_waits_for_the_producer_that_names_one() {
    let d = Dir::new();
    // The consumer first: it must not create a default-sized ring.
    let mut c = consumer();
    c.args(["--verify", "--json"]).arg(d.ring());
    let c = spawn(c);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!d.ring().exists(), "the waiting consumer created the ring");
    let mut p = producer();
    p.args(["--capacity", "64KiB", "--gen", "50000"])
        .arg(d.ring());
    let p = wait(spawn(p), "producer");
    assert!(p.status.success(), "{}", stderr(&p));
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(summary(&c)["messages"], 50000);
    assert_eq!(summary(&c)["errors"], 0);
    assert_eq!(ringfile::Ring::open(d.ring()).unwrap().capacity(), 64 << 10);

    // The other order works the same.
    let d = Dir::new();
    let mut p = producer();
    p.args(["--capacity", "64KiB", "--gen", "50000"])
        .arg(d.ring());
    let p = spawn(p);
    let c = verify_to_end(&d.ring());
    assert_eq!(c["messages"], 50000);
    assert!(wait(p, "producer").status.success());
}

#[test]
fn a_consumer_waiting_for_its_ring_stops_cleanly_on_a_signal_and_creates_nothing() {
    let d = Dir::new();
    let mut c = consumer();
    c.args(["--json"]).arg(d.ring());
    let c = spawn(c);
    std::thread::sleep(Duration::from_millis(200));
    signal(&c, libc::SIGTERM);
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(summary(&c)["ended"], "stopped by signal");
    assert!(!d.ring().exists());
}

#[test]
fn a_capacity_mismatch_names_both_sizes_and_what_to_do() {
    let d = Dir::new();
    let mut p = producer();
    p.args(["--gen", "10"]).arg(d.ring()); // the default, 1 MiB
    assert!(run(p, "producer").status.success());
    let mut c = consumer();
    c.args(["--capacity", "64KiB"]).arg(d.ring());
    let c = run(c, "consumer");
    assert_eq!(c.status.code(), Some(1));
    let lines = stderr_lines(&c);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("the existing ring has a capacity of 1MiB, not the 64KiB given with --capacity: omit --capacity to use it, or remove it"),
        "{lines:?}"
    );
}

#[test]
fn options_that_would_do_nothing_are_usage_errors() {
    let d = Dir::new();
    let cases: [(&[&str], bool, &str); 4] = [
        (
            &["--chunk", "4KiB"],
            true,
            "--chunk applies only to --framing raw",
        ),
        (
            &["--gen", "5", "--framing", "raw"],
            true,
            "--framing applies to input",
        ),
        (
            &["--gen", "5", "--chunk", "1KiB"],
            true,
            "--chunk applies to input",
        ),
        (
            &["--verify", "--framing", "len"],
            false,
            "--framing applies to messages written out",
        ),
    ];
    for (args, is_producer, expected) in cases {
        let mut cmd = if is_producer { producer() } else { consumer() };
        cmd.args(args).arg(d.ring());
        let out = run(cmd, "program");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 2, "{lines:?}"); // the error, then the usage line
        assert!(lines[0].contains(expected), "{args:?}: {lines:?}");
        assert!(lines[1].starts_with("Usage: "), "{lines:?}");
        assert!(!d.ring().exists(), "{args:?} created the ring");
    }
    // Given where it applies, --chunk works.
    let mut p = producer();
    p.args(["--framing", "raw", "--chunk", "4KiB", "--capacity", "64KiB"])
        .arg(d.ring());
    assert!(run(p, "producer").status.success());
}

#[test]
fn latency_on_a_stream_that_is_not_generated_is_an_error_that_consumes_nothing() {
    let d = Dir::new();
    let mut p = producer();
    p.args(["--input", "/dev/null"]).arg(d.ring()); // create, empty
    p.arg("--no-close");
    assert!(run(p, "producer").status.success());
    let mut p = producer();
    let mut p = p
        .arg(d.ring())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin
        .take()
        .unwrap()
        .write_all(b"hello\nworld\n")
        .unwrap();
    assert!(wait(p, "producer").status.success());

    let mut c = consumer();
    c.args(["--latency", "--json"]).arg(d.ring());
    let c = run(c, "consumer");
    assert_eq!(c.status.code(), Some(1), "{}", stderr(&c));
    assert!(
        stderr(&c).contains("--latency: message 1 is not a generated message"),
        "{}",
        stderr(&c)
    );
    assert_eq!(summary(&c)["exit"], 1);
    // Nothing was consumed: the next consumer gets both lines.
    let mut c = consumer();
    c.arg(d.ring());
    let c = run(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(String::from_utf8_lossy(&c.stdout), "hello\nworld\n");
}

#[test]
fn every_exit_under_json_ends_with_one_json_object() {
    let d = Dir::new();
    // A usage error from clap: short, and JSON last.
    let mut p = producer();
    p.args(["--json", "--bogus"]).arg(d.ring());
    let out = run(p, "producer");
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}"); // error, usage, JSON
    assert!(lines[0].starts_with("producer: unexpected argument '--bogus'"));
    assert_eq!(summary(&out)["exit"], 2);
    assert!(summary(&out)["error"].as_str().unwrap().contains("--bogus"));

    // A start-up failure.
    let mut c = consumer();
    c.args(["--json", "--capacity", "64KiB"])
        .arg(d.path("no-such-dir/ring"));
    let out = run(c, "consumer");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(summary(&out)["exit"], 1);

    // A bad capacity (a value parser's error).
    let mut c = consumer();
    c.args(["--json", "--capacity", "3000"]).arg(d.ring());
    let out = run(c, "consumer");
    assert_eq!(out.status.code(), Some(2));
    assert!(summary(&out)["error"]
        .as_str()
        .unwrap()
        .contains("power of two"));
}

#[test]
fn os_errors_are_printed_once() {
    let d = Dir::new();
    let mut c = consumer();
    c.args(["--capacity", "64KiB"])
        .arg(d.path("no-such-dir/ring"));
    let out = run(c, "consumer");
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

/// A ring this user may read but not write (another user's 0644 ring, or its own read-only
/// file): the error says both roles need read and write access, and how to grant it. Needs
/// root, to run the programs as another user (root itself may write anything).
#[test]
fn a_ring_without_write_access_is_explained() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can run the programs as another user");
        return;
    }
    let d = Dir::new();
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut p = producer();
    p.args(["--mode", "0644", "--gen", "10"]).arg(d.ring());
    assert!(run(p, "producer").status.success());
    let mut c = consumer();
    c.args(["--allow-other-owner", "--verify"])
        .arg(d.ring())
        .uid(65534)
        .gid(65534);
    let out = run(c, "consumer");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("Permission denied"), "{lines:?}");
    assert!(
        lines[0].contains("both the producer and the consumer need read and write access"),
        "{lines:?}"
    );
    assert!(lines[0].contains("--mode 0660"), "{lines:?}");

    // Its own ring, made read-only.
    std::os::unix::fs::chown(d.ring(), Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(d.ring(), std::fs::Permissions::from_mode(0o444)).unwrap();
    let mut c = consumer();
    c.arg("--verify").arg(d.ring()).uid(65534).gid(65534);
    let out = run(c, "consumer");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("need read and write access"),
        "{}",
        stderr(&out)
    );
}

fn on_terminal(program: std::process::Command, pty: &Pty) -> Child {
    let mut cmd = std::process::Command::new(program.get_program());
    // Without the --quiet the helpers add: the progress line is the point.
    cmd.args(program.get_args().filter(|a| *a != "--quiet"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(pty.slave.try_clone().unwrap());
    cmd.spawn().unwrap()
}

fn eventually(what: &str, pty: &Pty, expected: &str) {
    pty.wait_for(
        Duration::from_secs(6),
        &format!("{what} never showed {expected:?}"),
        |t| t.contains(expected),
    );
}

#[test]
fn on_a_terminal_a_waiting_program_says_what_it_waits_for() {
    let d = Dir::new();
    // A consumer with no ring yet says once that it waits for the producer to create it.
    let pty = Pty::open();
    let mut c = consumer();
    c.arg("--verify").arg(d.ring());
    let c = on_terminal(c, &pty);
    eventually("consumer", &pty, "waiting for a producer to create");
    // Once the ring exists and is empty, its progress line says it waits for messages.
    let mut p = producer();
    p.args(["--capacity", "64KiB", "--no-close", "--gen", "1"])
        .arg(d.ring());
    assert!(run(p, "producer").status.success());
    eventually("consumer", &pty, "waiting for messages");
    let text = pty.text();
    assert_eq!(
        text.matches("waiting for a producer to create").count(),
        1,
        "{text}"
    );
    signal(&c, libc::SIGTERM);
    wait(c, "consumer");

    // A producer facing a full ring and no consumer says it waits for one to attach.
    let d = Dir::new();
    let pty = Pty::open();
    let mut p = producer();
    p.args(["--capacity", "64KiB", "--gen", "1000000000"])
        .arg(d.ring());
    let p = on_terminal(p, &pty);
    eventually(
        "producer",
        &pty,
        "ring full, waiting for a consumer to attach",
    );
    signal(&p, libc::SIGTERM);
    let p = wait(p, "producer");
    assert!(p.status.success());
}

#[test]
fn a_stopping_producer_names_the_consumer_that_is_gone() {
    let d = Dir::new();
    let mut c = consumer();
    c.args(["--capacity", "64KiB", "--count", "1"])
        .arg(d.ring());
    let c = spawn(c);
    let consumer_pid = c.id();
    let mut p = producer();
    let mut p = p
        .args(["--capacity", "64KiB"])
        .arg(d.ring())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = p.stdin.take().unwrap();
    let lines: String = (0..40_000).map(|i| format!("{i}\n")).collect();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(lines.as_bytes());
        std::thread::sleep(Duration::from_secs(2));
    });
    assert!(wait(c, "consumer").status.success());
    std::thread::sleep(Duration::from_millis(300)); // the ring fills
    signal(&p, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(400));
    signal(&p, libc::SIGTERM);
    let out = wait(p, "producer");
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let expected = format!("no consumer is attached; the last one, pid {consumer_pid}, is gone");
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
}

#[test]
fn a_ring_in_a_directory_that_does_not_exist_is_an_error_at_once_in_every_program() {
    let d = Dir::new();
    let ring = d.path("no-such-dir").join("ring");
    // The consumer used to wait for ever for a ring no producer could create there.
    for mut program in [consumer(), producer()] {
        program.arg("--json").arg(&ring);
        let out = run(program, "a program on a missing directory");
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 2, "one line and the JSON object: {lines:?}");
        assert!(lines[0].contains(ring.to_str().unwrap()), "{}", lines[0]);
    }
    let out = run(
        {
            let mut c = consumer();
            c.arg(&ring);
            c
        },
        "consumer",
    );
    assert!(
        stderr(&out).contains("no such directory"),
        "{}",
        stderr(&out)
    );
    assert!(!d.path("no-such-dir").exists(), "created the directory");
}

#[test]
fn a_usage_error_creates_nothing_so_the_retry_with_a_larger_capacity_works() {
    let d = Dir::new();
    let ring = d.ring();
    let mut p = producer();
    p.args(["--capacity", "64KiB", "--gen", "1", "--size", "40000"])
        .arg(&ring);
    let out = run(p, "producer with too large a --size");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--size 40000"), "{}", stderr(&out));
    // It used to leave a 64 KiB ring behind, which the retry then refused.
    assert!(!ring.exists(), "a usage error created the ring");
    let mut p = producer();
    p.args(["--capacity", "128KiB", "--gen", "1", "--size", "40000"])
        .arg(&ring);
    let out = run(p, "producer with a large enough --capacity");
    assert!(out.status.success(), "{}", stderr(&out));
    // Without --capacity on a missing ring, the default capacity's limit applies, before
    // anything is created.
    let other = d.path("other");
    let mut p = producer();
    p.args(["--gen", "1", "--size", "900000"]).arg(&other);
    let out = run(p, "producer with --size beyond the default capacity");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!other.exists());
}
