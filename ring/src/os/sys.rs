//! Thin, safe wrappers around the Linux system calls the ring needs: futexes, open file
//! description locks, `posix_fallocate`, `memfd_create`, `membarrier` and the monotonic clock.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout`. Returns on a wake-up, a timeout,
/// a signal, or at once when the word no longer holds `expected` (the kernel compares and
/// sleeps atomically, which is what makes the waiting protocol free of lost wake-ups): all
/// of these are `Ok`, and every caller re-checks its condition. An error means the futex
/// could not be used at all (`ENOSYS`: no futex support; `EPERM`: forbidden, by a seccomp
/// filter say).
///
/// The futex is shared (no `FUTEX_PRIVATE_FLAG`): the word lives in a `MAP_SHARED` mapping
/// and the waker is usually another process.
#[cfg_attr(loom, allow(dead_code))] // the model checker emulates futexes
pub(crate) fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    timeout: Option<Duration>,
) -> io::Result<Slept> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(t.subsec_nanos()),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; the timespec
    // pointer is null or points to a live local. FUTEX_WAIT only reads the word.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if rc == 0 {
        return Ok(Slept::Woken);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ETIMEDOUT) => Ok(Slept::TimedOut),
        // The word changed, a signal: "re-check".
        Some(libc::EAGAIN | libc::EINTR) => Ok(Slept::Woken),
        _ => Err(err),
    }
}

/// The `membarrier(2)` commands used (`<linux/membarrier.h>`; `libc` has only the call's
/// number).
#[cfg_attr(loom, allow(dead_code))] // the model checker emulates the barrier
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub(crate) enum Membarrier {
    /// Which commands the kernel supports (a bit mask, bit `1 << cmd`).
    Query = 0,
    /// Make every running thread of every registered process execute a full memory barrier
    /// before the call returns (Linux 4.16).
    GlobalExpedited = 2,
    /// Register this process (its memory map, which `fork` copies and `exec` replaces) for
    /// [`Membarrier::GlobalExpedited`] barriers issued by any process.
    RegisterGlobalExpedited = 4,
}

/// Calls `membarrier(cmd, 0, 0)`: the non-negative result, or why it failed (`ENOSYS`: no
/// such call; `EINVAL`: command not supported; `EPERM`: forbidden, by seccomp say).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn membarrier(cmd: Membarrier) -> io::Result<i32> {
    // SAFETY: membarrier takes two integers and a flags/cpu id of 0; it accesses no memory
    // of ours.
    let rc = unsafe { libc::syscall(libc::SYS_membarrier, cmd as i32, 0u32, 0i32) };
    if rc >= 0 {
        Ok(rc as i32)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How a [`futex_wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(loom, allow(dead_code))] // the model checker's futex never times out
pub(crate) enum Slept {
    /// Woken, the word was no longer `expected`, or a signal: re-check.
    Woken,
    /// The timeout passed with nobody waking the futex.
    TimedOut,
}

/// Wakes every process sleeping in [`futex_wait`] on `word`. An error means the futex could
/// not be used (as for [`futex_wait`]).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn futex_wake(word: &AtomicU32) -> io::Result<()> {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access memory through it
    // beyond hashing its address.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if rc >= 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One futex of a [`futex_waitv`] call: sleep while `word` holds `expected`. Shared, as
/// every futex here (woken by [`futex_wake`]).
#[cfg(all(feature = "async", not(loom)))]
pub(crate) struct WaitOn<'a> {
    pub(crate) word: &'a AtomicU32,
    pub(crate) expected: u32,
}

/// Sleeps until any of `futexes` is woken or no longer holds its expected value, or
/// `timeout` passes (Linux 5.16's `futex_waitv`; at most 128 futexes). As [`futex_wait`],
/// every return but an error means "re-check"; `Err` means the call is not available here
/// (`ENOSYS` on older kernels, `EPERM` under a seccomp filter).
#[cfg(all(feature = "async", not(loom)))]
pub(crate) fn futex_waitv(futexes: &[WaitOn<'_>], timeout: Option<Duration>) -> io::Result<()> {
    /// `struct futex_waitv` of `<linux/futex.h>`.
    #[repr(C)]
    struct FutexWaitv {
        val: u64,
        uaddr: u64,
        flags: u32,
        reserved: u32,
    }
    const FUTEX2_SIZE_U32: u32 = 0x02;
    let waiters: Vec<FutexWaitv> = futexes
        .iter()
        .map(|f| FutexWaitv {
            val: u64::from(f.expected),
            uaddr: f.word.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        })
        .collect();
    // The timeout is absolute, on the monotonic clock.
    let deadline = timeout.map(|t| {
        let at = Duration::from_nanos(monotonic_ns()).saturating_add(t);
        libc::timespec {
            tv_sec: at.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(at.subsec_nanos()),
        }
    });
    let deadline_ptr = deadline
        .as_ref()
        .map_or(std::ptr::null(), std::ptr::from_ref);
    // SAFETY: `waiters` is a live array of `waiters.len()` kernel `futex_waitv` structs, each
    // naming an aligned u32 that the caller's borrows keep mapped for the whole call; the
    // timespec pointer is null or points to a live local. The kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            waiters.as_ptr(),
            waiters.len() as libc::c_uint,
            0u32,
            deadline_ptr,
            libc::CLOCK_MONOTONIC,
        )
    };
    if rc >= 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN | libc::ETIMEDOUT | libc::EINTR) => Ok(()),
        _ => Err(err),
    }
}

fn ofd_lock_request(file: &File, byte: u64, cmd: libc::c_int) -> io::Result<libc::flock> {
    ofd_lock_request_fd(file.as_raw_fd(), byte, cmd)
}

fn ofd_lock_request_fd(
    fd: std::os::fd::RawFd,
    byte: u64,
    cmd: libc::c_int,
) -> io::Result<libc::flock> {
    // SAFETY: flock is a plain C struct for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    fl.l_pid = 0; // required to be 0 for OFD locks
                  // SAFETY: `fl` is a valid flock the kernel reads (SETLK) or overwrites (GETLK);
                  // a descriptor that is not open (or not ours) makes fcntl fail, touching no memory.
    let rc = unsafe { libc::fcntl(fd, cmd, &raw mut fl) };
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
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes an exclusive open-file-description lock on one byte of `file`, waiting while
/// another description holds it (retrying when a signal interrupts the wait). For locks
/// held only for an instant by a live process: the kernel frees one whose holder dies.
pub(crate) fn ofd_lock_wait(file: &File, byte: u64) -> io::Result<()> {
    loop {
        match ofd_lock_request(file, byte, libc::F_OFD_SETLKW) {
            Ok(_) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Releases a lock taken with [`ofd_try_lock`] through the same description.
pub(crate) fn ofd_unlock(file: &File, byte: u64) -> io::Result<()> {
    // SAFETY: flock is a plain C struct for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_UNLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    // SAFETY: the fd is open for the lifetime of `file`; `fl` is a valid flock.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &raw mut fl) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether an open file description other than `file`'s holds a lock on `byte`.
pub(crate) fn ofd_is_locked(file: &File, byte: u64) -> io::Result<bool> {
    let fl = ofd_lock_request(file, byte, libc::F_OFD_GETLK)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Whether the open file description behind descriptor `fd` — if `fd` refers to the same
/// file as `file` — holds the lock on `byte` that `file`'s description was refused: it sees
/// the byte unlocked (a description never conflicts with its own lock) while `file`'s sees it
/// locked. `fd` may have been closed or reused meanwhile: then it is another file, or an
/// error, and the answer is false.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn holds_lock(fd: std::os::fd::RawFd, file: &File, byte: u64) -> bool {
    fn identity(fd: std::os::fd::RawFd) -> Option<(u64, u64)> {
        // SAFETY: all-zero is a valid `stat`, which fstat overwrites; a bad descriptor only
        // makes it fail.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        (unsafe { libc::fstat(fd, &raw mut st) } == 0).then_some((st.st_dev, st.st_ino))
    }
    identity(fd).is_some_and(|id| Some(id) == identity(file.as_raw_fd()))
        && ofd_lock_request_fd(fd, byte, libc::F_OFD_GETLK)
            .is_ok_and(|fl| fl.l_type == libc::F_UNLCK as libc::c_short)
}

/// Reserves storage for the first `len` bytes of `file`, so that a full file system is
/// reported now and not as a SIGBUS when a page of the mapping is first touched. Idempotent
/// and cheap where the space is already reserved.
///
/// This is the `fallocate(2)` system call itself, never glibc's `posix_fallocate` emulation,
/// which writes a zero byte into each block that reads as zero — on a live ring, racing the
/// producer's writes. `Ok(false)` where the file system cannot reserve space (EOPNOTSUPP):
/// the file is still sized, and a full file system shows only when pages are written.
pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<bool> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    loop {
        // SAFETY: plain system call on an open descriptor; mode 0 only allocates, it never
        // changes the file's contents.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EOPNOTSUPP) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Opens an unnamed regular file in `dir` (`O_TMPFILE`), readable and writable, with
/// permission bits `mode` (through the umask). `Ok(None)` where the file system or kernel
/// does not support it.
pub(crate) fn open_tmpfile(dir: &std::path::Path, mode: u32) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(mode)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir)
    {
        Ok(file) => Ok(Some(file)),
        // EOPNOTSUPP: the file system lacks O_TMPFILE; EISDIR: the kernel predates it (it
        // sees O_DIRECTORY and a directory); EINVAL: either, on some kernels.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Gives the unnamed file `file` (from [`open_tmpfile`]) the name `path`, atomically: fails
/// with `AlreadyExists` if anything is there. Goes through `/proc/self/fd`, which needs no
/// privilege (`AT_EMPTY_PATH` would need `CAP_DAC_READ_SEARCH`).
pub(crate) fn link_fd(file: &File, path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .expect("no NUL in a /proc path");
    let to = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: both are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates an anonymous memory file (close-on-exec, sealable) named `name` for debugging
/// purposes.
pub(crate) fn memfd(name: &str) -> io::Result<File> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "memfd name contains NUL"))?;
    // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
    let fd =
        unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Seals a memfd's size (`F_SEAL_SHRINK | F_SEAL_GROW`): nobody, in any process, can truncate
/// it any more, so a mapping of it can never fault with SIGBUS.
pub(crate) fn seal_size(file: &File) -> io::Result<()> {
    // SAFETY: plain fcntl on an open descriptor.
    let rc = unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process on the machine, so a
/// timestamp taken by one process can be compared with one taken by another.
#[must_use]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// This process's id.
pub(crate) fn pid() -> u32 {
    std::process::id()
}

/// This process's effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
