//! Turning a SIGBUS from a ring mapping into a one-line error (opt-in).
//!
//! A ring lives in a mapping of its file. If another process truncates the file (`truncate`,
//! `: > ring`, `cp other ring`) while this process has it mapped, the next access to a page
//! past the new end raises SIGBUS, and by default the process dies without a word. No check
//! can prevent it: the truncation may happen between any check and any access. (Rings made
//! with [`Ring::memfd`](crate::Ring::memfd) cannot fault: they are sealed at their size.)
//!
//! [`install_sigbus_handler`] (or a configured [`SigbusHandler`]) installs a process-wide handler that looks at the faulting
//! address: if it lies in a ring mapping of this process, the handler prints one line naming
//! the ring and exits with status 1 (and, if asked, a JSON object after it); any other
//! SIGBUS keeps its default behaviour. Every ring this crate maps is registered (up to
//! [`TRACKED_MAPPINGS`] at a time; more are mapped unprotected), whether or not the handler is
//! installed.
//!
//! The handler only reads atomics and calls `write(2)` and `_exit(2)`, which are
//! async-signal-safe.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// How many ring mappings can be registered at once.
pub const TRACKED_MAPPINGS: usize = 64;
/// Longest ring name kept for the message (longer names are cut).
const NAME_MAX: usize = 240;

const FREE: u8 = 0;
const BUSY: u8 = 1;
const LIVE: u8 = 2;

/// One registered mapping. Every field is atomic, so the handler may read a slot that is
/// being filled or emptied: it trusts a slot only while `state` is `LIVE`, which is stored
/// (Release) after the other fields and cleared before they change.
struct Slot {
    state: AtomicU8,
    start: AtomicUsize,
    len: AtomicUsize,
    name_len: AtomicUsize,
    name: [AtomicU8; NAME_MAX],
}

#[allow(clippy::declare_interior_mutable_const)] // a template for the array below only
const EMPTY_SLOT: Slot = Slot {
    state: AtomicU8::new(FREE),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    name_len: AtomicUsize::new(0),
    name: [const { AtomicU8::new(0) }; NAME_MAX],
};

static SLOTS: [Slot; TRACKED_MAPPINGS] = [EMPTY_SLOT; TRACKED_MAPPINGS];

/// Handler settings, written before the handler is installed.
static PROGRAM: [AtomicU8; 64] = [const { AtomicU8::new(0) }; 64];
static PROGRAM_LEN: AtomicUsize = AtomicUsize::new(0);
static JSON: AtomicBool = AtomicBool::new(false);

/// A registration, removed when dropped.
pub(crate) struct Registration(usize);

/// Registers the mapping `start .. start + len` of the ring called `name`. `None` when every
/// slot is taken (the mapping then has no SIGBUS message).
pub(crate) fn register(start: usize, len: usize, name: &[u8]) -> Option<Registration> {
    let index = SLOTS.iter().position(|slot| {
        slot.state
            .compare_exchange(FREE, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    })?;
    let slot = &SLOTS[index];
    slot.start.store(start, Ordering::Relaxed);
    slot.len.store(len, Ordering::Relaxed);
    let n = name.len().min(NAME_MAX);
    for (cell, &byte) in slot.name.iter().zip(&name[..n]) {
        cell.store(byte, Ordering::Relaxed);
    }
    slot.name_len.store(n, Ordering::Relaxed);
    // Release: a handler that sees LIVE (Acquire) sees the fields above.
    slot.state.store(LIVE, Ordering::Release);
    Some(Registration(index))
}

impl Drop for Registration {
    fn drop(&mut self) {
        SLOTS[self.0].state.store(FREE, Ordering::Release);
    }
}

/// The process-wide SIGBUS handler for ring mappings, configured before it is installed:
/// a fault in a ring mapping prints `PROGRAM: RING: the ring file was truncated ...` on
/// stderr and exits with status 1. Any other SIGBUS kills the process as it would have
/// without the handler. [`install_sigbus_handler`] installs it with the defaults.
///
/// ```
/// ringfile::SigbusHandler::new().program("my-service").install().unwrap();
/// ```
#[derive(Clone, Debug)]
#[must_use = "a SigbusHandler does nothing until installed"]
pub struct SigbusHandler {
    program: String,
    json_line: bool,
}

impl Default for SigbusHandler {
    fn default() -> SigbusHandler {
        SigbusHandler::new()
    }
}

impl SigbusHandler {
    /// A handler whose message starts with this program's name (the file name it was run
    /// as), with no JSON line.
    pub fn new() -> SigbusHandler {
        let program = std::env::args_os()
            .next()
            .and_then(|arg0| {
                std::path::Path::new(&arg0)
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "ringfile".to_owned());
        SigbusHandler {
            program,
            json_line: false,
        }
    }

    /// Starts the message with `name` instead (cut to 64 bytes).
    pub fn program(mut self, name: &str) -> SigbusHandler {
        name.clone_into(&mut self.program);
        self
    }

    /// Whether the message is followed by the same as one JSON object on a line of its own,
    /// `{"program":"...","error":"...","exit":1}`: for programs whose standard error ends with
    /// a JSON summary on every exit.
    pub fn json_line(mut self, json_line: bool) -> SigbusHandler {
        self.json_line = json_line;
        self
    }

    /// Installs the handler for the whole process. Call it once, early: it replaces any
    /// SIGBUS handler installed before.
    ///
    /// # Errors
    ///
    /// The error of `sigaction` if the handler cannot be installed.
    pub fn install(self) -> io::Result<()> {
        let program = self.program.as_bytes();
        let mut n = program.len().min(PROGRAM.len());
        while !self.program.is_char_boundary(n) {
            n -= 1;
        }
        for (cell, &byte) in PROGRAM.iter().zip(&program[..n]) {
            cell.store(byte, Ordering::Relaxed);
        }
        PROGRAM_LEN.store(n, Ordering::Relaxed);
        JSON.store(self.json_line, Ordering::Relaxed);
        // SAFETY: sigaction is a plain C struct for which all-zero is valid; we fill in a
        // handler with the SA_SIGINFO signature and an empty mask before passing it to the
        // kernel.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&raw mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, &raw const action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Installs the [`SigbusHandler`] with its defaults: a fault in a ring mapping prints one line
/// naming the program and the ring and exits with status 1.
///
/// ```
/// ringfile::install_sigbus_handler().unwrap();
/// ```
///
/// # Errors
///
/// The error of `sigaction` if the handler cannot be installed.
pub fn install_sigbus_handler() -> io::Result<()> {
    SigbusHandler::new().install()
}

/// The handler: async-signal-safe (atomics, `write`, `_exit`, `sigaction`).
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in &SLOTS {
        if slot.state.load(Ordering::Acquire) != LIVE {
            continue;
        }
        let start = slot.start.load(Ordering::Relaxed);
        let len = slot.len.load(Ordering::Relaxed);
        if addr >= start && addr - start < len {
            report(slot, addr - start);
        }
    }
    // Not ours: restore the default action and return; the faulting access runs again and
    // the process dies of SIGBUS as it would have without us.
    // SAFETY: as in `SigbusHandler::install`; SIG_DFL needs no handler.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&raw mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &raw const action, std::ptr::null_mut());
    }
}

/// A fixed buffer for building the message without allocating.
struct Line {
    buf: [u8; 2048],
    len: usize,
}

impl Line {
    fn push(&mut self, byte: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = byte;
            self.len += 1;
        }
    }
    fn push_all(&mut self, bytes: impl IntoIterator<Item = u8>) {
        for b in bytes {
            self.push(b);
        }
    }
    fn push_number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push_all(digits[i..].iter().copied());
    }
    /// Appends `bytes` as the inside of a JSON string.
    fn push_json(&mut self, bytes: impl IntoIterator<Item = u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in bytes {
            match b {
                b'"' | b'\\' => self.push_all([b'\\', b]),
                0..=0x1f => self.push_all([
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]),
                _ => self.push(b),
            }
        }
    }
    fn write_to_stderr(&self) {
        let mut done = 0;
        while done < self.len {
            // SAFETY: writes initialised bytes of our own buffer to fd 2.
            let n = unsafe {
                libc::write(
                    2,
                    self.buf[done..].as_ptr().cast(),
                    (self.len - done) as libc::size_t,
                )
            };
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
    }
}

/// The message's middle part: `RING: the ring file was truncated ... (SIGBUS at byte N)`.
fn message(line: &mut Line, slot: &Slot, offset: usize, json: bool) {
    let n = slot.name_len.load(Ordering::Relaxed).min(NAME_MAX);
    let name = slot.name[..n].iter().map(|c| c.load(Ordering::Relaxed));
    let text: &[u8] =
        b": the ring file was truncated or replaced by another process while in use (SIGBUS at byte ";
    if json {
        line.push_json(name);
        line.push_json(text.iter().copied());
    } else {
        line.push_all(name);
        line.push_all(text.iter().copied());
    }
    line.push_number(offset);
    line.push(b')');
}

fn report(slot: &Slot, offset: usize) -> ! {
    let program_len = PROGRAM_LEN.load(Ordering::Relaxed).min(PROGRAM.len());
    let program = || {
        PROGRAM[..program_len]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
    };
    let mut line = Line {
        buf: [0; 2048],
        len: 0,
    };
    line.push_all(program());
    line.push_all(*b": ");
    message(&mut line, slot, offset, false);
    line.push(b'\n');
    if JSON.load(Ordering::Relaxed) {
        line.push_all(*b"{\"program\":\"");
        line.push_json(program());
        line.push_all(*b"\",\"error\":\"");
        message(&mut line, slot, offset, true);
        line.push_all(*b"\",\"exit\":1}\n");
    }
    line.write_to_stderr();
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(1) }
}
