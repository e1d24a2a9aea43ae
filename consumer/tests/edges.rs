//! End-to-end tests of the programs at every edge of a stream's life: failed output, signals
//! while blocked or mid-message, input errors, a ring truncated or sparse under them, killed
//! creators, odd options. Each test drives the real binaries and checks what the other side
//! learns: nothing is lost, and nobody waits forever.

mod common;
#[path = "../../ring/tests/support/full_ring.rs"]
mod full_ring;
use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

fn signal(child: &Child, sig: i32) {
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// A producer reading lines from a pipe this test writes to.
fn piped_producer(ring: &Path, args: &[&str]) -> Child {
    let mut p = producer();
    p.args(args)
        .arg(ring)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    p.spawn().unwrap()
}

/// Waits until the ring file exists and holds a complete header (its creator linked it).
fn wait_for_ring(ring: &Path) {
    for _ in 0..2000 {
        if ringfile::Ring::open(ring).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{} never appeared", ring.display());
}

#[test]
fn failed_output_releases_nothing_it_did_not_write() {
    let d = Dir::new();
    let mut p = producer();
    p.args(["--gen", "1000"]).arg(d.ring());
    assert!(wait(spawn(p), "producer").status.success());
    // Standard output is /dev/full: every flush fails with ENOSPC.
    let mut c = consumer();
    c.arg(d.ring())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let c = wait(c.spawn().unwrap(), "consumer");
    assert_eq!(c.status.code(), Some(1), "{}", stderr(&c));
    assert!(
        stderr(&c).contains("No space left on device"),
        "{}",
        stderr(&c)
    );
    // The next consumer gets every message and the end marker.
    let s = verify_to_end(&d.ring());
    assert_eq!(s["messages"], 1000);
    assert_eq!(s["errors"], 0);
}

#[test]
fn closed_pipe_on_output_releases_nothing_it_did_not_write() {
    let d = Dir::new();
    let mut p = producer();
    p.args(["--gen", "10000"]).arg(d.ring()); // fits the default 1 MiB ring
    assert!(wait(spawn(p), "producer").status.success());
    let mut c = consumer();
    c.args(["--framing", "len"]).arg(d.ring());
    let mut c = spawn(c);
    drop(c.stdout.take()); // the reader goes away: writes fail with EPIPE
    let c = wait(c, "consumer");
    assert_eq!(c.status.code(), Some(1), "{}", stderr(&c));
    let s = verify_to_end(&d.ring());
    assert_eq!(s["messages"], 10000);
}

#[test]
fn sigterm_to_a_producer_blocked_on_a_full_ring_closes_the_stream() {
    let d = Dir::new();
    let mut p = producer();
    p.args(["--capacity", "64KiB", "--json", "--gen", "1000000000"])
        .arg(d.ring());
    let p = spawn(p);
    wait_for_ring(&d.ring());
    std::thread::sleep(Duration::from_millis(300)); // long enough to fill 64 KiB and block
    signal(&p, libc::SIGTERM);
    let p = wait(p, "producer");
    assert!(p.status.success(), "{}", stderr(&p));
    assert_eq!(summary(&p)["ended"], "stopped by signal");
    let sent = summary(&p)["messages"].as_u64().unwrap();
    assert!(sent > 0);
    // The end marker fit without a consumer making room: a consumer sees a clean end.
    let s = verify_to_end(&d.ring());
    assert_eq!(s["messages"], sent);
    assert_eq!(s["ended"], "end of stream");
}

#[test]
fn producer_blocked_with_input_in_hand_says_so_and_a_second_signal_exits() {
    let d = Dir::new();
    let mut p = piped_producer(&d.ring(), &["--capacity", "64KiB", "--json"]);
    let mut stdin = p.stdin.take().unwrap();
    // Far more than fits: the producer blocks with complete lines in its buffer.
    let lines: String = (0..40_000).map(|i| format!("{i}\n")).collect();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(lines.as_bytes());
        std::thread::sleep(Duration::from_secs(3));
    });
    wait_for_ring(&d.ring());
    std::thread::sleep(Duration::from_millis(300));
    signal(&p, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(400));
    signal(&p, libc::SIGTERM);
    let out = wait(p, "producer");
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("waiting for a consumer to make room for the messages already read, then to close the stream (no consumer has attached yet)"),
        "{text}"
    );
    assert!(
        text.contains("producer: second signal: exiting at once without closing the stream"),
        "{text}"
    );
    // Even this exit ends with the JSON failure object.
    assert_eq!(summary(&out)["exit"], 1);
    // It left without closing: the consumer drains what was published and reports it.
    let mut c = consumer();
    c.arg(d.ring());
    let c = wait(spawn(c), "consumer");
    assert_eq!(c.status.code(), Some(1), "{}", stderr(&c));
    assert!(stderr(&c).contains("died without closing the stream"));
    let got = String::from_utf8(c.stdout).unwrap();
    let numbers: Vec<u64> = got.lines().map(|l| l.parse().unwrap()).collect();
    assert!(!numbers.is_empty());
    assert!(numbers.iter().enumerate().all(|(i, &n)| i as u64 == n));
}

#[test]
fn input_errors_end_the_stream_as_failed() {
    // A line longer than the ring's largest message (32760 bytes in 64 KiB).
    let d = Dir::new();
    let mut c = consumer();
    c.args(["--capacity", "64KiB"]).arg(d.ring());
    let c = spawn(c);
    let mut p = piped_producer(&d.ring(), &["--capacity", "64KiB"]);
    let mut input = b"a\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 40_000));
    input.push(b'\n');
    p.stdin.take().unwrap().write_all(&input).unwrap();
    let p = wait(p, "producer");
    assert_eq!(p.status.code(), Some(1));
    assert!(stderr(&p).contains("longer"), "{}", stderr(&p));
    let c = wait(c, "consumer");
    assert_eq!(c.status.code(), Some(1), "{}", stderr(&c));
    assert!(stderr(&c).contains("the producer stopped on an error: line at input byte 2"));
    assert_eq!(c.stdout, b"a\n");

    // A length-prefixed message cut short.
    let d = Dir::new();
    let mut c = consumer();
    c.args(["--framing", "len"]).arg(d.ring());
    let c = spawn(c);
    let mut p = piped_producer(&d.ring(), &["--framing", "len"]);
    p.stdin
        .take()
        .unwrap()
        .write_all(b"\x02\x00\x00\x00hi\x05\x00\x00\x00ab")
        .unwrap();
    let p = wait(p, "producer");
    assert_eq!(p.status.code(), Some(1));
    let c = wait(c, "consumer");
    assert_eq!(c.status.code(), Some(1), "{}", stderr(&c));
    assert!(stderr(&c).contains("input ends inside a 5-byte message"));
    assert_eq!(c.stdout, b"\x02\x00\x00\x00hi");
}

/// Feeds `first`, waits for the consumer to write `expect_out` to `out`, sends SIGTERM, and
/// returns the producer's output once it exits.
fn sigterm_mid_message(framing: &str, first: &[u8], expect_out: &[u8]) {
    let d = Dir::new();
    let mut c = consumer();
    c.args(["--framing", framing, "--output"])
        .arg(d.path("out"))
        .arg(d.ring());
    let c = spawn(c);
    let mut p = piped_producer(&d.ring(), &["--framing", framing]);
    let mut stdin = p.stdin.take().unwrap();
    stdin.write_all(first).unwrap();
    for _ in 0..2000 {
        if std::fs::read(d.path("out")).unwrap_or_default() == expect_out {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&p, libc::SIGTERM);
    let p = wait(p, "producer");
    drop(stdin);
    assert!(p.status.success(), "{}", stderr(&p));
    assert!(stderr(&p).contains("incomplete message and were not sent"));
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(std::fs::read(d.path("out")).unwrap(), expect_out);
}

#[test]
fn sigterm_mid_line_stops_at_the_last_complete_line() {
    sigterm_mid_message("lines", b"x\npartial", b"x\n");
}

#[test]
fn sigterm_mid_len_message_stops_at_the_last_complete_message() {
    sigterm_mid_message(
        "len",
        b"\x01\x00\x00\x00x\x09\x00\x00\x00part",
        b"\x01\x00\x00\x00x",
    );
}

#[test]
fn a_ring_truncated_while_in_use_is_a_one_line_error_in_both_programs() {
    for len in [0, 4096] {
        let d = Dir::new();
        let mut c = consumer();
        c.args(["--verify", "--json"]).arg(d.ring());
        let c = spawn(c);
        let mut p = producer();
        p.args(["--json", "--gen", "1000000000", "--rate", "100000"])
            .arg(d.ring());
        let p = spawn(p);
        wait_for_ring(&d.ring());
        std::thread::sleep(Duration::from_millis(200));
        std::fs::OpenOptions::new()
            .write(true)
            .open(d.ring())
            .unwrap()
            .set_len(len)
            .unwrap();
        for (out, who) in [
            (wait(p, "producer"), "producer"),
            (wait(c, "consumer"), "consumer"),
        ] {
            // Exit status 1, not death by SIGBUS (status 135 in a shell).
            assert_eq!(out.status.code(), Some(1), "{who}: {}", stderr(&out));
            // Whichever touches a lost page first faults; a consumer waiting on an intact
            // header page learns of the truncation when it checks the file while idle.
            let text = stderr(&out);
            assert!(text.contains("truncated"), "{who}: {text}");
            let json = summary(&out);
            assert_eq!(json["exit"], 1, "{who}: {text}");
            assert!(json["error"].as_str().unwrap().contains("truncated"));
        }
    }
}

/// A tmpfs of `size` bytes mounted on a new directory, unmounted when dropped; `None` where
/// this process may not mount (the test then says so and checks nothing).
struct SmallTmpfs {
    dir: tempfile::TempDir,
}

impl SmallTmpfs {
    fn mount(size: &str) -> Option<SmallTmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallTmpfs { dir })
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_sparse_ring_on_a_full_file_system_is_refused_at_open() {
    let Some(fs) = SmallTmpfs::mount("1M") else {
        eprintln!("skipped: this process cannot mount a tmpfs (needs root)");
        return;
    };
    // A valid 1 MiB ring made elsewhere, copied as a sparse file: its header only.
    let d = Dir::new();
    drop(ringfile::Ring::create(d.ring(), 1 << 20).unwrap());
    let header = &std::fs::read(d.ring()).unwrap()[..4096];
    let sparse = fs.dir.path().join("ring");
    std::fs::write(&sparse, header).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sparse)
        .unwrap()
        .set_len(4096 + (1 << 20))
        .unwrap();
    for program in [producer(), consumer()] {
        let mut cmd = program;
        cmd.args(["--json"]).arg(&sparse);
        if cmd.get_program().to_string_lossy().ends_with("producer") {
            cmd.args(["--gen", "100000"]);
        }
        let out = wait(spawn(cmd), "program");
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("no space"), "{}", stderr(&out));
        assert_eq!(summary(&out)["exit"], 1);
    }
}

#[test]
fn a_creator_killed_at_any_moment_leaves_nothing_behind() {
    for round in 0..8u64 {
        let d = Dir::new();
        let mut c = consumer();
        c.args(["--capacity", "128MiB"]).arg(d.ring());
        let mut c = spawn(c);
        std::thread::sleep(Duration::from_millis(round * 8));
        c.kill().unwrap();
        c.wait().unwrap();
        let names: Vec<String> = std::fs::read_dir(d.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        // Either nothing, or the complete ring.
        assert!(
            names.is_empty() || names == ["ring"],
            "round {round}: {names:?}"
        );
        if !names.is_empty() {
            assert_eq!(
                ringfile::Ring::open(d.ring()).unwrap().capacity(),
                128 << 20
            );
        }
    }
}

#[test]
fn a_ring_may_have_the_longest_name_the_file_system_allows() {
    let d = Dir::new();
    let ring = d.path(&"r".repeat(255));
    let mut p = producer();
    p.args(["--gen", "1000"]).arg(&ring);
    assert!(wait(spawn(p), "producer").status.success());
    let s = verify_to_end(&ring);
    assert_eq!(s["messages"], 1000);
}

#[test]
fn tiny_and_slow_rates_neither_panic_nor_delay_a_signal() {
    for rate in ["1e-300", "1e-19", "0.001"] {
        let d = Dir::new();
        let mut p = producer();
        p.args(["--json", "--gen", "3", "--rate", rate])
            .arg(d.ring());
        let p = spawn(p);
        wait_for_ring(&d.ring());
        std::thread::sleep(Duration::from_millis(200));
        signal(&p, libc::SIGTERM);
        let p = wait(p, "producer");
        assert!(p.status.success(), "--rate {rate}: {}", stderr(&p));
        assert!(!stderr(&p).contains("panicked"));
        assert_eq!(summary(&p)["messages"], 1, "--rate {rate}");
        let s = verify_to_end(&d.ring());
        assert_eq!(s["messages"], 1);
    }
}

#[test]
fn modes_that_lock_out_the_owner_are_usage_errors_and_create_nothing() {
    for mode in ["0400", "0", "0200", "0044"] {
        let d = Dir::new();
        for mut cmd in [producer(), consumer()] {
            cmd.args(["--mode", mode]).arg(d.ring());
            let out = wait(spawn(cmd), "program");
            assert_eq!(
                out.status.code(),
                Some(2),
                "--mode {mode}: {}",
                stderr(&out)
            );
            assert!(stderr(&out).contains("--mode"), "{}", stderr(&out));
            assert!(!d.ring().exists());
        }
    }
    assert!(matches!(
        ringfile::Ring::options()
            .mode(0o400)
            .create(Dir::new().ring()),
        Err(ringfile::Error::InvalidMode { mode: 0o400 })
    ));
}

#[test]
fn append_restarts_a_killed_consumer_without_erasing_its_output() {
    let d = Dir::new();
    std::fs::write(d.path("out"), "before\n").unwrap();
    let mut p = piped_producer(&d.ring(), &[]);
    let mut stdin = p.stdin.take().unwrap();
    let consume = || {
        let mut c = consumer();
        c.args(["--output"])
            .arg(d.path("out"))
            .arg("--append")
            .arg(d.ring());
        spawn(c)
    };
    let mut expected = String::from("before\n");
    for round in 0..3 {
        let chunk: String = (0..1000).map(|i| format!("{round}-{i}\n")).collect();
        stdin.write_all(chunk.as_bytes()).unwrap();
        expected.push_str(&chunk);
        let mut c = consume();
        // Once it has written everything it waits, idle: kill -9 it there, as an operator
        // would kill a consumer, and start it again with the same command.
        for _ in 0..2000 {
            if std::fs::read_to_string(d.path("out")).unwrap() == expected {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        c.kill().unwrap();
        c.wait().unwrap();
        assert_eq!(std::fs::read_to_string(d.path("out")).unwrap(), expected);
    }
    drop(stdin);
    assert!(wait(p, "producer").status.success());
    assert!(wait(consume(), "consumer").status.success());
    assert_eq!(std::fs::read_to_string(d.path("out")).unwrap(), expected);
}

/// Another local user creates the ring's path first in a directory everyone can write (as in
/// /dev/shm) and sends into it. Our programs refuse the squatted ring, saying whose it is,
/// unless told to allow it. Needs root, to run the squatter as another user.
#[test]
fn rings_created_by_another_user_are_refused_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can run the squatter as another user");
        return;
    }
    let d = Dir::new();
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let mut squatter = producer();
    squatter
        .args(["--mode", "0666", "--capacity", "64KiB", "--gen", "10"])
        .arg(d.ring())
        .uid(65534)
        .gid(65534);
    let s = wait(spawn(squatter), "squatting producer");
    assert!(s.status.success(), "{}", stderr(&s));

    // Both programs refuse it, saying whose it is.
    let mut c = consumer();
    c.arg("--verify");
    let mut p = producer();
    p.args(["--gen", "5"]);
    for (mut cmd, what) in [(c, "consumer"), (p, "producer")] {
        cmd.arg(d.ring());
        let out = wait(spawn(cmd), what);
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(
            stderr(&out).contains("belongs to uid 65534"),
            "{}",
            stderr(&out)
        );
    }

    let mut c = consumer();
    c.args(["--verify", "--json", "--allow-other-owner"])
        .arg(d.ring());
    let c = wait(spawn(c), "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(summary(&c)["messages"], 10);
}

/// A seccomp filter forbids shared futexes in both programs: waiting falls back to naps,
/// the stream still arrives whole, and the programs say so instead of spinning silently.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_futexes_waiting_falls_back_visibly_and_loses_nothing() {
    let d = Dir::new();
    let mut c = consumer();
    c.args([
        "--verify",
        "--json",
        "--wait",
        "park",
        "--capacity",
        "64KiB",
    ])
    .arg(d.ring());
    common::forbid_shared_futexes(&mut c);
    let c = spawn(c);
    std::thread::sleep(Duration::from_millis(200)); // let the consumer wait for data
    let mut p = producer();
    p.args(["--gen", "5000", "--wait", "park", "--capacity", "64KiB"])
        .arg(d.ring());
    common::forbid_shared_futexes(&mut p);
    let p = wait(spawn(p), "producer");
    assert!(p.status.success(), "{}", stderr(&p));
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(summary(&c)["messages"], 5000);
    assert!(
        stderr(&c).contains("futexes are unavailable (Operation not permitted"),
        "{}",
        stderr(&c)
    );
}

#[test]
fn a_producer_on_a_ring_left_without_room_for_the_end_still_closes_the_stream() {
    let dir = Dir::new();
    let ring = dir.ring();
    full_ring::create_exactly_full_ring(&ring);
    // No input: all the producer has to do is close, and no END fits until the consumer
    // reads. It used to exit 1 ("ring is full") leaving the stream looking abandoned.
    let mut p = producer();
    p.args(["--json"]).arg(&ring);
    let p = spawn(p);
    let mut c = consumer();
    c.args(["--json"]).arg(&ring);
    let c = wait(spawn(c), "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(summary(&c)["messages"], 3);
    let lines: Vec<&[u8]> = c.stdout.split(|&b| b == b'\n').collect();
    assert_eq!(
        lines[..3].iter().map(|l| l.len()).collect::<Vec<_>>(),
        [2040, 2032, 0]
    );
    let p = wait(p, "producer");
    assert!(p.status.success(), "{}", stderr(&p));
    assert_eq!(summary(&p)["messages"], 0);
}
