//! What a `fork(2)` does to the roles: a child inherits every descriptor, and with them the
//! role locks (an open file description lock belongs to the description, which parent and
//! child then share). A child that lived on after its parent died would keep the parent's
//! role taken, so the parent's death would go unnoticed.
//!
//! So every descriptor that holds a role is registered here, and a `pthread_atfork` child
//! handler points each of them, in the child only, at a fresh description of the same file
//! that holds no lock (`open("/proc/self/fd/N")` then `dup3` over `N`). The parent's lock
//! is then held by the parent alone. The handler also bumps a fork generation, which role
//! guards compare with the one they were taken in: a guard inherited through `fork` has no
//! effect on the ring when dropped.
//!
//! Until the child first runs, its copies still share the parent's descriptions. A role the
//! parent drops in that window is freed anyway, because the role guard unlocks through the
//! description before closing it (see `roles`); only a parent that *dies* in that window
//! (killed, so no guard runs) leaves its roles taken until the child runs its handler.
//!
//! The registry is a fixed table of atomics, so the handler (which runs in a child that may
//! have been forked while another thread held any lock) takes no lock and allocates nothing.
//! Roles beyond [`SLOTS`] held at once by one process are not redirected in a child (their
//! guards still do nothing there); `fork_generation` covers them all.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Once;

/// Role descriptors one process can have registered at once.
pub(crate) const SLOTS: usize = 256;

const EMPTY: i32 = -1;

#[allow(clippy::declare_interior_mutable_const)] // used only to initialise the table
const EMPTY_SLOT: AtomicI32 = AtomicI32::new(EMPTY);
static TABLE: [AtomicI32; SLOTS] = [EMPTY_SLOT; SLOTS];

/// Incremented in every forked child (by the atfork handler).
static GENERATION: AtomicU32 = AtomicU32::new(0);

static INSTALL: Once = Once::new();

/// The fork generation of this process: 0 in a process that was not forked from one using
/// ringfile, one more in each forked generation.
#[inline]
pub(crate) fn generation() -> u32 {
    GENERATION.load(Ordering::Relaxed)
}

/// The descriptors registered now: those that hold (or are about to hold) this process's
/// role locks. One may be closed just after it is read.
pub(crate) fn registered() -> impl Iterator<Item = RawFd> {
    TABLE
        .iter()
        .map(|slot| slot.load(Ordering::Acquire))
        .filter(|&fd| fd != EMPTY)
}

/// A descriptor registered for redirection in forked children; unregistered on drop
/// (before the caller closes the descriptor).
pub(crate) struct Registration {
    slot: Option<usize>,
}

/// Registers `fd`, which holds (or is about to hold) a role lock.
pub(crate) fn register(fd: RawFd) -> Registration {
    INSTALL.call_once(|| {
        // SAFETY: `child` is an `extern "C" fn()` that stays valid for the life of the
        // process and, as pthread_atfork requires of a child handler, only makes
        // async-signal-safe calls.
        unsafe { libc::pthread_atfork(None, None, Some(child)) };
    });
    let slot = TABLE.iter().position(|slot| {
        slot.compare_exchange(EMPTY, fd, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    });
    Registration { slot }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            // Before the descriptor is closed: a child forked after this sees the slot empty,
            // one forked before it sees a descriptor that is still open.
            TABLE[slot].store(EMPTY, Ordering::Release);
        }
    }
}

/// The atfork child handler: runs in the new child, single-threaded, before `fork` returns.
extern "C" fn child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    for slot in &TABLE {
        let fd = slot.load(Ordering::Acquire);
        if fd != EMPTY {
            redirect(fd);
        }
    }
}

/// Points `fd` at a new open file description of the same file, which holds no lock.
fn redirect(fd: RawFd) {
    // "/proc/self/fd/" and up to 10 digits and a NUL, built without allocating.
    let mut path = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0";
    let prefix = b"/proc/self/fd/".len();
    let mut digits = [0u8; 10];
    let mut n = fd as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        path[prefix + i] = digits[len - 1 - i];
    }
    // SAFETY: `path` is NUL-terminated (the array ends in zeros past the digits); open, dup3
    // and close are async-signal-safe and touch no memory of ours but `path`.
    unsafe {
        let fresh = libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC);
        if fresh >= 0 {
            libc::dup3(fresh, fd, libc::O_CLOEXEC);
            libc::close(fresh);
        } else {
            // No /proc: give the child's descriptor up entirely (the parent's lock is then
            // the parent's alone). The child's guard closes whatever this number refers to
            // later, which is /dev/null or, if even that failed, nothing it owns.
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            if null >= 0 {
                libc::dup3(null, fd, libc::O_CLOEXEC);
                libc::close(null);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redirect_builds_the_proc_path_of_any_descriptor() {
        // Exercised for real by the fork tests; here only that registration hands out and
        // takes back slots.
        let a = super::register(1000);
        let b = super::register(1001);
        assert_ne!(a.slot, b.slot);
        let slot = a.slot;
        drop(a);
        let c = super::register(1002);
        assert_eq!(c.slot, slot);
    }
}
