//! Cross-process behaviour, across real processes: this test binary re-runs itself as the
//! helper process (see `helper_process`), selected by an environment variable.

#[path = "support/seccomp.rs"]
mod seccomp;

use ringfile::{Error, Ring, Role, WaitStrategy};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

const HELPER_ENV: &str = "RINGFILE_TEST_HELPER";
/// Generous bound on any single wait, so a regression fails the test instead of hanging CI.
const PATIENCE: Duration = Duration::from_secs(60);

/// Message `seq`: its sequence number, then a pattern derived from it, of a varying length.
fn message(seq: u64) -> Vec<u8> {
    let len = 8 + (seq.wrapping_mul(2_654_435_761) % 120) as usize;
    let mut m = seq.to_le_bytes().to_vec();
    m.extend((8..len).map(|i| (seq as u8).wrapping_add((i as u8).wrapping_mul(13))));
    m
}

/// Checks a message is intact and returns its sequence number.
fn check(msg: &[u8]) -> u64 {
    let seq = u64::from_le_bytes(msg[..8].try_into().unwrap());
    assert_eq!(msg, &message(seq)[..], "message {seq} is torn or corrupt");
    seq
}

/// The helper process. Not a test of its own: it does nothing unless the environment
/// variable says which part to play.
#[test]
fn helper_process() {
    let Ok(spec) = std::env::var(HELPER_ENV) else {
        return;
    };
    let args: Vec<&str> = spec.split('|').collect();
    let arg = |i: usize| args[i];
    let num = |i: usize| args[i].parse::<u64>().unwrap();
    let say = |line: String| println!("{line}");
    match arg(0) {
        "produce" => {
            let ring = Ring::options()
                .capacity(num(2))
                .open_or_create(arg(1))
                .unwrap();
            let mut producer = ring.producer().unwrap();
            for seq in 0..num(3) {
                producer.send(&message(seq)).unwrap();
            }
            producer.close().unwrap();
        }
        "produce_forever" => {
            let mut producer = Ring::open(arg(1)).unwrap().producer().unwrap();
            for seq in 0.. {
                producer.send(&message(seq)).unwrap();
                if seq == 100 {
                    say("READY".into());
                }
            }
        }
        "claim_and_hang" => {
            let mut producer = Ring::open(arg(1)).unwrap().producer().unwrap();
            for seq in 0..num(2) {
                producer.send(&message(seq)).unwrap();
            }
            let mut claim = producer.claim(64).unwrap();
            claim.fill(0xee);
            say("CLAIMED".into());
            std::thread::sleep(Duration::from_secs(3600));
        }
        "mark_and_hang" => {
            // Each message's publish records its sequence number as the resume mark; then a
            // marked claim that is never committed (a kill leaves it unpublished).
            let mut producer = Ring::open(arg(1)).unwrap().producer().unwrap();
            for seq in 1..=num(2) {
                producer.mark_next_publish(std::num::NonZeroU64::new(seq).unwrap());
                producer.send(&message(seq)).unwrap();
            }
            producer.mark_next_publish(std::num::NonZeroU64::new(u64::MAX).unwrap());
            let mut claim = producer.claim(64).unwrap();
            claim.fill(0xee);
            say("MARKED".into());
            std::thread::sleep(Duration::from_secs(3600));
        }
        "hold" => {
            let ring = Ring::open(arg(1)).unwrap();
            let _role = match arg(2) {
                "producer" => Box::new(ring.producer().unwrap()) as Box<dyn std::any::Any>,
                _ => Box::new(ring.consumer().unwrap()),
            };
            say(format!("HELD {}", std::process::id()));
            std::thread::sleep(Duration::from_secs(3600));
        }
        "consume" => {
            let mut consumer = Ring::open(arg(1)).unwrap().consumer().unwrap();
            let first = num(2);
            for expected in first..first + num(3) {
                let msg = consumer.recv_timeout(PATIENCE).unwrap().unwrap();
                assert_eq!(check(&msg), expected);
            }
            say("CONSUMED".into());
            std::thread::sleep(Duration::from_secs(3600));
        }
        "memfd_consume" => {
            use std::os::fd::FromRawFd;
            // SAFETY: the parent left this descriptor open (not close-on-exec) for us.
            let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(num(1) as i32) };
            let mut consumer = Ring::from_fd(fd).unwrap().consumer().unwrap();
            let mut expected = 0;
            while let Some(msg) = consumer.recv_timeout(PATIENCE).unwrap() {
                assert_eq!(check(&msg), expected);
                expected += 1;
            }
            assert_eq!(expected, num(2));
            say(format!("RECEIVED {expected}"));
        }
        "race_create" => {
            let start = Duration::from_nanos(num(2));
            while std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                < start
            {
                std::hint::spin_loop();
            }
            let ring = Ring::options()
                .capacity(num(3))
                .open_or_create(arg(1))
                .unwrap();
            use std::os::unix::fs::MetadataExt;
            let ino = std::fs::metadata(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&ring))
            ))
            .unwrap()
            .ino();
            say(format!("INODE {ino} {}", ring.capacity()));
        }
        "no_space" => {
            // A file-size limit below the ring's size stands in for a full file system:
            // sizing the file fails (EFBIG) instead of the process being killed by SIGXFSZ.
            // SAFETY: plain libc calls with valid arguments.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: 64 * 1024,
                    rlim_max: 64 * 1024,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            }
            match Ring::create(arg(1), 1 << 20) {
                Err(e @ Error::NoSpace { .. }) => say(format!("NOSPACE {e}")),
                other => panic!("expected NoSpace, got {other:?}"),
            }
        }
        "wake_stress" => {
            // The producer of `wake_stress_between_processes_loses_no_wake_up`.
            let mut producer = Ring::open(arg(1)).unwrap().producer().unwrap();
            producer.set_wait_strategy(WaitStrategy::Adaptive);
            let mut pauses = Pauses(num(3));
            for seq in 0..num(2) {
                pauses.maybe_pause();
                producer.send(&message(seq)).unwrap();
            }
            producer.close().unwrap();
            say(format!(
                "PARKED {} LATE {} MEMBARRIER {}",
                voluntary_switches(),
                ringfile::diagnostics::late_wakeups(),
                membarrier_state()
            ));
        }
        "wake_stress_consume" => {
            // The consumer of `wake_stress_between_processes_loses_no_wake_up`, in a process
            // of its own: `late_wakeups` counts for the whole process, and other tests of
            // this binary kill their peers mid-stream (which can leave a wake-up undone).
            let mut consumer = Ring::open(arg(1)).unwrap().consumer().unwrap();
            consumer.set_wait_strategy(WaitStrategy::Adaptive);
            let mut pauses = Pauses(num(3));
            say("READY".into());
            let mut expected = 0;
            while let Some(msg) = consumer.recv_timeout(PATIENCE).unwrap() {
                assert_eq!(check(&msg), expected, "lost, repeated or reordered");
                expected += 1;
                drop(msg);
                pauses.maybe_pause();
            }
            assert_eq!(expected, num(2));
            say(format!(
                "PARKED {} LATE {} MEMBARRIER {}",
                voluntary_switches(),
                ringfile::diagnostics::late_wakeups(),
                membarrier_state()
            ));
        }
        other => panic!("unknown helper part {other}"),
    }
    std::process::exit(0);
}

/// Random pauses, so that each side often finds the other asleep: mostly none; one in 16 a
/// sleep of 20 to 200 µs (the other side parks on the futex and must be woken); three in 16 a
/// spin of up to 20 µs (the other side is spinning, or about to sleep).
struct Pauses(u64);

impl Pauses {
    fn maybe_pause(&mut self) {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let r = self.0;
        match r % 16 {
            0 => std::thread::sleep(Duration::from_micros(20 + (r >> 8) % 180)),
            1..=3 => {
                let until = std::time::Instant::now() + Duration::from_nanos((r >> 8) % 20_000);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            _ => {}
        }
    }
}

/// Voluntary context switches of this process so far: each sleep on a futex is one (so are
/// the pauses' sleeps).
fn voluntary_switches() -> i64 {
    // SAFETY: getrusage fills the struct it is given, which outlives the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_nvcsw
}

struct Helper {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Helper {
    fn spawn(parts: &[&str]) -> Helper {
        Helper::spawn_with(parts, |_| {})
    }

    /// As `spawn`, after `setup` adjusted the command (a seccomp filter, say).
    fn spawn_with(parts: &[&str], setup: impl FnOnce(&mut Command)) -> Helper {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "helper_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, parts.join("|"))
            .stdout(Stdio::piped());
        setup(&mut command);
        let mut child = command.spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Helper { child, out }
    }

    /// Reads the helper's output up to the line holding `marker`; returns what follows it.
    fn expect(&mut self, marker: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            if self.out.read_line(&mut line).unwrap() == 0 {
                panic!("helper exited before saying {marker}");
            }
            // The test harness may have printed "test helper_process ... " before it.
            if let Some(at) = line.find(marker) {
                return line[at + marker.len()..].trim().to_string();
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no destructor, no clean-up runs
        self.child.wait().unwrap();
    }

    fn succeeds(mut self) {
        assert!(self.child.wait().unwrap().success(), "helper failed");
    }
}

impl Drop for Helper {
    /// A failing test must not leave a sleeping helper behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ring_path(dir: &tempfile::TempDir) -> String {
    dir.path().join("ring").to_str().unwrap().to_string()
}

#[test]
fn stream_between_processes_either_order() {
    for consumer_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = ring_path(&dir);
        let count = 50_000u64;
        let consumer_ring = consumer_first.then(|| {
            Ring::options()
                .capacity(4096)
                .open_or_create(&path)
                .unwrap()
        });
        let helper = Helper::spawn(&["produce", &path, "4096", &count.to_string()]);
        let ring = match consumer_ring {
            Some(ring) => ring,
            None => {
                // Producer first: wait for it to create the ring.
                while !Path::new(&path).exists() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ring::options()
                    .capacity(4096)
                    .open_or_create(&path)
                    .unwrap()
            }
        };
        let mut consumer = ring.consumer().unwrap();
        let mut expected = 0;
        while let Some(msg) = consumer.recv_timeout(PATIENCE).unwrap() {
            assert_eq!(check(&msg), expected);
            expected += 1;
        }
        assert_eq!(expected, count);
        helper.succeeds();
    }
}

#[test]
fn killed_producer_is_reported_then_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = ring_path(&dir);
    let ring = Ring::create(&path, 4096).unwrap();
    let mut consumer = ring.consumer().unwrap();
    let helper = Helper::spawn(&["produce_forever", &path]);
    let pid = helper.pid();
    let mut expected = 0;
    let take = |consumer: &mut ringfile::Consumer, expected: &mut u64, n: u64| {
        for _ in 0..n {
            let msg = consumer.recv_timeout(PATIENCE).unwrap().unwrap();
            assert_eq!(check(&msg), *expected);
            *expected += 1;
        }
    };
    take(&mut consumer, &mut expected, 2000);
    let mut helper = helper;
    helper.expect("READY");
    helper.kill();
    // Everything it published arrives intact, then the death is reported, once.
    loop {
        match consumer.recv_timeout(PATIENCE) {
            Ok(Some(msg)) => {
                assert_eq!(check(&msg), expected);
                expected += 1;
            }
            Err(Error::ProducerDied { pid: died, .. }) => {
                assert_eq!(died, Some(pid));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(300)),
        Err(Error::Timeout)
    ));
    // The role is free at once; the new producer appends after the last published message.
    let mut producer = ring.producer().unwrap();
    producer.send(&message(expected)).unwrap();
    producer.close().unwrap();
    take(&mut consumer, &mut expected, 1);
    assert!(consumer.recv_timeout(PATIENCE).unwrap().is_none());
}

#[test]
fn killed_producers_claim_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let path = ring_path(&dir);
    let ring = Ring::create(&path, 64 * 1024).unwrap();
    let mut helper = Helper::spawn(&["claim_and_hang", &path, "10"]);
    helper.expect("CLAIMED");
    helper.kill();
    let mut consumer = ring.consumer().unwrap();
    for expected in 0..10 {
        assert_eq!(
            check(&consumer.recv_timeout(PATIENCE).unwrap().unwrap()),
            expected
        );
    }
    assert!(matches!(
        consumer.recv_timeout(PATIENCE),
        Err(Error::ProducerDied { .. })
    ));
    let mut producer = ring.producer().unwrap();
    producer.send(&message(10)).unwrap();
    assert_eq!(
        check(&consumer.recv_timeout(PATIENCE).unwrap().unwrap()),
        10
    );
}

#[test]
fn killed_producers_successor_reads_the_mark_of_its_last_publish() {
    let dir = tempfile::tempdir().unwrap();
    let path = ring_path(&dir);
    let ring = Ring::create(&path, 64 * 1024).unwrap();
    assert_eq!(
        ring.producer().unwrap().resume_mark(),
        None,
        "a new ring has none"
    );
    let mut helper = Helper::spawn(&["mark_and_hang", &path, "25"]);
    helper.expect("MARKED");
    helper.kill();
    // The mark of the last publish, not that of the claim the kill left unpublished.
    let mut producer = ring.producer().unwrap();
    assert_eq!(producer.resume_mark().map(|m| m.get()), Some(25));
    // An unmarked publish leaves no mark for the next producer.
    producer.send(&message(26)).unwrap();
    producer.detach();
    assert_eq!(ring.producer().unwrap().resume_mark(), None);
}

#[test]
fn killed_consumers_successor_resumes_at_release() {
    let dir = tempfile::tempdir().unwrap();
    let path = ring_path(&dir);
    let ring = Ring::create(&path, 1 << 20).unwrap();
    let mut producer = ring.producer().unwrap();
    for seq in 0..1000 {
        producer.send(&message(seq)).unwrap();
    }
    producer.close().unwrap();
    // Three consumers in turn, each killed after 300 messages.
    for round in 0..3u64 {
        let first = (round * 300).to_string();
        let mut helper = Helper::spawn(&["consume", &path, &first, "300"]);
        helper.expect("CONSUMED");
        helper.kill();
    }
    let mut consumer = ring.consumer().unwrap();
    for expected in 900..1000 {
        assert_eq!(
            check(&consumer.recv_timeout(PATIENCE).unwrap().unwrap()),
            expected
        );
    }
    assert!(consumer.recv_timeout(PATIENCE).unwrap().is_none());
}

#[test]
fn role_held_by_live_process_then_freed_by_its_death() {
    for (role, name) in [(Role::Producer, "producer"), (Role::Consumer, "consumer")] {
        let dir = tempfile::tempdir().unwrap();
        let path = ring_path(&dir);
        let ring = Ring::create(&path, 4096).unwrap();
        let mut helper = Helper::spawn(&["hold", &path, name]);
        let pid: u32 = helper.expect("HELD").parse().unwrap();
        let attempt = match role {
            Role::Producer => ring.producer().map(drop),
            Role::Consumer => ring.consumer().map(drop),
        };
        let err = attempt.unwrap_err();
        assert!(
            matches!(err, Error::RoleTaken { role: r, pid: Some(p), by_this_process: false, .. } if r == role && p == pid),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("pid {pid}")), "{err}");
        helper.kill();
        // Free at once: no timeout, no clean-up.
        match role {
            Role::Producer => drop(ring.producer().unwrap()),
            Role::Consumer => drop(ring.consumer().unwrap()),
        }
    }
}

#[test]
fn racing_creators_end_up_on_one_ring() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = ring_path(&dir);
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            + Duration::from_millis(400);
        let start = start.as_nanos().to_string();
        let mut helpers: Vec<Helper> = (0..6)
            .map(|_| Helper::spawn(&["race_create", &path, &start, "65536"]))
            .collect();
        let answers: Vec<String> = helpers.iter_mut().map(|h| h.expect("INODE")).collect();
        for helper in helpers {
            helper.succeeds();
        }
        assert!(
            answers.iter().all(|a| a == &answers[0]),
            "round {round}: creators saw different rings: {answers:?}"
        );
        assert!(answers[0].ends_with(" 65536"));
        // One valid ring, no temporary files left behind.
        assert_eq!(Ring::open(&path).unwrap().capacity(), 65536);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

#[test]
fn memfd_ring_shared_with_a_child_process() {
    use std::os::fd::{AsFd, AsRawFd};
    let ring = Ring::memfd(4096).unwrap();
    let fd = ring.as_fd().as_raw_fd();
    let count = 20_000u64;
    // Let the child inherit the descriptor: clear close-on-exec for the spawn.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let mut helper = Helper::spawn(&["memfd_consume", &fd.to_string(), &count.to_string()]);
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut producer = ring.producer().unwrap();
    for seq in 0..count {
        producer.send(&message(seq)).unwrap();
    }
    producer.close().unwrap();
    assert_eq!(helper.expect("RECEIVED"), count.to_string());
    helper.succeeds();
}

#[test]
fn no_space_is_an_error_at_creation_not_a_sigbus_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = ring_path(&dir);
    let mut helper = Helper::spawn(&["no_space", &path]);
    let message = helper.expect("NOSPACE");
    assert!(message.contains(&path), "{message}");
    assert!(message.contains("no space"), "{message}");
    helper.succeeds();
    // Nothing half-made is left at the path, nor any temporary file.
    assert!(!Path::new(&path).exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Park/wake cycles between two processes, both waiting adaptively (spin, then sleep on the
/// futex), with random pauses on both sides so that each keeps finding the other asleep or
/// about to sleep, on a ring small enough that the producer waits for room as often as the
/// consumer waits for data. A lost wake-up would leave one side asleep with work waiting: the
/// stream would stall until the 100 ms idle tick, and the bounded wait below would fail if it
/// happened for good; `late_wakeups` counts every sleep that ran out its slice with its flag
/// still up although there was work (what a lost wake-up looks like), in each process, and
/// must stay 0. Every message arrives once, in order.
///
/// 200 000 messages by default (some 12 000 park/wake cycles each way);
/// `RINGFILE_STRESS_MESSAGES=20000000 cargo test --release -p ringfile --test processes wake_stress`
/// for over a million each way.
#[test]
fn wake_stress_between_processes_loses_no_wake_up() {
    let report = wake_stress(Barriers::Membarrier, Barriers::Membarrier);
    for (name, late, membarrier) in report {
        assert_eq!(
            late, 0,
            "the {name} slept through a wake-up that never came"
        );
        assert_eq!(membarrier, "on", "the {name} used the asymmetric fence");
    }
}

/// As `wake_stress_between_processes_loses_no_wake_up`, with the consumer's process unable
/// to make any membarrier call (a seccomp filter): it fences, and asks the producer to.
#[test]
fn wake_stress_with_a_peer_without_membarrier_loses_no_wake_up() {
    let report = wake_stress(Barriers::Membarrier, Barriers::Denied);
    for (name, late, _) in &report {
        assert_eq!(
            *late, 0,
            "the {name} slept through a wake-up that never came"
        );
    }
    assert_eq!(report[0].2, "on");
    assert!(report[1].2.contains("not permitted"), "{:?}", report[1]);
}

/// The producer's process registers for membarriers and declares it issues them, then every
/// barrier it tries fails (a seccomp filter on the one command): at its first sleep it must
/// switch back to fences while the consumer may still be skipping its own. The stream goes
/// through whole; the one switch may cost one sleep slice (1 ms at most), never more.
#[test]
fn wake_stress_with_membarrier_failing_midway_loses_nothing() {
    let report = wake_stress(Barriers::FailsWhenIssued, Barriers::Membarrier);
    assert!(report[0].1 <= 1, "{report:?}");
    assert_eq!(report[1].1, 0, "{report:?}");
    assert!(report[0].2.contains("not permitted"), "{:?}", report[0]);
}

/// What a stress helper's process may do with `membarrier(2)`.
#[derive(Clone, Copy)]
enum Barriers {
    Membarrier,
    /// Every call fails with EPERM.
    Denied,
    /// Query and registration work, the barrier itself fails with EPERM.
    FailsWhenIssued,
}

impl Barriers {
    fn apply(self, command: &mut Command) {
        const GLOBAL_EXPEDITED: u32 = 2;
        match self {
            Barriers::Membarrier => {}
            Barriers::Denied => {
                seccomp::deny_syscall(command, libc::SYS_membarrier, None, libc::EPERM)
            }
            Barriers::FailsWhenIssued => seccomp::deny_syscall_arg(
                command,
                libc::SYS_membarrier,
                0,
                Some(&[GLOBAL_EXPEDITED]),
                libc::EPERM,
            ),
        }
    }
}

/// Runs the stress stream; for the producer then the consumer: name, late wake-ups, and
/// `membarrier_fallback` at the end ("on" if none).
fn wake_stress(producer: Barriers, consumer: Barriers) -> Vec<(&'static str, u64, String)> {
    let count: u64 = std::env::var("RINGFILE_STRESS_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path = ring_path(&dir);
    drop(Ring::options().capacity(512).open_or_create(&path).unwrap());
    let count_arg = count.to_string();
    let mut consumer_helper = Helper::spawn_with(
        &["wake_stress_consume", &path, &count_arg, "2463534242"],
        |c| consumer.apply(c),
    );
    consumer_helper.expect("READY");
    let mut producer_helper = Helper::spawn_with(
        &["wake_stress", &path, &count_arg, "88172645463325252"],
        |c| producer.apply(c),
    );
    let mut report = Vec::new();
    for (name, helper) in [
        ("producer", &mut producer_helper),
        ("consumer", &mut consumer_helper),
    ] {
        let line = helper.expect("PARKED ");
        let (sleeps, rest) = line.split_once(" LATE ").unwrap();
        let (late, membarrier) = rest.split_once(" MEMBARRIER ").unwrap();
        eprintln!(
            "{count} messages: the {name} slept {sleeps} times (futex sleeps and pauses), \
             {late} late wake-ups, membarrier: {membarrier}"
        );
        report.push((name, late.parse().unwrap(), membarrier.to_string()));
    }
    producer_helper.succeeds();
    consumer_helper.succeeds();
    report
}

/// "on", or why this process does not use the asymmetric fence.
fn membarrier_state() -> String {
    ringfile::diagnostics::membarrier_fallback().map_or("on".into(), |e| e.to_string())
}
