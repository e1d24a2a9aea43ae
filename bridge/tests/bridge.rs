//! ringfile-bridge end to end, across real processes and a real nats-server: the tests start
//! `nats-server -js` themselves on a free loopback port with a temporary store, and fail
//! (they do not skip) where it is not installed (Debian: `apt-get install nats-server`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn bridge_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringfile-bridge"))
}

#[path = "../../ring/tests/support/sibling.rs"]
mod sibling;

#[path = "support/nats_server.rs"]
mod nats_server;

/// The binary `name` of workspace package `package`, beside the bridge's, up to date (see
/// `ring/tests/support/sibling.rs`).
fn sibling_exe(package: &str, name: &str) -> PathBuf {
    sibling::sibling_exe(&bridge_exe(), package, name)
}

fn producer_exe() -> PathBuf {
    sibling_exe("ringfile-producer", "producer")
}

fn consumer_exe() -> PathBuf {
    sibling_exe("ringfile-consumer", "consumer")
}

/// A nats-server with JetStream on a free loopback port, its store in a temporary directory.
struct Nats {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
}

impl Nats {
    fn start() -> Nats {
        let port = nats_server::free_port().unwrap();
        let mut nats = Nats {
            child: None,
            port,
            store: tempfile::tempdir().unwrap(),
        };
        nats.run();
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let child = nats_server::start(self.port, self.store.path())
            .unwrap_or_else(|e| panic!("{e}: the bridge tests need a real nats-server"));
        self.child = Some(child);
    }

    /// Kills the server (-9) and starts it again on the same port and store.
    fn restart(&mut self, down_for: Duration) {
        self.kill();
        std::thread::sleep(down_for);
        self.run();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A child that is killed if the test ends before it exits.
struct Proc(Option<Child>, &'static str);

impl Proc {
    fn spawn(cmd: &mut Command, what: &'static str) -> Proc {
        Proc(
            Some(
                cmd.stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            ),
            what,
        )
    }

    /// Kills it with SIGKILL, asserting it was still running.
    fn kill9(&mut self) {
        let mut c = self.0.take().unwrap();
        assert!(
            c.try_wait().unwrap().is_none(),
            "{} exited before it was to be killed: {}",
            self.1,
            stderr(&mut c)
        );
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// Waits for it to exit (at most `limit`): its status and stderr.
    fn wait(&mut self, limit: Duration) -> (ExitStatus, String) {
        let mut c = self.0.take().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return (status, stderr(&mut c));
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "{} did not exit within {limit:?}: {}",
                    self.1,
                    stderr(&mut c)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn stderr(c: &mut Child) -> String {
    let mut s = String::new();
    if let Some(e) = &mut c.stderr {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// The JSON summary on the last line of a program's stderr.
fn summary(stderr: &str) -> serde_json::Value {
    let last = stderr.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("no JSON summary ({e}) in:\n{stderr}"))
}

/// `ringfile-bridge DIRECTION RING` on `stream` (subject `<stream>.feed`), quiet.
fn bridge(direction: &'static str, nats: &Nats, ring: &Path, stream: &str, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bridge_exe());
    cmd.arg(direction)
        .arg(ring)
        .args(["--server", &nats.url(), "--stream", stream, "--subject"])
        .arg(format!("{stream}.feed"))
        .arg("--quiet")
        .args(extra);
    Proc::spawn(
        &mut cmd,
        if direction == "out" {
            "ringfile-bridge out"
        } else {
            "ringfile-bridge in"
        },
    )
}

/// `out`, creating the stream.
fn out(nats: &Nats, ring: &Path, stream: &str, extra: &[&str]) -> Proc {
    let extra: Vec<&str> = std::iter::once("--create-stream")
        .chain(extra.iter().copied())
        .collect();
    bridge("out", nats, ring, stream, &extra)
}

fn inward(nats: &Nats, ring: &Path, stream: &str, extra: &[&str]) -> Proc {
    bridge("in", nats, ring, stream, extra)
}

fn far_consumer(ring: &Path, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(consumer_exe());
    cmd.args(["--verify", "--json", "--quiet"])
        .args(extra)
        .arg(ring);
    Proc::spawn(&mut cmd, "consumer")
}

/// The case the issue names: a million generated messages ring → NATS → ring, with `out`
/// killed twice, `in` killed twice and the server killed and restarted once mid-stream;
/// `consumer --verify` on the far ring counts every message once, in order.
#[test]
fn a_million_messages_cross_exactly_once_through_kills_and_a_server_restart() {
    let mut nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (near, far) = (dir.path().join("near"), dir.path().join("far"));
    const COUNT: u64 = 1_000_000;
    // `in` first, before the stream exists (either order).
    let mut inb = inward(&nats, &far, "MILLION", &["--capacity", "1MiB"]);
    // `in` is the far ring's producer: killed, it is a producer that died, and the consumer
    // goes on (--follow) with the `in` that replaces it, as README advises.
    let mut consumer = far_consumer(&far, &["--follow", "--count", &COUNT.to_string()]);
    // Paced so that the kills land mid-stream: about 10 s at 100 000 messages/s.
    let mut producer = Proc::spawn(
        Command::new(producer_exe())
            .args(["--gen", &COUNT.to_string(), "--rate", "100000", "--quiet"])
            .arg(&near),
        "producer",
    );
    let mut outb = out(&nats, &near, "MILLION", &[]);
    let step = Duration::from_millis(1200);
    std::thread::sleep(step);
    outb.kill9();
    outb = out(&nats, &near, "MILLION", &[]);
    std::thread::sleep(step);
    inb.kill9();
    inb = inward(&nats, &far, "MILLION", &[]);
    std::thread::sleep(step);
    nats.restart(Duration::from_millis(700));
    std::thread::sleep(step);
    outb.kill9();
    outb = out(&nats, &near, "MILLION", &[]);
    std::thread::sleep(step);
    inb.kill9();
    inb = inward(&nats, &far, "MILLION", &[]);

    let (status, err) = producer.wait(Duration::from_secs(120));
    assert!(status.success(), "producer: {err}");
    let (status, err) = consumer.wait(Duration::from_secs(120));
    let s = summary(&err);
    assert_eq!(s["messages"], COUNT, "far consumer: {err}");
    assert_eq!(s["errors"], 0, "far consumer: {err}");
    assert_eq!(s["ended"], "count reached", "far consumer: {err}");
    assert!(status.success(), "far consumer: {err}");
    let (status, err) = outb.wait(Duration::from_secs(30));
    assert!(status.success(), "out: {err}");
    let (status, err) = inb.wait(Duration::from_secs(30));
    assert!(status.success(), "in: {err}");
}

/// Runs a near producer written with the library, then checks what the far consumer says.
/// `count` generated messages that `consumer --verify` accepts: copied out of a ring
/// that `producer --gen` filled in `dir`.
fn generated(dir: &Path, count: u64) -> Vec<Vec<u8>> {
    let source = dir.join("source");
    let status = Command::new(producer_exe())
        .args(["--gen", &count.to_string(), "--quiet"])
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success());
    let ring = ringfile::Ring::open(&source).unwrap();
    let mut reader = ring.consumer().unwrap();
    let mut messages = Vec::new();
    while let Some(m) = reader.recv().unwrap() {
        messages.push(m.to_vec());
    }
    messages
}

fn ending_crosses(stream: &str, end: impl FnOnce(ringfile::Producer)) -> (ExitStatus, String) {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (near, far) = (dir.path().join("near"), dir.path().join("far"));
    let ring = ringfile::Ring::create(&near, 64 * 1024).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut outb = out(&nats, &near, stream, &[]);
    let mut inb = inward(&nats, &far, stream, &["--capacity", "64KiB"]);
    let mut consumer = far_consumer(&far, &[]);
    for m in generated(dir.path(), 100) {
        producer.send(&m).unwrap();
    }
    end(producer);
    let result = consumer.wait(Duration::from_secs(60));
    let (status, err) = outb.wait(Duration::from_secs(30));
    assert!(status.success(), "out: {err}");
    let (status, err) = inb.wait(Duration::from_secs(30));
    assert!(status.success(), "in: {err}");
    result
}

#[test]
fn the_end_of_a_stream_reaches_the_far_consumer() {
    let (status, err) = ending_crosses("ENDS", |p| p.close().unwrap());
    let s = summary(&err);
    assert!(status.success(), "{err}");
    assert_eq!(s["ended"], "end of stream", "{err}");
    assert_eq!(s["messages"], 100, "{err}");
}

#[test]
fn an_abort_and_its_reason_reach_the_far_consumer() {
    let (status, err) = ending_crosses("ABORTS", |p| p.abort("disk full upstream").unwrap());
    let s = summary(&err);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(s["ended"], "producer failed", "{err}");
    assert!(err.contains("disk full upstream"), "{err}");
    assert_eq!(s["messages"], 100, "{err}");
}

#[test]
fn a_producer_that_died_is_seen_dead_on_the_far_ring() {
    let (status, err) = ending_crosses("DEATHS", |p| p.abandon());
    let s = summary(&err);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(s["ended"], "producer died", "{err}");
    assert_eq!(s["messages"], 100, "{err}");
}

/// A far ring that fills (no consumer yet) holds the `in` bridge: nothing is lost, and a
/// consumer started later receives every message once.
#[test]
fn a_full_far_ring_holds_the_stream_without_loss() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (near, far) = (dir.path().join("near"), dir.path().join("far"));
    const COUNT: u64 = 50_000; // 64 B each: 3.2 MB, fifty times the far ring
    let mut producer = Proc::spawn(
        Command::new(producer_exe())
            .args(["--gen", &COUNT.to_string(), "--quiet"])
            .arg(&near),
        "producer",
    );
    let mut outb = out(&nats, &near, "FULL", &[]);
    let mut inb = inward(&nats, &far, "FULL", &["--capacity", "64KiB"]);
    let (status, err) = producer.wait(Duration::from_secs(60));
    assert!(status.success(), "producer: {err}");
    // Everything reaches JetStream (out exits once the end is acknowledged) while the far
    // ring is full and `in` waits for room.
    let (status, err) = outb.wait(Duration::from_secs(60));
    assert!(status.success(), "out: {err}");
    // The far ring fills, and stays full while no one reads it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let used = ringfile::Inspector::open(&far)
            .and_then(|i| i.snapshot())
            .map_or(0, |s| s.used_bytes());
        if used > 60 * 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the far ring did not fill: {used} bytes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut consumer = far_consumer(&far, &[]);
    let (status, err) = consumer.wait(Duration::from_secs(60));
    let s = summary(&err);
    assert!(status.success(), "{err}");
    assert_eq!(s["messages"], COUNT, "{err}");
    assert_eq!(s["errors"], 0, "{err}");
    let (status, err) = inb.wait(Duration::from_secs(30));
    assert!(status.success(), "in: {err}");
}

#[test]
fn bad_options_are_one_line_usage_errors() {
    let o = Command::new(bridge_exe())
        .args(["out", "/tmp/x", "--stream", "S", "--subject", "s"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--server"), "{err}");
    let o = Command::new(bridge_exe())
        .args([
            "in",
            "/tmp/x",
            "--server",
            "nats://h:1",
            "--stream",
            "S",
            "--subject",
            "s",
            "--replicas",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "--replicas without --create-stream"
    );
}

/// `out` started before its ring exists waits for it; `in` stopped by a signal leaves the
/// far stream open (detached, not ended) for the next bridge.
#[test]
fn a_signal_to_in_leaves_the_far_stream_open() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (near, far) = (dir.path().join("near"), dir.path().join("far"));
    let mut outb = out(&nats, &near, "OPEN", &[]);
    let mut inb = inward(&nats, &far, "OPEN", &["--capacity", "1MiB", "--json"]);
    let status = Command::new(producer_exe())
        .args(["--gen", "1000", "--no-close", "--quiet"])
        .arg(&near)
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while ringfile::Inspector::open(&far)
        .and_then(|i| i.snapshot())
        .map_or(0, |s| s.published_messages)
        < 1000
    {
        assert!(Instant::now() < deadline, "the messages did not cross");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid, which has not been waited for.
    unsafe { libc::kill(inb.0.as_ref().unwrap().id() as i32, libc::SIGTERM) };
    let (status, err) = inb.wait(Duration::from_secs(30));
    assert!(status.success(), "in: {err}");
    assert_eq!(summary(&err)["ended"], "stopped by signal", "{err}");
    let ring = ringfile::Ring::open(&far).unwrap();
    let mut consumer = ring.consumer().unwrap();
    for _ in 0..1000 {
        assert!(consumer.try_recv().unwrap().is_some());
    }
    assert!(consumer.try_recv().unwrap().is_none());
    assert!(
        !consumer.is_ended(),
        "the far stream was ended by a bridge that was stopped"
    );
    drop(outb.0.take().map(|mut c| c.kill()));
}

/// A message larger than a NATS message may be (the server's max_payload, 1 MiB by default)
/// stops `out` with a one-line error naming it, and stays in the ring: nothing is released
/// that JetStream did not acknowledge.
#[test]
fn a_message_larger_than_nats_allows_is_a_one_line_error_and_stays_in_the_ring() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let near = dir.path().join("near");
    let ring = ringfile::Ring::create(&near, 4 << 20).unwrap();
    let mut producer = ring.producer().unwrap();
    producer.send(b"small first").unwrap();
    let big = vec![7u8; 3 << 19]; // 1.5 MiB
    producer.send(&big).unwrap();
    producer.close().unwrap();
    let (status, err) = out(&nats, &near, "BIG", &[]).wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("a message of 1572864 bytes") && last.contains("larger than a NATS message"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // The large message is still there, whole (the small one before it was packed, never
    // published, so it was not released either).
    let mut consumer = ring.consumer().unwrap();
    let mut first = consumer.recv().unwrap().unwrap().to_vec();
    if first == b"small first" {
        first = consumer.recv().unwrap().unwrap().to_vec();
    }
    assert!(
        first == big,
        "the large message was not left in the ring whole"
    );
    assert!(consumer.recv().unwrap().is_none(), "the end follows it");
}

/// On a ring with several consumers `out --name` reads as one named consumer among others:
/// the far consumer and a local one each receive every message.
#[test]
fn out_reads_a_ring_with_several_consumers_as_a_named_one() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (near, far) = (dir.path().join("near"), dir.path().join("far"));
    let ring = ringfile::Ring::options()
        .capacity(1 << 20)
        .consumers(2)
        .create(&near)
        .unwrap();
    // The local reader joins first and holds every message until it reads, so the bridge
    // (starting at the oldest) sees them all whenever it joins.
    let mut local = ring.consumer_named("local").unwrap();
    let sent = generated(dir.path(), 100);
    let mut producer = ring.producer().unwrap();
    for m in &sent {
        producer.send(m).unwrap();
    }
    producer.close().unwrap();
    let mut outb = out(&nats, &near, "NAMED", &["--name", "bridge", "--json"]);
    let mut inb = inward(&nats, &far, "NAMED", &["--capacity", "64KiB"]);
    let mut verifier = far_consumer(&far, &[]);
    let (status, err) = verifier.wait(Duration::from_secs(60));
    assert!(status.success(), "far consumer: {err}");
    assert_eq!(summary(&err)["messages"], 100, "{err}");
    let (status, err) = outb.wait(Duration::from_secs(30));
    assert!(status.success(), "out: {err}");
    assert_eq!(summary(&err)["messages"], 100, "{err}");
    let (status, err) = inb.wait(Duration::from_secs(30));
    assert!(status.success(), "in: {err}");
    for m in &sent {
        assert_eq!(&local.recv().unwrap().unwrap()[..], &m[..]);
    }
    assert!(local.recv().unwrap().is_none());
    let stat = Command::new(sibling_exe("ringfile-tool", "ringfile"))
        .arg("stat")
        .arg(&near)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(
        text.contains("bridge"),
        "the bridge's slot is named: {text}"
    );
}

/// The ring options are the programs' own (one `RingArgs`): `out` on a path whose directory
/// does not exist says so at once instead of waiting for a ring that cannot appear; `out
/// --capacity` creates the ring it reads, as `consumer --capacity` does; `in` with a
/// `--capacity` an existing ring does not have says what to do, in one line.
#[test]
fn the_bridge_opens_rings_as_the_programs_do() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("ring");
    let mut outb = out(&nats, &missing, "OPENS", &[]);
    let (status, err) = outb.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{err}");
    // The error is the last line (the lines before it say what was connected).
    let line = err.lines().last().unwrap_or_default();
    assert!(
        line.contains("no such directory") && line.contains("no-such-dir"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );

    let made = dir.path().join("made");
    let mut outb = out(
        &nats,
        &made,
        "OPENS",
        &["--capacity", "64KiB", "--mode", "0640"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !made.exists() {
        assert!(Instant::now() < deadline, "out --capacity created no ring");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ring = ringfile::Ring::open(&made).unwrap();
    assert_eq!(ring.capacity(), 64 * 1024);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&made).unwrap().permissions().mode() & 0o777,
        0o640
    );
    ring.producer().unwrap().close().unwrap();
    let (status, err) = outb.wait(Duration::from_secs(30));
    assert!(status.success(), "out: {err}");

    let mut inb = inward(&nats, &made, "OPENS", &["--capacity", "1MiB"]);
    let (status, err) = inb.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{err}");
    let line = err.lines().last().unwrap_or_default();
    assert!(line.contains("omit --capacity"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

/// `count` generated messages written into a new ring `name` in `dir`, then its end, carried
/// to `stream` by an `out` that must exit successfully once the end is acknowledged.
fn carried_out(nats: &Nats, dir: &Path, name: &str, stream: &str, count: u64) {
    let path = dir.join(name);
    let ring = ringfile::Ring::create(&path, 64 * 1024).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut outb = out(nats, &path, stream, &[]);
    for m in generated(dir, count) {
        producer.send(&m).unwrap();
    }
    producer.close().unwrap();
    let (status, err) = outb.wait(Duration::from_secs(30));
    assert!(status.success(), "out from ring {name}: {err}");
}

/// A stream whose last message is gone (an operator purged it, or a limit or a work-queue
/// consumer removed it) has nothing for `out` to resume after: `out` starts on it, and what
/// it publishes then reaches the far ring, rather than waiting for ever for a message that
/// will not come back.
#[test]
fn out_starts_on_a_stream_whose_last_message_was_removed() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let far = dir.path().join("far");
    carried_out(&nats, dir.path(), "first", "PURGED", 10);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("PURGED").await.unwrap();
        stream.purge().await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        assert_eq!(state.messages, 0);
        assert!(state.last_sequence > 0, "{state:?}");
    });

    carried_out(&nats, dir.path(), "second", "PURGED", 20);

    let mut inb = inward(&nats, &far, "PURGED", &["--capacity", "64KiB"]);
    let (status, err) = far_consumer(&far, &[]).wait(Duration::from_secs(60));
    assert!(status.success(), "{err}");
    let s = summary(&err);
    assert_eq!(s["messages"], 20, "{err}");
    assert_eq!(s["errors"], 0, "{err}");
    let (status, err) = inb.wait(Duration::from_secs(30));
    assert!(status.success(), "in: {err}");
}
