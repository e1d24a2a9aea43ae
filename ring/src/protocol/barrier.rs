//! The barrier between "store my position, look whether you sleep" and "say I sleep, look at
//! your position": an asymmetric fence, so that the side that publishes (every message) pays
//! nothing and the side about to sleep (rarely) pays for both.
//!
//! # Why a barrier at all
//!
//! The waking protocol (see the `wait` module) is Dekker's: the waker stores its position
//! then loads the sleeper's flag; the sleeper stores its flag then loads the position. Each
//! side needs a full barrier between its store and its load, or both loads may miss both
//! stores (x86 lets a load pass an older store still in the store buffer) and the sleeper
//! sleeps through the message that should wake it. A full fence (`mfence`, or a locked
//! instruction) on the waker's path runs *per message*, and costs as much as the rest of a
//! small message's send (the report's per-message barrier table measures it).
//!
//! # The asymmetric fence
//!
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` makes every running thread of every process
//! that registered for it (`MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`) execute a full memory
//! barrier before the call returns (by an inter-processor interrupt; a thread that is not
//! running passes one in the context switch). So the waker, if its process registered, keeps
//! only a compiler barrier between its store and its load, and the sleeper calls membarrier
//! between its flag store and its re-check. The interrupt lands on the waker's thread at some
//! point of its program:
//!
//! - before the waker's position store: the sleeper's flag store was globally visible before
//!   the interrupt (membarrier begins with a full barrier), so the waker's later flag load
//!   sees it and the waker wakes the sleeper;
//! - after the waker's flag load: the position store was made visible by the interrupt's
//!   barrier, before the call returned, so the sleeper's re-check sees the position;
//! - in between: the interrupt's barrier is exactly the fence the waker skipped.
//!
//! In every case one side sees the other, as with two fences. The cost moves to the sleeper:
//! a system call of 0.5–7 µs (more with more registered threads running), paid only when it
//! is about to sleep, which is the slow path already (a futex sleep and wake follow).
//!
//! The trade-off: each such sleep interrupts, for a microsecond or two, every CPU that is
//! running a thread of a registered process at that moment — ringfile users, and programs
//! that registered for their own reasons. A waiting side sleeps only after spinning a few
//! microseconds (the adaptive strategy), so this happens at most once per gap in traffic;
//! but a machine with many rings whose consumers sleep between every message (thousands of
//! times a second each) sends that many interrupts. Such a deployment may prefer
//! `RINGFILE_NO_MEMBARRIER=1` (below): a fence per message, no interrupts.
//!
//! # Who may skip the fence
//!
//! Both conditions are needed, and each side can check them:
//!
//! - the waker's own process registered ([`registered`](process::registered)): otherwise no
//!   interrupt reaches it;
//! - the sleeper issues the membarrier. It says so in the ring: after taking its role it
//!   stores its pid in its `membarrier_pid` word (`layout::WaitWords`), and the waker skips the
//!   fence only while that word equals the role's `*_pid` word. A holder that cannot issue
//!   membarrier stores 0 there; so does any program that takes the role and writes its pid
//!   as FORMAT.md asks but knows nothing of this word (the pids differ).
//!
//! # Changing back to fences
//!
//! A side that can no longer rely on the membarrier (its call failed: a seccomp filter
//! installed later, or a new holder of the role that cannot make it) needs the waker to fence
//! again — but a waker may have loaded the old `membarrier_pid` just before and still be
//! between its store and its load, unfenced. So the side stores 0 in `membarrier_pid`,
//! then bumps `fence_request`, and until the waker acknowledges by copying `fence_request`
//! into `fence_ack` it sleeps only in short slices (50 µs, doubling up to 1 ms), so that a
//! wake-up lost meanwhile costs at most a slice, never a hang. The waker acknowledges from a
//! fenced wake-up, after its fence: every earlier unfenced store of its position is then
//! visible to a side that Acquire-loads the acknowledgement, and every later wake-up, which
//! loads `membarrier_pid` after the request that followed the 0, fences.
//!
//! A file can hold anything: forged words can make a waker skip its fence for a sleeper that
//! fences, or a sleeper trust an acknowledgement nobody gave. Either way a wake-up may be
//! late — by at most the sleeper's slice (100 ms) — and nothing worse: the words are only
//! ever compared.
//!
//! Setting `RINGFILE_NO_MEMBARRIER=1` in a process's environment makes it neither register
//! nor issue membarriers (every side fences, as before this protocol existed): a way to
//! measure the difference, or to rule the protocol out.

use crate::format::layout::WaitWords;
use crate::os::sync::{fence, AtomicU32, Ordering};
use crate::store::region::Region;
use std::time::Duration;

/// First and longest nap of a side whose wake-up may not come: one that cannot sleep on a
/// futex, a side whose peer may still skip its fence (this module), an async watcher without
/// `futex_waitv`. Each nap doubles the last.
pub(crate) const FIRST_NAP: Duration = Duration::from_micros(50);
/// See [`FIRST_NAP`].
pub(crate) const LONGEST_NAP: Duration = Duration::from_millis(1);

#[cfg(not(loom))]
mod process {
    //! What this process can do, found out once.

    use crate::os::sys::{self, Membarrier};
    use std::io;
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
    use std::sync::Once;

    /// `1 << cmd` bits of the commands used.
    const NEEDED: i32 =
        1 << Membarrier::GlobalExpedited as i32 | 1 << Membarrier::RegisterGlobalExpedited as i32;

    static INIT: Once = Once::new();
    /// This process registered for global expedited barriers: its threads may skip the
    /// waker's fence. (`fork` keeps the registration; `exec` starts the program anew.)
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    /// The error of the first failed membarrier call (0: none failed; -1: turned off by the
    /// environment).
    static ERRNO: AtomicI32 = AtomicI32::new(0);

    /// Finds out, once per process, whether it can register and issue membarriers.
    pub(crate) fn init() {
        INIT.call_once(|| {
            if std::env::var_os("RINGFILE_NO_MEMBARRIER").is_some_and(|v| v != "0" && !v.is_empty())
            {
                ERRNO.store(-1, Ordering::Relaxed);
                return;
            }
            let supported = match sys::membarrier(Membarrier::Query) {
                Ok(mask) if mask & NEEDED == NEEDED => {
                    sys::membarrier(Membarrier::RegisterGlobalExpedited)
                }
                Ok(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
                Err(e) => Err(e),
            };
            match supported {
                // Relaxed: read by this process's threads only after they attached, which
                // synchronises with this `Once`.
                Ok(_) => REGISTERED.store(true, Ordering::Relaxed),
                Err(e) => failed(&e),
            }
        });
    }

    pub(crate) fn failed(e: &io::Error) {
        let errno = e.raw_os_error().unwrap_or(libc::ENOSYS);
        let _ = ERRNO.compare_exchange(0, errno, Ordering::Relaxed, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn registered() -> bool {
        REGISTERED.load(Ordering::Relaxed)
    }

    /// Whether this process's sleepers should issue membarriers.
    pub(crate) fn can_issue() -> bool {
        ERRNO.load(Ordering::Relaxed) == 0
    }

    pub(crate) fn errno() -> i32 {
        ERRNO.load(Ordering::Relaxed)
    }

    /// Issues the barrier; an error if it could not be.
    pub(crate) fn issue() -> io::Result<()> {
        sys::membarrier(Membarrier::GlobalExpedited).map(drop)
    }
}

/// Why this process does not use the asymmetric fence, if it does not: the error of the
/// failed `membarrier(2)` call (`EPERM` under a seccomp filter that forbids it, `ENOSYS` or
/// `EINVAL` on kernels before 4.16), or a note that `RINGFILE_NO_MEMBARRIER` turned it off.
/// `None` while it is in use (or no ring was attached yet).
///
/// Nothing is lost without it: every publish then runs a full fence, as it must, and a
/// waiting side of this process announces its sleeps with one. It is a diagnostic, for
/// benchmarks and the curious.
///
/// ```
/// // Normally the kernel has it:
/// let ring = ringfile::Ring::memfd(4096)?;
/// let _producer = ring.producer()?;
/// assert!(std::env::var_os("RINGFILE_NO_MEMBARRIER").is_some()
///     || ringfile::diagnostics::membarrier_fallback().is_none());
/// # Ok::<(), ringfile::Error>(())
/// ```
#[must_use]
pub fn membarrier_fallback() -> Option<std::io::Error> {
    #[cfg(not(loom))]
    match process::errno() {
        0 => None,
        -1 => Some(std::io::Error::other(
            "turned off by RINGFILE_NO_MEMBARRIER",
        )),
        errno => Some(std::io::Error::from_raw_os_error(errno)),
    }
    #[cfg(loom)]
    None
}

/// Whether the waker may skip its fence before looking at the sleeper of `words`, whose
/// role's pid word is `holder`.
#[inline]
fn light(region: &Region, words: &WaitWords, holder: &AtomicU32) -> bool {
    #[cfg(not(loom))]
    let registered = {
        let _ = region;
        process::registered()
    };
    #[cfg(loom)]
    let registered = region.model.barrier.config.registered;
    // Relaxed: the values only choose between fencing and not; a stale one is covered by
    // the acknowledgement (module docs).
    let declared = words.membarrier_pid.load(Ordering::Relaxed);
    registered && declared != 0 && declared == holder.load(Ordering::Relaxed)
}

/// The waker's half: runs `store` (the position store), then `wake` if the side of `words`
/// (whose role's pid word is `holder`) announced a sleep — with the barrier between the
/// store and the look that the module docs describe. Both slow paths (the fenced one, and
/// `wake`, which the caller keeps out of line) are the last thing done, so that they compile
/// to jumps and the light path, which runs once per message, needs no stack frame.
#[inline]
pub(crate) fn store_then_wake(
    region: &Region,
    words: &WaitWords,
    holder: &AtomicU32,
    store: impl FnOnce(),
    wake: impl FnOnce(),
) {
    if light(region, words, holder) {
        #[cfg(not(loom))]
        {
            store();
            // The sleeper's membarrier is this side's fence (module docs); the compiler must
            // still keep the load after the store.
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
            if words.sleeping.load(Ordering::Relaxed) != 0 {
                wake();
            }
        }
        // The model checker has no membarrier: it sees the store and the load as one step
        // that the sleeper's barrier (an empty critical section) falls wholly before or
        // after, which is what the interrupt guarantees (module docs).
        #[cfg(loom)]
        {
            region.model.barrier.lock();
            store();
            let sleeping = words.sleeping.load(Ordering::Relaxed) != 0;
            region.model.barrier.unlock();
            if sleeping {
                wake();
            }
        }
    } else {
        store_fence_wake(words, store, wake);
    }
}

/// [`store_then_wake`] without the asymmetric barrier: out of line, so that the light path
/// stays small enough to inline where it is used.
#[cold]
#[inline(never)]
fn store_fence_wake(words: &WaitWords, store: impl FnOnce(), wake: impl FnOnce()) {
    store();
    // SeqCst fence: orders the position store before the flag load; pairs with the
    // sleeper's fence (see the `wait` module).
    fence(Ordering::SeqCst);
    acknowledge(words);
    if words.sleeping.load(Ordering::Relaxed) != 0 {
        wake();
    }
}

/// After a fence: tells a sleeper that asked for fences that it has them from now on.
#[inline]
fn acknowledge(words: &WaitWords) {
    // Acquire: later loads of `membarrier_pid` see the 0 stored before the request.
    let request = words.fence_request.load(Ordering::Acquire);
    if words.fence_ack.load(Ordering::Relaxed) != request {
        // Release: with the fence before it, every position store of this side so far is
        // visible to a sleeper that Acquire-loads the acknowledgement.
        words.fence_ack.store(request, Ordering::Release);
    }
}

/// How a waiting side makes its sleep announcement visible: with the asymmetric barrier, or
/// with a fence the waker must match. Kept by the `Producer` or `Consumer` (it is the role
/// holder's promise, in the ring), shared by its blocking and async waits.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SleepBarrier {
    /// Issues a membarrier before every re-check; the waker may skip its fence.
    Membarrier,
    /// Fences; asked the waker to fence too with `request`, and whether it has said so.
    Fence { request: u32, acked: bool },
}

impl SleepBarrier {
    /// Declares, for the holder of a role that just stored its pid, how it will announce
    /// its sleeps on `words`. The first call in a process finds out (and registers) what the
    /// process can do, before any of its sides publishes.
    pub(crate) fn declare(region: &Region, words: &WaitWords) -> SleepBarrier {
        #[cfg(not(loom))]
        let can = {
            let _ = region;
            process::init();
            process::can_issue()
        };
        #[cfg(loom)]
        let can = region.model.barrier.config.sleeper_can;
        if can {
            // Relaxed: the word publishes no data. A waker that sees it (and our pid in the
            // role's word) skips its fence, which is safe from the moment this side exists:
            // every sleep of this `SleepBarrier` issues the membarrier.
            words
                .membarrier_pid
                .store(crate::os::sys::pid(), Ordering::Relaxed);
            SleepBarrier::Membarrier
        } else {
            Self::ask_for_fences(words)
        }
    }

    /// The barrier of a consumer among several: it always fences, and so does the producer
    /// (`wait::store_and_wake_all`); nothing to declare or acknowledge.
    pub(crate) fn fence_only() -> SleepBarrier {
        SleepBarrier::Fence {
            request: 0,
            acked: true,
        }
    }

    fn ask_for_fences(words: &WaitWords) -> SleepBarrier {
        words.membarrier_pid.store(0, Ordering::Relaxed);
        // Release: a waker that sees the new request sees the 0 above.
        let request = words
            .fence_request
            .fetch_add(1, Ordering::Release)
            .wrapping_add(1);
        SleepBarrier::Fence {
            request,
            acked: false,
        }
    }

    /// The sleeper's barrier, between raising its flag in `words` and re-checking. Returns
    /// the longest the sleep that may follow can last without risking a lost wake-up:
    /// `None` for no limit, or a slice (which grows with `slice`) while the waker may still
    /// skip its fence.
    pub(crate) fn announce(
        &mut self,
        region: &Region,
        words: &WaitWords,
        slice: &mut Duration,
    ) -> Option<Duration> {
        if let SleepBarrier::Membarrier = self {
            if issue(region).is_ok() {
                // The call is a full barrier for this thread too; the fence says so to the
                // compiler and to the model checker.
                fence(Ordering::SeqCst);
                return None;
            }
            *self = Self::ask_for_fences(words);
        }
        // SeqCst fence: orders the flag store before the re-check's position load; pairs
        // with the waker's fence.
        fence(Ordering::SeqCst);
        if let SleepBarrier::Fence { request, acked } = self {
            if !*acked {
                // Acquire: pairs with the waker's Release acknowledgement (module docs).
                *acked = words.fence_ack.load(Ordering::Acquire) == *request;
            }
            if !*acked {
                // Sliced like a nap where a wake-up may not come (see `wait::FIRST_NAP`).
                let this = *slice;
                *slice = (*slice * 2).min(LONGEST_NAP);
                return Some(this);
            }
        }
        None
    }
}

#[cfg(not(loom))]
fn issue(_region: &Region) -> std::io::Result<()> {
    process::issue().inspect_err(process::failed)
}

#[cfg(loom)]
fn issue(region: &Region) -> std::io::Result<()> {
    if region.model.barrier.config.fails {
        return Err(std::io::Error::from_raw_os_error(libc::EPERM));
    }
    region.model.barrier.lock();
    region.model.barrier.unlock();
    Ok(())
}
