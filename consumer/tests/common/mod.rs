//! What the end-to-end test files share: building and spawning the two programs, bounded
//! waits, reading their summaries, scratch directories.
#![allow(dead_code)] // each test file uses its own part

#[cfg(target_arch = "x86_64")]
#[path = "../../../ring/tests/support/seccomp.rs"]
mod seccomp;

#[path = "../../../ring/tests/support/sibling.rs"]
mod sibling;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn consumer_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_consumer"))
}

/// The binary `name` of workspace package `package`, beside the consumer's, up to date
/// (see `ring/tests/support/sibling.rs`).
pub fn sibling_exe(package: &str, name: &str) -> PathBuf {
    sibling::sibling_exe(&consumer_exe(), package, name)
}

/// The producer binary (see [`sibling_exe`]).
pub fn producer_exe() -> PathBuf {
    sibling_exe("ringfile-producer", "producer")
}

pub fn producer() -> Command {
    let mut c = Command::new(producer_exe());
    c.arg("--quiet");
    c
}

pub fn consumer() -> Command {
    let mut c = Command::new(consumer_exe());
    c.arg("--quiet");
    c
}

/// A bounded wait for a child, so a regression fails instead of hanging CI.
pub fn wait(child: Child, what: &str) -> Output {
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{what} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    waiter.join().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON summary on the last line of stderr.
pub fn summary(out: &Output) -> serde_json::Value {
    let text = stderr(out);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("no JSON summary ({e}) in: {text}"))
}

pub fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn ring(&self) -> PathBuf {
        self.path("ring")
    }
}

/// Checks that `seen`, what one consumer's successive runs wrote, holds every number below
/// `total` in order: a run killed mid-stream may be followed by a repeat of what it wrote
/// last (not yet released), never by a gap.
pub fn assert_in_order_nothing_lost(seen: &[u64], total: u64) {
    let mut next = 0u64;
    for &n in seen {
        assert!(n <= next, "message {next} lost (jumped to {n})");
        if n == next {
            next += 1;
        }
    }
    assert_eq!(next, total);
}

/// Runs `consumer --verify --json RING` until the stream ends, asserts that it succeeded, and
/// returns its JSON summary.
pub fn verify_to_end(ring: &Path) -> serde_json::Value {
    let mut c = consumer();
    c.args(["--verify", "--json"]).arg(ring);
    let c = wait(spawn(c), "consumer");
    assert!(c.status.success(), "{}", stderr(&c));
    summary(&c)
}

/// Makes `cmd`'s process unable to use shared (inter-process) futexes the way ringfile
/// does, as a seccomp filter in a locked-down container might: `FUTEX_WAIT` and `FUTEX_WAKE`
/// without `FUTEX_PRIVATE_FLAG` fail with EPERM. (Other futex operations keep working: the
/// standard library's locks and glibc's `pthread_join` need them.)
#[cfg(target_arch = "x86_64")]
pub fn forbid_shared_futexes(cmd: &mut Command) {
    let shared_ops = [libc::FUTEX_WAIT as u32, libc::FUTEX_WAKE as u32];
    seccomp::deny_syscall(cmd, libc::SYS_futex, Some(&shared_ops), libc::EPERM);
}
