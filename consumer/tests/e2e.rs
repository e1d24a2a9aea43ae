//! End-to-end tests of the `producer` and `consumer` programs, spawned as real processes.

mod common;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[test]
fn raw_round_trip_is_byte_exact_through_a_small_ring() {
    let d = Dir::new();
    let data = random_bytes(24 << 20, 7);
    std::fs::write(d.path("in"), &data).unwrap();
    let mut c = consumer();
    c.args(["--framing", "raw", "--capacity", "64KiB", "--output"])
        .arg(d.path("out"))
        .arg(d.ring());
    let c = spawn(c);
    let mut p = producer();
    p.args([
        "--framing",
        "raw",
        "--capacity",
        "64KiB",
        "--json",
        "--input",
    ])
    .arg(d.path("in"))
    .arg(d.ring());
    let p = wait(spawn(p), "producer");
    assert!(p.status.success(), "{}", stderr(&p));
    assert_eq!(summary(&p)["bytes"], data.len() as u64);
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert!(
        std::fs::read(d.path("out")).unwrap() == data,
        "output differs"
    );
}

#[test]
fn raw_from_stdin_pipe() {
    let d = Dir::new();
    let data = random_bytes(3 << 20, 11);
    let mut p = producer();
    p.args(["--framing", "raw", "--chunk", "1000"])
        .arg(d.ring());
    let mut p = p
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = p.stdin.take().unwrap();
    let feed = data.clone();
    let feeder = std::thread::spawn(move || {
        for piece in feed.chunks(77_777) {
            stdin.write_all(piece).unwrap();
        }
    });
    let mut c = consumer();
    c.args(["--framing", "raw"]).arg(d.ring());
    let c = wait(spawn(c), "consumer");
    feeder.join().unwrap();
    assert!(wait(p, "producer").status.success());
    assert!(c.status.success(), "{}", stderr(&c));
    assert!(c.stdout == data);
}

#[test]
fn lines_round_trip_with_empty_lines() {
    let d = Dir::new();
    let input = b"first\n\n\nfourth line\n\n\xff\xfe binary ok\nlast without newline";
    let mut p = producer();
    p.arg(d.ring()).stdin(Stdio::piped());
    let mut p = p.spawn().unwrap();
    p.stdin.take().unwrap().write_all(input).unwrap();
    assert!(p.wait().unwrap().success());
    let mut c = consumer();
    c.arg("--json").arg(d.ring());
    let c = wait(spawn(c), "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(
        c.stdout,
        b"first\n\n\nfourth line\n\n\xff\xfe binary ok\nlast without newline\n"
    );
    assert_eq!(summary(&c)["messages"], 7);
}

#[test]
fn len_round_trip_with_empty_messages() {
    let d = Dir::new();
    let messages: Vec<Vec<u8>> = (0..2000)
        .map(|i| random_bytes((i * 37) % 3000 * (i % 3), i as u64 + 1))
        .collect();
    assert!(messages.iter().any(|m| m.is_empty()));
    let mut framed = Vec::new();
    for m in &messages {
        framed.extend_from_slice(&(m.len() as u32).to_le_bytes());
        framed.extend_from_slice(m);
    }
    std::fs::write(d.path("in"), &framed).unwrap();
    let mut p = producer();
    p.args(["--framing", "len", "--capacity", "16KiB", "--input"])
        .arg(d.path("in"))
        .arg(d.ring());
    let p = spawn(p);
    let mut c = consumer();
    c.args(["--framing", "len", "--capacity", "16KiB"])
        .arg(d.ring());
    let c = wait(spawn(c), "consumer");
    assert!(wait(p, "producer").status.success());
    assert!(c.status.success(), "{}", stderr(&c));
    assert!(c.stdout == framed);
}

#[test]
fn len_framing_rejects_truncated_and_oversized_input() {
    let d = Dir::new();
    std::fs::write(d.path("trunc"), [10, 0, 0, 0, 1, 2]).unwrap();
    let mut p = producer();
    p.args(["--framing", "len", "--input"])
        .arg(d.path("trunc"))
        .arg(d.ring());
    let out = wait(spawn(p), "producer");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("input ends inside"),
        "{}",
        stderr(&out)
    );
    std::fs::write(d.path("big"), u32::MAX.to_le_bytes()).unwrap();
    let mut p = producer();
    p.args(["--framing", "len", "--input"])
        .arg(d.path("big"))
        .arg(d.ring());
    let out = wait(spawn(p), "producer");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("maximum message size"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn generator_and_verifier_in_either_start_order() {
    for consumer_first in [true, false] {
        let d = Dir::new();
        // Room for the whole stream: the producer may finish before the consumer starts.
        let mut p = producer();
        p.args([
            "--gen",
            "300000",
            "--size",
            "64",
            "--capacity",
            "32MiB",
            "--json",
        ])
        .arg(d.ring());
        let mut c = consumer();
        c.args(["--verify", "--json", "--capacity", "32MiB"])
            .arg(d.ring());
        let (p, c) = if consumer_first {
            let c = spawn(c);
            std::thread::sleep(Duration::from_millis(50));
            (spawn(p), c)
        } else {
            let p = wait(spawn(p), "producer"); // finishes alone: the stream waits in the ring
            let c = spawn(c);
            assert!(p.status.success(), "{}", stderr(&p));
            return_check(c, 300_000);
            continue;
        };
        let p = wait(p, "producer");
        assert!(p.status.success(), "{}", stderr(&p));
        return_check(c, 300_000);
    }

    fn return_check(c: Child, n: u64) {
        let c = wait(c, "consumer");
        assert!(c.status.success(), "{}", stderr(&c));
        let s = summary(&c);
        assert_eq!(s["messages"], n);
        assert_eq!(s["errors"], 0);
    }
}

#[test]
fn generator_sizes_and_latency_report() {
    for size in ["8", "23", "24", "1000"] {
        let d = Dir::new();
        let mut p = producer();
        p.args(["--gen", "2000", "--size", size, "--rate", "20000"])
            .arg(d.ring());
        let p = spawn(p);
        let mut c = consumer();
        c.args(["--verify", "--latency", "--json"]).arg(d.ring());
        let c = wait(spawn(c), "consumer");
        assert!(wait(p, "producer").status.success());
        assert!(c.status.success(), "{}", stderr(&c));
        let s = summary(&c);
        assert_eq!(s["errors"], 0, "size {size}");
        for key in ["p50", "p99", "p999", "max"] {
            assert!(
                s["latency_ns"][key].as_u64().unwrap() > 0,
                "size {size}: {key}"
            );
        }
    }
}

#[test]
fn verify_reports_foreign_messages() {
    let d = Dir::new();
    let mut p = producer();
    p.arg(d.ring()).stdin(Stdio::piped());
    let mut p = p.spawn().unwrap();
    p.stdin
        .take()
        .unwrap()
        .write_all(b"not a generated message\nnor this one, which is long enough\n")
        .unwrap();
    assert!(p.wait().unwrap().success());
    let mut c = consumer();
    c.args(["--verify", "--json"]).arg(d.ring());
    let c = wait(spawn(c), "consumer");
    assert_eq!(c.status.code(), Some(1));
    assert_eq!(summary(&c)["errors"], 2);
}

/// A producer fed `lines` numbered lines through its stdin, whose stream stays open until
/// `end()` is called: the test, not the machine's speed, decides when the stream ends.
struct GatedProducer {
    child: Child,
    gate: std::sync::mpsc::Sender<()>,
    feeder: std::thread::JoinHandle<()>,
}

impl GatedProducer {
    fn start(ring: &Path, lines: u64) -> GatedProducer {
        let mut p = producer();
        p.args(["--capacity", "64KiB"]).arg(ring);
        let mut child = p
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let (gate, open) = std::sync::mpsc::channel::<()>();
        let feeder = std::thread::spawn(move || {
            let text: String = (0..lines).map(|i| format!("{i}\n")).collect();
            stdin.write_all(text.as_bytes()).unwrap();
            let _ = open.recv(); // keep the stream open until told
        });
        GatedProducer {
            child,
            gate,
            feeder,
        }
    }

    /// Ends the input: the producer closes the stream and exits.
    fn end(self) -> Output {
        drop(self.gate);
        self.feeder.join().unwrap();
        wait(self.child, "producer")
    }
}

/// A consumer of `d`'s 64 KiB ring writing lines to the file `name` in `d`.
fn consume_into(d: &Dir, name: &str) -> Child {
    let mut c = consumer();
    c.args(["--capacity", "64KiB", "--output"])
        .arg(d.path(name))
        .arg(d.ring());
    spawn(c)
}

/// The numbers on the complete lines of a consumer's output (a last line cut short by a kill
/// is ignored: it was not released, so it is delivered again).
fn numbers(bytes: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(bytes);
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete.lines().map(|l| l.parse().unwrap()).collect()
}

#[test]
fn consumer_killed_repeatedly_loses_nothing() {
    let d = Dir::new();
    let total = 400_000u64;
    let p = GatedProducer::start(&d.ring(), total);
    let consume = |name: &str| consume_into(&d, name);
    let mut all = Vec::new();
    for round in 0..4u64 {
        let name = format!("out{round}");
        let mut c = consume(&name);
        std::thread::sleep(Duration::from_millis(30 + round * 20));
        c.kill().unwrap(); // SIGKILL, mid-stream: the stream is still open
        c.wait().unwrap();
        all.extend(numbers(&std::fs::read(d.path(&name)).unwrap_or_default()));
    }
    let c = consume("final");
    assert!(p.end().status.success());
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    all.extend(numbers(&std::fs::read(d.path("final")).unwrap()));
    // In order, nothing missing; a killed consumer may repeat what it wrote just before.
    assert_in_order_nothing_lost(&all, total);
}

#[test]
fn killed_producer_is_reported_and_a_new_one_attaches() {
    let d = Dir::new();
    let mut p = producer();
    p.args(["--gen", "100000000", "--rate", "200000"])
        .arg(d.ring());
    let mut p = spawn(p);
    let mut c = consumer();
    c.args(["--verify", "--json"]).arg(d.ring());
    let c = spawn(c);
    std::thread::sleep(Duration::from_millis(300));
    p.kill().unwrap();
    p.wait().unwrap();
    let c = wait(c, "consumer");
    assert_eq!(c.status.code(), Some(1), "{}", stderr(&c));
    let text = stderr(&c);
    assert!(text.contains("died without closing the stream"), "{text}");
    let s = summary(&c);
    assert_eq!(s["errors"], 0);
    assert!(s["messages"].as_u64().unwrap() > 0);
    // The role is free again at once.
    let mut p = producer();
    p.args(["--gen", "1000"]).arg(d.ring());
    let p = wait(spawn(p), "producer");
    assert!(p.status.success(), "{}", stderr(&p));
    let s = verify_to_end(&d.ring());
    assert_eq!(s["messages"], 1000);
}

#[test]
fn follow_waits_for_the_next_producer() {
    let d = Dir::new();
    let mut c = consumer();
    c.args(["--follow", "--count", "30"]).arg(d.ring());
    let c = spawn(c);
    for batch in 0..3 {
        let mut p = producer();
        p.arg(d.ring()).stdin(Stdio::piped());
        let mut p = p.spawn().unwrap();
        let lines: String = (0..10).map(|i| format!("{batch}-{i}\n")).collect();
        p.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
        assert!(p.wait().unwrap().success());
    }
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(String::from_utf8(c.stdout).unwrap().lines().count(), 30);
}

fn sigterm(child: &Child) {
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

#[test]
fn sigterm_to_producer_closes_the_stream() {
    let d = Dir::new();
    let mut p = producer();
    p.args(["--gen", "100000000", "--rate", "100000", "--json"])
        .arg(d.ring());
    let p = spawn(p);
    let mut c = consumer();
    c.args(["--verify", "--json"]).arg(d.ring());
    let c = spawn(c);
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&p);
    let p = wait(p, "producer");
    assert!(p.status.success(), "{}", stderr(&p));
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    let (ps, cs) = (summary(&p), summary(&c));
    assert_eq!(cs["ended"], "end of stream");
    assert_eq!(ps["messages"], cs["messages"]);
    assert_eq!(cs["errors"], 0);
}

#[test]
fn sigterm_to_consumer_loses_and_repeats_nothing() {
    let d = Dir::new();
    let total = 300_000u64;
    let p = GatedProducer::start(&d.ring(), total);
    let consume = |name: &str| consume_into(&d, name);
    let c = consume("a");
    std::thread::sleep(Duration::from_millis(100));
    sigterm(&c); // mid-stream: the stream is still open
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    let c = consume("b");
    assert!(p.end().status.success());
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    let mut all = numbers(&std::fs::read(d.path("a")).unwrap());
    all.extend(numbers(&std::fs::read(d.path("b")).unwrap()));
    assert_eq!(all, (0..total).collect::<Vec<_>>());
}

#[test]
fn second_consumer_is_refused_with_the_holders_pid() {
    let d = Dir::new();
    let mut first = consumer();
    first.args(["--capacity", "64KiB"]).arg(d.ring()); // creates the ring
    let first = spawn(first);
    // Wait until the first holds the role: its pid in the header (FORMAT.md, offset 644).
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read(d.ring())
        .ok()
        .filter(|b| b.len() >= 648)
        .map(|b| u32::from_le_bytes(b[644..648].try_into().unwrap()))
        != Some(first.id())
    {
        assert!(
            Instant::now() < deadline,
            "first consumer never took the role"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    loop {
        let out = wait(
            spawn({
                let mut c = consumer();
                c.arg(d.ring());
                c
            }),
            "second consumer",
        );
        if out.status.code() == Some(1) {
            let text = stderr(&out);
            assert!(text.contains(&format!("pid {}", first.id())), "{text}");
            assert!(text.contains("consumer role"), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "second consumer never refused");
    }
    sigterm(&first);
    assert!(wait(first, "first consumer").status.success());
}

#[test]
fn bad_ring_files_fail_cleanly() {
    let d = Dir::new();
    let cases: Vec<(&str, PathBuf)> = {
        let empty = d.path("empty");
        std::fs::write(&empty, b"").unwrap();
        let garbage = d.path("garbage");
        std::fs::write(&garbage, random_bytes(20_000, 3)).unwrap();
        let good = d.path("good");
        let out = wait(
            spawn({
                let mut p = producer();
                p.args(["--gen", "10"]).arg(&good);
                p
            }),
            "producer",
        );
        assert!(out.status.success());
        let truncated = d.path("truncated");
        std::fs::copy(&good, &truncated).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&truncated)
            .unwrap()
            .set_len(6000)
            .unwrap();
        let magic = d.path("magic");
        std::fs::copy(&good, &magic).unwrap();
        let mut bytes = std::fs::read(&magic).unwrap();
        bytes[..8].copy_from_slice(b"XXXXXXXX");
        std::fs::write(&magic, bytes).unwrap();
        let fifo = d.path("fifo");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        vec![
            ("empty", empty),
            ("garbage", garbage),
            ("truncated", truncated),
            ("magic", magic),
            ("directory", d.dir.path().to_path_buf()),
            ("fifo", fifo),
        ]
    };
    for (what, path) in cases {
        for program in [consumer(), producer()] {
            let mut cmd = program;
            cmd.arg(&path);
            let out = wait(spawn(cmd), what);
            let text = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{what}: {text}");
            assert_eq!(text.lines().count(), 1, "{what}: one line: {text}");
            assert!(text.contains(&path.display().to_string()), "{what}: {text}");
            assert!(!text.contains("panicked"), "{what}: {text}");
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let d = Dir::new();
    for args in [
        vec!["--capacity", "3000"],
        vec!["--capacity", "lots"],
        vec!["--wait", "nap"],
        vec!["--framing", "xml"],
        vec!["--no-such-option"],
    ] {
        for mut cmd in [consumer(), producer()] {
            let out = wait(
                spawn({
                    cmd.args(&args).arg(d.ring());
                    cmd
                }),
                "usage",
            );
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        }
    }
    for args in [
        vec!["--gen", "5", "--size", "4"],
        vec!["--size", "64"],
        vec!["--gen", "1", "--rate", "-3"],
    ] {
        let out = wait(
            spawn({
                let mut p = producer();
                p.args(&args).arg(d.ring());
                p
            }),
            "usage",
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    // Against the capacity a new ring would have: a usage error, and nothing is created.
    let out = wait(
        spawn({
            let mut p = producer();
            p.args(["--capacity", "4KiB", "--gen", "1", "--size", "4000"])
                .arg(d.ring());
            p
        }),
        "usage",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!d.ring().exists(), "a usage error created the ring");
    // Against an existing ring's, known only once it is open: still a usage error.
    let out = wait(
        spawn({
            let mut p = producer();
            p.args(["--capacity", "4KiB", "--gen", "1"]).arg(d.ring());
            p
        }),
        "a 4 KiB ring",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = wait(
        spawn({
            let mut p = producer();
            p.args(["--gen", "1", "--size", "4000"]).arg(d.ring());
            p
        }),
        "usage",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!d.path("nowhere").exists());
    // A capacity that differs from the existing ring's is an error only when given.
    let out = wait(
        spawn({
            let mut p = producer();
            p.args(["--capacity", "8KiB", "--gen", "1"]).arg(d.ring());
            p
        }),
        "mismatch",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("capacity"), "{}", stderr(&out));
}

/// CPU ticks (user + system) a process has used, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn idle_consumer_sleeps_and_still_sees_new_messages() {
    let d = Dir::new();
    let mut c = consumer();
    c.args(["--count", "1"]).arg(d.ring());
    let c = spawn(c);
    std::thread::sleep(Duration::from_millis(300)); // past the spinning phase
    let before = cpu_ticks(c.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(c.id()) - before;
    // A busy-waiting consumer would use ~200 ticks (100 Hz) in 2 s; a sleeping one ~0.
    assert!(used < 20, "idle consumer used {used} ticks in 2 s");
    let mut p = producer();
    p.arg(d.ring()).stdin(Stdio::piped());
    let mut p = p.spawn().unwrap();
    p.stdin.take().unwrap().write_all(b"wake up\n").unwrap();
    assert!(p.wait().unwrap().success());
    let c = wait(c, "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(c.stdout, b"wake up\n");
}

#[test]
fn help_documents_options_and_exit_codes() {
    for exe in [consumer_exe(), producer_exe()] {
        let out = Command::new(&exe).arg("--help").output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        for word in [
            "--capacity",
            "--wait",
            "--json",
            "--quiet",
            "--framing",
            "Exit status",
        ] {
            assert!(text.contains(word), "{}: {word}", exe.display());
        }
    }
    assert!(Path::new(&producer_exe()).exists());
}

#[test]
fn new_ring_file_mode_is_0600_unless_asked() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new();
    let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let out = wait(
        spawn({
            let mut p = producer();
            p.args(["--gen", "1"]).arg(d.ring());
            p
        }),
        "producer",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode_of(&d.ring()), 0o600);
    let shared = d.path("shared");
    let out = wait(
        spawn({
            let mut p = producer();
            p.args(["--gen", "1", "--mode", "0660"]).arg(&shared);
            use std::os::unix::process::CommandExt;
            // SAFETY: umask(2) is async-signal-safe and touches only the child's mask.
            unsafe {
                p.pre_exec(|| {
                    libc::umask(0o022);
                    Ok(())
                })
            };
            p
        }),
        "producer",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Exactly as asked under the usual umask (which used to take the group's write bit).
    assert_eq!(mode_of(&shared), 0o660);
    let out = wait(
        spawn({
            let mut p = producer();
            p.args(["--mode", "999"]).arg(d.path("x"));
            p
        }),
        "producer",
    );
    assert_eq!(out.status.code(), Some(2));
}
