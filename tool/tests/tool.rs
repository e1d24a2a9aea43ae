//! The `ringfile` tool against rings written and read by the real `producer` and `consumer`
//! programs: figures checked against what was sent, `peek` shown never to consume, `rm`
//! refusing rings in use, damaged files handled as the other programs do.

#[path = "../../ring/tests/support/pty.rs"]
mod pty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn exe(name: &str) -> PathBuf {
    let tool = PathBuf::from(env!("CARGO_BIN_EXE_ringfile"));
    if name == "ringfile" {
        return tool;
    }
    // The programs sit beside the tool; build them for `cargo test -p ringfile-tool`.
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "ringfile-producer",
            "-p",
            "ringfile-consumer",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "building the programs failed"
        );
    });
    tool.with_file_name(name)
}

/// Runs a program to completion (bounded), stdin closed.
fn run(name: &str, args: &[&str], path: &Path) -> Output {
    let mut child = Command::new(exe(name))
        .args(args)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{name} {args:?} hangs");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// [`run`], which must succeed.
fn run_ok(name: &str, args: &[&str], path: &Path) -> Output {
    let out = run(name, args, path);
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stat_json(path: &Path) -> serde_json::Value {
    let out = run_ok("ringfile", &["stat", "--json"], path);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A ring holding exactly 1000 unread generated 64-byte messages, the stream closed.
fn ring_with_1000(dir: &Path) -> PathBuf {
    let path = dir.join("ring");
    run_ok(
        "producer",
        &[
            "--quiet",
            "--capacity",
            "1MiB",
            "--gen",
            "1000",
            "--size",
            "64",
        ],
        &path,
    );
    path
}

#[test]
fn stat_counts_exactly_what_was_sent_and_not_yet_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = ring_with_1000(dir.path());
    let s = stat_json(&path);
    assert_eq!(s["messages"], 1000);
    assert_eq!(s["payload_bytes"], 64_000);
    assert_eq!(s["capacity"], 1 << 20);
    assert_eq!(s["max_message_len"], (1 << 19) - 8);
    assert_eq!(s["head"], 0);
    // 1000 records of 8 + 64 bytes, and the 8-byte end marker.
    assert_eq!(s["tail"], 72_008);
    assert_eq!(s["used_bytes"], 72_008);
    assert_eq!(s["published_messages"], 1000);
    assert_eq!(s["released_messages"], 0);
    // Payload bytes, as everywhere (64 000 of them in 72 000 bytes of records).
    assert_eq!(s["published_bytes"], 64_000);
    assert_eq!(s["released_bytes"], 0);
    assert_eq!(s["stream"], "closed");
    assert_eq!(s["producer"]["live"], false);
    assert_eq!(s["consumer"]["live"], false);
    assert_eq!(s["consumer"]["pid"], serde_json::Value::Null);
    assert_eq!(s["mode"], "0600");

    let text = run("ringfile", &["stat"], &path);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("1000 messages, 64000 bytes (62.5 KiB) of payload"),
        "{text}"
    );
    assert!(text.contains("capacity:  1.0 MiB"), "{text}");

    // A consumer reads 400: stat follows.
    run_ok(
        "consumer",
        &["--quiet", "--verify", "--count", "400"],
        &path,
    );
    let s = stat_json(&path);
    assert_eq!(s["messages"], 600);
    assert_eq!(s["payload_bytes"], 600 * 64);
    assert_eq!(s["head"], 400 * 72);
    assert_eq!(s["published_messages"], 1000);
    assert_eq!(s["released_messages"], 400);
    assert!(s["consumer"]["pid"].is_u64());
    let text = run("ringfile", &["stat"], &path);
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("1000 messages (62.5 KiB) published, 400 (25.0 KiB) released since creation"),
        "{text:?}"
    );
}

#[test]
fn peek_shows_messages_without_consuming_or_disturbing_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let mut producer = Command::new(exe("producer"))
        .args(["--quiet", "--capacity", "64KiB"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: String = (0..100).map(|i| format!("line {i}\n")).collect();
    use std::io::Write;
    producer
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(producer.wait().unwrap().success());

    let out = run("ringfile", &["peek", "-n", "3"], &path);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line 0\nline 1\nline 2\n"
    );
    let all = run("ringfile", &["peek", "-n", "1000"], &path);
    assert_eq!(String::from_utf8_lossy(&all.stdout), lines);
    assert!(String::from_utf8_lossy(&all.stderr).contains("(end of stream)"));
    let len = run("ringfile", &["peek", "-n", "1", "--framing", "len"], &path);
    assert_eq!(len.stdout, b"\x06\0\0\0line 0");

    // A consumer afterwards gets every message exactly once, and the stream's end.
    let out = run_ok("consumer", &["--quiet"], &path);
    assert_eq!(String::from_utf8_lossy(&out.stdout), lines);
    assert_eq!(stat_json(&path)["messages"], 0);
}

#[test]
fn peek_and_stat_during_a_live_stream_never_disturb_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let consumer = Command::new(exe("consumer"))
        .args(["--quiet", "--verify", "--json", "--capacity", "64KiB"])
        .arg(&path)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let producer = Command::new(exe("producer"))
        .args([
            "--quiet",
            "--capacity",
            "64KiB",
            "--gen",
            "2000000",
            "--size",
            "64",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut looks = 0;
    let mut consumer = consumer;
    while consumer.try_wait().unwrap().is_none() {
        if path.exists() {
            // Each look is a consistent snapshot or a clean error; never a crash.
            let out = run_ok("ringfile", &["peek", "-n", "50", "--framing", "len"], &path);
            // Every message peeked is whole: a generated message's checks pass.
            let mut rest = &out.stdout[..];
            while rest.len() >= 4 {
                let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
                assert_eq!(len, 64);
                rest = &rest[4 + len..];
            }
            let s = run("ringfile", &["stat", "--json"], &path);
            assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
            looks += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = consumer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stderr);
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(summary["messages"], 2_000_000);
    assert_eq!(summary["errors"], 0);
    assert!(producer.wait_with_output().unwrap().status.success());
    assert!(looks > 0);
}

#[test]
fn ls_lists_rings_skips_other_files_and_flags_damaged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_1000(dir.path());
    std::fs::write(dir.path().join("notes.txt"), "not a ring").unwrap();
    // A ring whose header was damaged (capacity field).
    let damaged = dir.path().join("damaged");
    std::fs::copy(&ring, &damaged).unwrap();
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&damaged)
        .unwrap();
    file.write_all_at(&12345u64.to_le_bytes(), 16).unwrap();
    // A FIFO must not hang the listing.
    let fifo = std::ffi::CString::new(dir.path().join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

    let out = run_ok("ringfile", &["ls"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("damaged: ") && lines[0].contains("corrupt ring header"),
        "{text}"
    );
    assert!(lines[1].contains("1000 waiting"), "{text}");
    let out = run("ringfile", &["ls", "--json"], dir.path());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["messages"], 1000);
}

#[test]
fn rm_refuses_a_ring_in_use_naming_the_pid_and_removes_it_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let mut create = Command::new(exe("ringfile"));
    create
        .args(["create", "--capacity", "64KiB", "--mode", "0660"])
        .arg(&path);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: umask(2) is async-signal-safe and touches only the child's mask.
        unsafe {
            create.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            })
        };
    }
    assert!(create.status().unwrap().success());
    let s = stat_json(&path);
    assert_eq!(s["capacity"], 65536);
    assert_eq!(s["mode"], "0660"); // exactly, whatever the umask

    // create refuses an existing path.
    let again = run("ringfile", &["create", "--capacity", "64KiB"], &path);
    assert_eq!(again.status.code(), Some(1));

    // A consumer attached (waiting for messages): rm refuses, naming it.
    let mut consumer = Command::new(exe("consumer"))
        .args(["--quiet"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stat_json(&path)["consumer"]["live"] != true {
        assert!(Instant::now() < deadline, "the consumer never attached");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = run("ringfile", &["rm"], &path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("a consumer (pid {}) is attached", consumer.id())),
        "{err}"
    );
    assert!(path.exists());
    consumer.kill().unwrap();
    consumer.wait().unwrap();
    run_ok("ringfile", &["rm"], &path);
    assert!(!path.exists());

    // Not a ring: refused, whatever the flags.
    let other = dir.path().join("other");
    std::fs::write(&other, "precious").unwrap();
    let out = run("ringfile", &["rm", "--force"], &other);
    assert_eq!(out.status.code(), Some(1));
    assert!(other.exists());
}

#[test]
fn damaged_and_missing_rings_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_1000(dir.path());
    // Truncated: the file no longer matches its header.
    let file = std::fs::OpenOptions::new().write(true).open(&ring).unwrap();
    file.set_len(5000).unwrap();
    for args in [&["stat"][..], &["peek"], &["watch", "--count", "1"]] {
        let out = run("ringfile", args, &ring);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(ring.to_str().unwrap()), "{err}");
    }
    let out = run("ringfile", &["stat"], &dir.path().join("missing"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such ring file"));
}

#[test]
fn watch_reports_each_interval_and_stops_on_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let path = ring_with_1000(dir.path());
    let out = run_ok(
        "ringfile",
        &["watch", "--json", "--interval", "0.05", "--count", "3"],
        &path,
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for l in &lines {
        assert_eq!(l["messages"], 1000);
        assert_eq!(l["bytes_in_per_sec"], 0.0);
    }

    let mut watch = Command::new(exe("ringfile"))
        .args(["watch", "--interval", "0.05"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while watch.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "watch ignored SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = watch.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("lag 1000 messages"));
}

#[test]
fn watch_rates_count_what_flowed_in_and_out_between_two_refreshes() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = ring_with_1000(dir.path());
    // An interval long enough for the traffic below to happen between the first and the
    // second refresh (it takes well under a second).
    let mut watch = Command::new(exe("ringfile"))
        .args(["watch", "--json", "--interval", "5", "--count", "2"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["messages_in_per_sec"], 0.0);
    // 300 read out (of the first 1000), 500 more sent after them.
    run_ok(
        "consumer",
        &["--quiet", "--verify", "--count", "300"],
        &path,
    );
    run_ok(
        "producer",
        &["--quiet", "--gen", "500", "--size", "64"],
        &path,
    );
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(watch.wait().unwrap().success());
    let delta = |key: &str| second[key].as_u64().unwrap() - first[key].as_u64().unwrap();
    assert_eq!(delta("published_messages"), 500);
    assert_eq!(delta("released_messages"), 300);
    let (rate_in, rate_out) = (
        second["messages_in_per_sec"].as_f64().unwrap(),
        second["messages_out_per_sec"].as_f64().unwrap(),
    );
    // Both rates are over the same interval, so their ratio is exact whatever it lasted.
    assert!(rate_in > 0.0 && rate_out > 0.0);
    assert!(
        ((rate_in / rate_out) - 500.0 / 300.0).abs() < 1e-9,
        "{rate_in} {rate_out}"
    );
    assert_eq!(second["messages"], 1000 - 300 + 500);
    // Bytes are payload bytes, as in `stat` and the summaries: 64 per message (they counted
    // the 72 bytes of each record).
    assert_eq!(delta("published_bytes"), 500 * 64);
    assert_eq!(delta("released_bytes"), 300 * 64);
    for (bytes, messages) in [
        ("bytes_in_per_sec", "messages_in_per_sec"),
        ("bytes_out_per_sec", "messages_out_per_sec"),
    ] {
        let per_message = second[bytes].as_f64().unwrap() / second[messages].as_f64().unwrap();
        assert!((per_message - 64.0).abs() < 1e-6, "{bytes}: {per_message}");
    }
}

#[test]
fn watch_fits_its_line_to_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = ring_with_1000(dir.path());
    let shown = |columns: u16| {
        let pty = pty::Pty::open();
        pty.set_width(columns);
        let status = Command::new(exe("ringfile"))
            .args(["watch", "--interval", "0.05", "--count", "3"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(pty.slave.try_clone().unwrap())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        // The live display ends with a newline once it stops.
        let text = pty.wait_for(Duration::from_secs(30), "no end", |t| t.ends_with('\n'));
        // Each refresh rewrites the line: carriage return, erase the line, the line.
        let lines: Vec<String> = text
            .split("\r\x1b[K")
            .filter(|l| !l.is_empty())
            .map(|l| l.trim_end().to_owned())
            .collect();
        assert_eq!(lines.len(), 3, "{text:?}");
        lines
    };
    // It wrote 158 columns on an 80-column terminal, which wraps and so never rewrites in
    // place.
    for line in shown(80) {
        assert!(line.chars().count() < 80, "{} columns: {line}", line.len());
        assert!(
            line.starts_with("in 0 msg/s 0 bytes/s  out 0 msg/s 0 bytes/s  lag 1000 messages"),
            "{line}"
        );
    }
    // A wide terminal gets everything, the path last.
    for line in shown(250) {
        assert!(line.contains("producer: none  consumer: none"), "{line}");
        assert!(line.ends_with(&path.display().to_string()), "{line}");
    }
}

#[test]
fn a_header_with_reserved_fields_set_is_refused_by_every_program_naming_the_field() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_1000(dir.path());
    let file = std::fs::OpenOptions::new().write(true).open(&ring).unwrap();
    file.write_all_at(&1u32.to_le_bytes(), 44).unwrap();
    let runs: [(&str, &[&str]); 4] = [
        ("ringfile", &["stat"]),
        ("ringfile", &["peek"]),
        ("consumer", &["--quiet"]),
        ("producer", &["--quiet"]),
    ];
    for (name, args) in runs {
        let out = run(name, args, &ring);
        assert_eq!(out.status.code(), Some(1), "{name} {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{name} {args:?}: {err}");
        assert!(err.contains(ring.to_str().unwrap()), "{err}");
        assert!(err.contains("flags (offset 44)"), "{name}: {err}");
    }
}

/// `cmd`, run as the unprivileged user `nobody` (65534) — possible only when these tests
/// run as root; `None` otherwise.
fn as_nobody(mut cmd: Command) -> Option<Command> {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    // SAFETY: setgroups, setgid and setuid are async-signal-safe and change only the child.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    Some(cmd)
}

#[test]
fn another_users_ring_is_permission_denied_not_damaged() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // A world-writable sticky directory, as /dev/shm is, with a copy of the tool that
    // `nobody` can run, and a ring only its owner (root) may read.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let tool = dir.path().join("ringfile");
    std::fs::copy(exe("ringfile"), &tool).unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ring = dir.path().join("ring");
    ringfile::Ring::create(&ring, 4096).unwrap();
    let run_as_nobody = |args: &[&str], path: &Path| -> Option<Output> {
        let mut cmd = Command::new(&tool);
        cmd.args(args).arg(path).stdin(Stdio::null());
        as_nobody(cmd).map(|mut c| c.output().unwrap())
    };
    let Some(out) = run_as_nobody(&["rm"], &ring) else {
        eprintln!("not root: cannot act as a second user; skipped");
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    // It used to call the ring damaged and advise --force, which then failed with EPERM.
    assert!(
        !err.contains("--force") && !err.contains("damaged"),
        "{err}"
    );
    let out = run_as_nobody(&["rm", "--force"], &ring).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied: cannot remove"), "{err}");
    assert!(ring.exists());
    // ls says how many files it could not read.
    let out = run_as_nobody(&["ls"], dir.path()).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 file in"), "{err}");
    assert!(
        err.contains("could not be read (permission denied)"),
        "{err}"
    );
}

#[test]
fn peek_shows_binary_messages_in_hex_and_says_when_a_ring_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let ring = ringfile::Ring::create(&path, 4096).unwrap();
    // Asked for, on a pipe: every message as a hex dump.
    let mut producer = ring.producer().unwrap();
    producer.send(b"Hi\x00\x01").unwrap();
    producer.send(b"plain text").unwrap();
    let out = run_ok("ringfile", &["peek", "--hex"], &path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("00000000  48 69 00 01") && text.contains("|Hi..|"),
        "{text}"
    );
    assert!(text.contains("|plain text|"), "{text}");
    // Without --hex, a pipe gets the bytes exactly, as before.
    let out = run_ok("ringfile", &["peek"], &path);
    assert_eq!(out.stdout, b"Hi\x00\x01\nplain text\n");

    // On a terminal: text as text, anything else in hex (it used to write raw bytes there),
    // and an empty ring says so (it printed nothing).
    // The output of `ringfile peek PATH` on a terminal, once it shows `last`.
    let on_terminal = |path: &Path, last: &str| {
        let pty = pty::Pty::open();
        let status = Command::new(exe("ringfile"))
            .arg("peek")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(pty.slave.try_clone().unwrap())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        pty.wait_for(
            Duration::from_secs(30),
            &format!("never showed {last:?}"),
            |t| t.contains(last),
        )
    };
    let shown = on_terminal(&path, "plain text");
    assert!(shown.contains("|Hi..|"), "{shown}");
    assert!(
        !shown.contains("|plain text|"),
        "text shown as text: {shown}"
    );
    let empty = dir.path().join("empty");
    ringfile::Ring::create(&empty, 4096).unwrap();
    on_terminal(&empty, "(empty)");
}

#[test]
fn stat_prometheus_exposes_one_ring_or_a_directory_in_the_text_format() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_1000(dir.path());
    // A damaged ring beside it: listed as not readable, nothing else.
    let damaged = dir.path().join("damaged");
    std::fs::copy(&ring, &damaged).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&damaged)
        .unwrap()
        .set_len(5000)
        .unwrap();
    let out = run_ok("ringfile", &["stat", "--prometheus"], dir.path());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut families = std::collections::BTreeMap::new();
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            *families.entry(name.to_string()).or_insert(0) += 1;
            continue;
        }
        if line.starts_with("# TYPE ") {
            let kind = line.rsplit(' ').next().unwrap();
            assert!(kind == "gauge" || kind == "counter", "{line}");
            continue;
        }
        // name{labels} value
        let (series, value) = line.rsplit_once(' ').expect(line);
        value.parse::<f64>().expect(line);
        let name = series.split('{').next().unwrap();
        assert!(
            families.contains_key(name),
            "sample before its HELP: {line}"
        );
        assert!(
            series.ends_with('}') && series.contains("ring=\""),
            "{line}"
        );
        samples.insert(series.to_string(), value.to_string());
    }
    assert!(families.values().all(|&n| n == 1), "{families:?}");
    let ring = ring.display();
    let damaged = damaged.display();
    assert_eq!(
        samples[&format!("ringfile_waiting_messages{{ring=\"{ring}\"}}")],
        "1000"
    );
    assert_eq!(
        samples[&format!("ringfile_waiting_bytes{{ring=\"{ring}\"}}")],
        "64000"
    );
    assert_eq!(
        samples[&format!("ringfile_capacity_bytes{{ring=\"{ring}\"}}")],
        "1048576"
    );
    assert_eq!(
        samples[&format!("ringfile_stream_state{{ring=\"{ring}\",state=\"closed\"}}")],
        "1"
    );
    assert_eq!(
        samples[&format!("ringfile_readable{{ring=\"{ring}\"}}")],
        "1"
    );
    assert_eq!(
        samples[&format!("ringfile_readable{{ring=\"{damaged}\"}}")],
        "0"
    );
    assert!(!samples.contains_key(&format!("ringfile_waiting_messages{{ring=\"{damaged}\"}}")));
    // One ring by its path, the same figures.
    let out = run_ok(
        "ringfile",
        &["stat", "--prometheus"],
        Path::new(&ring.to_string()),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!(
        "ringfile_waiting_messages{{ring=\"{ring}\"}} 1000"
    )));
}

#[test]
fn completions_and_the_manual_page_are_generated_from_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(exe("ringfile"))
        .args(["completions", "bash"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("_ringfile()"), "{script}");
    assert!(script.contains("--prometheus"), "every option completes");
    let out = Command::new(exe("ringfile")).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH ringfile 1"), "{page}");
    assert!(page.contains("completions"), "{page}");
    // The two programs too, from the same definitions they parse (they had none).
    let generated = |args: &[&str]| {
        let out = Command::new(exe("ringfile")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for (program, option) in [("producer", "--gen"), ("consumer", "--verify")] {
        let script = generated(&["completions", "bash", program]);
        assert!(script.contains(&format!("_{program}()")), "{script}");
        assert!(
            script.contains(option) && script.contains("--capacity"),
            "{script}"
        );
        let page = generated(&["man", program]);
        assert!(page.contains(&format!(".TH {program} 1")), "{page}");
        assert!(page.contains(&option.replace('-', "\\-")), "{page}");
    }
}

#[test]
fn ls_aligns_its_columns_and_speaks_the_json_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    ring_with_1000(dir.path());
    let long = dir.path().join("a-ring-with-a-much-longer-name");
    ringfile::Ring::create(&long, 64 << 10).unwrap();
    let out = run_ok("ringfile", &["ls"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    // Every column starts where it starts on the other line (they used to run on).
    for column in ["producer", "consumer"] {
        let at: Vec<Option<usize>> = lines.iter().map(|l| l.find(column)).collect();
        assert!(at[0].is_some() && at[0] == at[1], "{column}: {text}");
    }
    // The stream's state in the words the JSON uses ("idle"), not "no producer".
    assert!(lines[0].ends_with("idle (no producer attached)"), "{text}");
}

#[test]
fn a_reader_that_goes_away_ends_the_tool_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let path = ring_with_1000(dir.path());
    for args in [
        &["stat"][..],
        &["stat", "--json"],
        &["peek"],
        &["ls"],
        &["man"],
    ] {
        let mut command = Command::new(exe("ringfile"));
        command.args(args);
        if args[0] != "man" {
            command.arg(if args[0] == "ls" { dir.path() } else { &path });
        }
        // Standard output: a pipe whose reading end is closed before the tool starts.
        let mut fds = [0; 2];
        // SAFETY: pipe(2) writes two descriptors into `fds`, which we then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both are open descriptors owned by nobody else.
        let (read_end, write_end) = unsafe {
            (
                <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]),
                <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]),
            )
        };
        drop(read_end);
        let out = command
            .stdin(Stdio::null())
            .stdout(write_end)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        // Ended by SIGPIPE, as `ls | head` ends ls: it panicked with a backtrace (stat, exit
        // 101) or said "Broken pipe" (man, exit 1).
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {out:?}"
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
