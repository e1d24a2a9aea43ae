//! Several consumers on one ring, across real processes: every named consumer verifies every
//! message; a named consumer killed with SIGKILL and restarted misses nothing; a stopped
//! consumer holds the producer back and the producer says which; a dead name holds it until
//! `ringfile evict`.

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn tool() -> Command {
    Command::new(sibling_exe("ringfile-tool", "ringfile"))
}

/// Waits until the ring's snapshot says `names` are all registered (each consumer registers
/// its name when it attaches).
fn wait_registered(ring: &Path, names: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(snapshot) = ringfile::Inspector::open(ring).and_then(|i| i.snapshot()) {
            if names
                .iter()
                .all(|n| snapshot.consumers.iter().any(|c| c.name == *n))
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "consumers {names:?} never registered"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The ring the tests make: 3 slots of 1 MiB, or as `shape` says.
const BIG: &[&str] = &["--consumers", "3", "--capacity", "1MiB"];
const SMALL: &[&str] = &["--consumers", "2", "--capacity", "64KiB"];

fn named_verifier(ring: &Path, name: &str, shape: &[&str], extra: &[&str]) -> Child {
    let mut c = consumer();
    c.args(["--verify", "--json", "--name", name])
        .args(shape)
        .args(extra)
        .arg(ring);
    spawn(c)
}

/// The sequence numbers of the complete `len`-framed generated messages in `bytes` (a last
/// record cut short by a kill is ignored: it was not released, so it is delivered again).
fn sequences(bytes: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if at + 4 + len > bytes.len() {
            break;
        }
        let msg = &bytes[at + 4..at + 4 + len];
        out.push(u64::from_le_bytes(msg[8..16].try_into().unwrap()));
        at += 4 + len;
    }
    out
}

#[test]
fn three_named_consumers_verify_a_million_messages_one_killed_and_restarted() {
    const TOTAL: u64 = 1_000_000;
    let d = Dir::new();
    let ring = d.ring();
    let a = named_verifier(&ring, "a", BIG, &[]);
    let c = named_verifier(&ring, "c", BIG, &[]);
    let b_args = |file: &str| {
        vec![
            "--output".to_string(),
            d.path(file).display().to_string(),
            "--framing".to_string(),
            "len".to_string(),
        ]
    };
    let first: Vec<String> = b_args("b1");
    let mut b1 = named_verifier(
        &ring,
        "b",
        BIG,
        &first.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    wait_registered(&ring, &["a", "b", "c"]);
    let mut p = producer();
    p.args(["--gen", &TOTAL.to_string(), "--size", "64", "--json"])
        .arg(&ring);
    let p = spawn(p);
    // Kill b mid-stream (the others go on), then start it again under the same name.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(d.path("b1")).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(Instant::now() < deadline, "b wrote nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    b1.kill().unwrap(); // SIGKILL
    b1.wait().unwrap();
    let second: Vec<String> = b_args("b2");
    let b2 = named_verifier(
        &ring,
        "b",
        BIG,
        &second.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let p = wait(p, "producer");
    assert!(p.status.success(), "{}", stderr(&p));
    for (name, child) in [("a", a), ("c", c)] {
        let out = wait(child, name);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let s = summary(&out);
        assert_eq!(
            (s["messages"].as_u64(), s["errors"].as_u64()),
            (Some(TOTAL), Some(0)),
            "{name}"
        );
    }
    let out = wait(b2, "b restarted");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(&out)["errors"], 0);
    // Between them, b's two runs wrote every message in order: the restart resumed at or
    // before the first message the killed one had not written out, never after it.
    let mut all = sequences(&std::fs::read(d.path("b1")).unwrap());
    let killed_at = all.len();
    assert!(killed_at > 0 && (killed_at as u64) < TOTAL, "{killed_at}");
    all.extend(sequences(&std::fs::read(d.path("b2")).unwrap()));
    assert_in_order_nothing_lost(&all, TOTAL);
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Reads the child's stderr on a thread, so that it can be searched while the child runs.
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, what: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if what(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no such line on stderr ({e})"),
        }
    }
}

#[test]
fn a_stopped_consumer_holds_the_producer_and_the_producer_names_it() {
    let d = Dir::new();
    let ring = d.ring();
    let a = named_verifier(&ring, "a", SMALL, &[]);
    let b = named_verifier(&ring, "slowpoke", SMALL, &[]);
    wait_registered(&ring, &["a", "slowpoke"]);
    signal(&b, libc::SIGSTOP);
    let mut p = producer();
    p.args(["--gen", "200000", "--size", "64", "--json"])
        .arg(&ring);
    let mut p = spawn(p);
    let lines = stderr_lines(&mut p);
    let said = wait_for_line(&lines, |l| l.contains("ring full"));
    assert!(
        said.contains("\"slowpoke\"") && said.contains("not reading"),
        "{said}"
    );
    // Held back: the stopped consumer has read nothing, so the producer cannot have sent
    // more than a ring's worth.
    let snapshot = ringfile::Inspector::open(&ring)
        .unwrap()
        .snapshot()
        .unwrap();
    assert!(snapshot.published_messages < 200_000, "{snapshot:?}");
    signal(&b, libc::SIGCONT);
    let p = wait(p, "producer");
    assert!(p.status.success());
    for (name, child) in [("a", a), ("slowpoke", b)] {
        let out = wait(child, name);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let s = summary(&out);
        assert_eq!(
            (s["messages"].as_u64(), s["errors"].as_u64()),
            (Some(200_000), Some(0)),
            "{name}"
        );
    }
}

/// A named consumer "gone" (with `gone_args`) registered then killed, a live one "live", and
/// a producer of 100 000 generated messages started after: the live consumer, the producer
/// and the producer's stderr lines.
fn a_dead_name_and_a_producer(
    ring: &Path,
    gone_args: &[&str],
) -> (Child, Child, std::sync::mpsc::Receiver<String>) {
    let mut gone = named_verifier(ring, "gone", SMALL, gone_args);
    let live = named_verifier(ring, "live", SMALL, &[]);
    wait_registered(ring, &["gone", "live"]);
    gone.kill().unwrap();
    gone.wait().unwrap();
    let mut p = producer();
    p.args(["--gen", "100000", "--size", "64", "--json"])
        .arg(ring);
    let mut p = spawn(p);
    let lines = stderr_lines(&mut p);
    (live, p, lines)
}

#[test]
fn a_dead_name_holds_the_producer_until_evicted() {
    let d = Dir::new();
    let ring = d.ring();
    let (live, p, lines) = a_dead_name_and_a_producer(&ring, &[]);
    let said = wait_for_line(&lines, |l| l.contains("ring full"));
    assert!(
        said.contains("\"gone\"") && said.contains("dead") && said.contains("ringfile evict"),
        "{said}"
    );
    // `stat` lists both, and says which is dead.
    let stat = tool().arg("stat").arg(&ring).output().unwrap();
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(
        text.contains("\"gone\": dead") && text.contains("\"live\": pid"),
        "{text}"
    );
    // `ls` and `watch` show every consumer too: name, pid or dead, mode, position, lag.
    let ls = tool()
        .arg("ls")
        .arg(ring.parent().unwrap())
        .output()
        .unwrap();
    let watch = tool()
        .args(["watch", "--count", "1", "--interval", "0.1"])
        .arg(&ring)
        .output()
        .unwrap();
    for (what, out) in [("ls", ls), ("watch", watch)] {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("gone dead lossless at 0 lag ")
                && text.contains(&format!("live pid {} lossless at ", live.id())),
            "{what}: {text}"
        );
    }
    // A live name cannot be evicted; a dead one can, and the producer goes on at once.
    let refused = tool()
        .args(["evict"])
        .arg(&ring)
        .arg("live")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("held by pid"));
    let evicted = tool()
        .args(["evict"])
        .arg(&ring)
        .arg("gone")
        .output()
        .unwrap();
    assert!(
        evicted.status.success(),
        "{}",
        String::from_utf8_lossy(&evicted.stderr)
    );
    let p = wait(p, "producer");
    assert!(p.status.success());
    let out = wait(live, "live");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(&out)["messages"], 100_000);
}

/// `--retain`: the producer itself evicts a name whose holder has been gone that long, says
/// so, and goes on; the other consumer gets everything.
#[test]
fn a_dead_name_with_retain_is_evicted_by_the_producer() {
    let d = Dir::new();
    let ring = d.ring();
    let (live, p, lines) = a_dead_name_and_a_producer(&ring, &["--retain", "1s"]);
    let said = wait_for_line(&lines, |l| l.contains("evicted"));
    assert!(
        said.contains("\"gone\"") && said.contains("--retain"),
        "{said}"
    );
    let p = wait(p, "producer");
    assert!(p.status.success());
    let out = wait(live, "live");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(&out)["messages"], 100_000);
    // The name is free: the ring lists only the live one.
    let snapshot = ringfile::Inspector::open(&ring)
        .unwrap()
        .snapshot()
        .unwrap();
    let names: Vec<_> = snapshot.consumers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["live"]);
}

#[test]
fn a_stopped_lossy_consumer_does_not_hold_the_producer_and_says_what_it_missed() {
    const TOTAL: u64 = 200_000;
    let d = Dir::new();
    let ring = d.ring();
    let a = named_verifier(&ring, "archive", SMALL, &[]);
    let mut live = named_verifier(&ring, "live", SMALL, &["--lossy"]);
    let live_lines = stderr_lines(&mut live);
    wait_registered(&ring, &["archive", "live"]);
    signal(&live, libc::SIGSTOP);
    let mut p = producer();
    p.args(["--gen", &TOTAL.to_string(), "--size", "64", "--json"])
        .arg(&ring);
    // The stopped lossy consumer does not hold the producer back: it ends while the
    // consumer is still stopped.
    let p = wait(spawn(p), "producer");
    assert!(p.status.success(), "{}", stderr(&p));
    signal(&live, libc::SIGCONT);
    let said = wait_for_line(&live_lines, |l| l.contains("overtaken"));
    assert!(
        said.contains("\"live\"") && said.contains("missed"),
        "{said}"
    );
    let out = wait(a, "archive");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(&out)["messages"], TOTAL);
    // Every gap in its sequence is one it was told of: verify passes, and what it received
    // and what it missed add up to what was sent.
    let last = wait_for_line(&live_lines, |l| l.starts_with('{'));
    let s: serde_json::Value = serde_json::from_str(&last).unwrap();
    let status = live.wait().unwrap();
    assert!(status.success(), "{last}");
    assert_eq!(s["errors"], 0, "{last}");
    let (got, missed) = (
        s["messages"].as_u64().unwrap(),
        s["missed"].as_u64().unwrap(),
    );
    assert!(missed > 0, "{last}");
    assert_eq!(got + missed, TOTAL, "{last}");
}
