//! What the end-to-end test files share: building and spawning the two programs, bounded
//! waits, reading their summaries, scratch directories.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn consumer_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_consumer"))
}

/// The producer binary sits beside the consumer's. Cargo builds it for a workspace test run
/// but not for `cargo test -p consumer`, so make sure it is up to date (once per run; a no-op
/// when it is).
pub fn producer_exe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "-p", "producer"]);
            if !cfg!(debug_assertions) {
                cmd.arg("--release");
            }
            assert!(cmd.status().unwrap().success(), "building producer failed");
            consumer_exe().with_file_name("producer")
        })
        .clone()
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
    use std::os::unix::process::CommandExt;
    // Classic BPF over `struct seccomp_data` { u32 nr; u32 arch; u64 ip; u64 args[6] }.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LD_W_ABS, 0, 0, 4), // arch
        op(JEQ_K, 0, 6, AUDIT_ARCH_X86_64),
        op(LD_W_ABS, 0, 0, 0), // syscall number
        op(JEQ_K, 0, 4, libc::SYS_futex as u32),
        op(LD_W_ABS, 0, 0, 24), // low half of args[1], the futex operation
        op(JEQ_K, 1, 0, libc::FUTEX_WAIT as u32),
        op(JEQ_K, 0, 1, libc::FUTEX_WAKE as u32),
        op(RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, RET_ALLOW),
    ];
    // SAFETY: the closure runs in the forked child before exec and makes only two
    // async-signal-safe system calls, with a filter program that lives on its stack frame's
    // captured copy for the duration of the call.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
