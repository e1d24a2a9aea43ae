//! Thin, safe wrappers around the Linux system calls the ring needs: futexes, open file
//! description locks, `posix_fallocate`, `memfd_create` and the monotonic clock.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout`. Returns on a wake-up, a timeout,
/// a signal, or at once when the word no longer holds `expected` (the kernel compares and
/// sleeps atomically, which is what makes the waiting protocol free of lost wake-ups).
///
/// The futex is shared (no `FUTEX_PRIVATE_FLAG`): the word lives in a `MAP_SHARED` mapping
/// and the waker is usually another process.
#[cfg_attr(loom, allow(dead_code))] // the model checker emulates futexes
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; the timespec
    // pointer is null or points to a live local. FUTEX_WAIT only reads the word. Errors
    // (EAGAIN: value changed, ETIMEDOUT, EINTR) all mean "re-check", which every caller does.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every process sleeping in [`futex_wait`] on `word`.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access memory through it
    // beyond hashing its address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

fn ofd_lock_request(file: &File, byte: u64, cmd: libc::c_int) -> io::Result<libc::flock> {
    // SAFETY: flock is a plain C struct for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    fl.l_pid = 0; // required to be 0 for OFD locks
                  // SAFETY: the fd is open for the lifetime of `file`; `fl` is a valid flock the kernel
                  // reads (SETLK) or overwrites (GETLK).
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fl)
    }
}

/// Takes an exclusive open-file-description lock on one byte of `file`, without waiting.
/// Returns `Ok(false)` when another open file description holds it. The kernel drops the
/// lock when the last descriptor of this description is closed — in particular when the
/// holding process dies, however it dies.
pub(crate) fn ofd_try_lock(file: &File, byte: u64) -> io::Result<bool> {
    match ofd_lock_request(file, byte, libc::F_OFD_SETLK) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether an open file description other than `file`'s holds a lock on `byte`.
pub(crate) fn ofd_is_locked(file: &File, byte: u64) -> io::Result<bool> {
    let fl = ofd_lock_request(file, byte, libc::F_OFD_GETLK)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Reserves `len` bytes of storage for `file`, so that a full file system is reported now
/// and not as a SIGBUS when a page of the mapping is first touched.
pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        // File systems without fallocate support: the file is still sized by set_len.
        libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Creates an anonymous memory file (close-on-exec) named `name` for debugging purposes.
pub(crate) fn memfd(name: &str) -> io::Result<File> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "memfd name contains NUL"))?;
    // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process on the machine, so a
/// timestamp taken by one process can be compared with one taken by another.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// This process's id.
pub(crate) fn pid() -> u32 {
    std::process::id()
}
