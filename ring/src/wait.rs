//! How a side waits for data or space: spinning, yielding, sleeping on a futex, or spinning
//! briefly and then sleeping (adaptive, the default).
//!
//! # The sleep/wake protocol
//!
//! Each side has a *sleeping* word in the control block. A side that goes to sleep:
//!
//! 1. stores 1 in its sleeping word,
//! 2. issues a `SeqCst` fence,
//! 3. re-checks the condition it waits for (a new tail, or a new head) and stops if it holds,
//! 4. sleeps on the futex while the word is still 1 (the kernel checks and sleeps atomically).
//!
//! The other side, after every store of its position:
//!
//! 1. issues a `SeqCst` fence,
//! 2. loads the sleeper's word, and only if it is 1, swaps it to 0 and makes the wake system call.
//!
//! The two fences order "store flag, load position" against "store position, load flag": in
//! every interleaving at least one side sees the other's store. Either the sleeper sees the new
//! position in step 3 and does not sleep, or the waker sees the flag and wakes it — and
//! because the waker sets the word to 0 *before* waking, a sleeper that reaches step 4 late
//! finds the word changed and does not sleep. No wake-up is ever lost, and a side that is
//! not asleep costs the other side no system call.

use crate::error::{Error, Result};
use crate::region::Region;
use crate::sync::{fence, AtomicU32, Ordering};
use crossbeam_utils::Backoff;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How a producer waits for space and a consumer waits for data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WaitStrategy {
    /// Busy-spin on the shared position: the lowest latency, one core at 100% while waiting.
    Spin,
    /// Spin briefly, then `sched_yield` in a loop ([`crossbeam_utils::Backoff`]); still
    /// busy, but lets other threads on the core run.
    Yield,
    /// Sleep in the kernel (futex) at once; no CPU while waiting, a wake-up system call costs
    /// the other side each time this side sleeps.
    Park,
    /// Spin and yield for a few microseconds, then sleep as `Park` does. The default: fast
    /// when traffic is steady, no CPU when idle.
    #[default]
    Adaptive,
}

impl fmt::Display for WaitStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitStrategy::Spin => "spin",
            WaitStrategy::Yield => "yield",
            WaitStrategy::Park => "park",
            WaitStrategy::Adaptive => "adaptive",
        })
    }
}

/// Error from parsing a [`WaitStrategy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseWaitStrategyError(String);

impl fmt::Display for ParseWaitStrategyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown wait strategy '{}' (expected spin, yield, park or adaptive)",
            self.0
        )
    }
}

impl std::error::Error for ParseWaitStrategyError {}

impl FromStr for WaitStrategy {
    type Err = ParseWaitStrategyError;

    /// Parses `spin`, `yield`, `park` or `adaptive`.
    ///
    /// ```
    /// use ringfile::WaitStrategy;
    /// assert_eq!("park".parse::<WaitStrategy>().unwrap(), WaitStrategy::Park);
    /// assert!("nap".parse::<WaitStrategy>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "spin" => Ok(WaitStrategy::Spin),
            "yield" => Ok(WaitStrategy::Yield),
            "park" => Ok(WaitStrategy::Park),
            "adaptive" => Ok(WaitStrategy::Adaptive),
            other => Err(ParseWaitStrategyError(other.to_string())),
        }
    }
}

/// How often a waiting side runs its idle check (the consumer's producer-liveness check),
/// and so the longest a sleeper stays in the kernel without looking around. Ten wake-ups a
/// second cost nothing measurable and bound how long a producer's death goes unnoticed.
pub(crate) const IDLE_CHECK: Duration = Duration::from_millis(100);

/// Spinning reads the clock only this often (a clock read costs ~20 ns, a spin ~1 ns).
const SPINS_PER_CLOCK_READ: u32 = 256;

/// Wakes the side sleeping on `word`, if it is asleep. Called right after this side
/// stored its position.
#[inline]
pub(crate) fn wake_if_sleeping(region: &Region, word: &AtomicU32) {
    // SeqCst fence: orders the caller's position store before the flag load (see the
    // module docs). Without it, x86 may satisfy the load before the store leaves the store
    // buffer, and a sleeper could miss the new position while we miss its flag.
    fence(Ordering::SeqCst);
    // Relaxed load: we only need to see the flag, which the fence pair makes visible; the
    // swap to 0 happens before the wake so that a late sleeper finds the word changed.
    if word.load(Ordering::Relaxed) != 0 && word.swap(0, Ordering::Relaxed) != 0 {
        futex_wake(region, word);
    }
}

/// What [`wait_until`] asks of its caller's closure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Check the condition waited for; `Some` ends the wait.
    Ready,
    /// Periodic duty while waiting (about every [`IDLE_CHECK`]), such as checking that the
    /// other side is alive; `Some` or an error ends the wait.
    Idle,
}

/// Waits, as `strategy` says, until `poll(Probe::Ready)` yields a value, `deadline` passes
/// (`Error::Timeout`), or `poll` fails. `word` is this side's sleeping word.
pub(crate) fn wait_until<T>(
    strategy: WaitStrategy,
    region: &Region,
    word: &AtomicU32,
    deadline: Option<Instant>,
    mut poll: impl FnMut(Probe) -> Result<Option<T>>,
) -> Result<T> {
    let backoff = Backoff::new();
    let mut spins: u32 = 0;
    let mut next_idle: Option<Instant> = None;
    loop {
        if let Some(value) = poll(Probe::Ready)? {
            return Ok(value);
        }
        let parking = match strategy {
            WaitStrategy::Park => true,
            WaitStrategy::Adaptive => backoff.is_completed() || cfg!(loom),
            WaitStrategy::Spin | WaitStrategy::Yield => false,
        };
        spins = spins.wrapping_add(1);
        let mut sleep_for = IDLE_CHECK;
        if parking || spins.is_multiple_of(SPINS_PER_CLOCK_READ) {
            let now = Instant::now();
            if let Some(deadline) = deadline {
                if now >= deadline {
                    // Before giving up, do the idle duty once: a caller that waits in short
                    // slices (to look for signals, say) must still learn that its peer died.
                    if let Some(value) = poll(Probe::Idle)? {
                        return Ok(value);
                    }
                    return Err(Error::Timeout);
                }
                sleep_for = sleep_for.min(deadline - now);
            }
            match next_idle {
                None => next_idle = Some(now + IDLE_CHECK),
                Some(at) if now >= at => {
                    if let Some(value) = poll(Probe::Idle)? {
                        return Ok(value);
                    }
                    next_idle = Some(now + IDLE_CHECK);
                }
                Some(at) => sleep_for = sleep_for.min(at - now),
            }
        }
        if parking {
            if let Some(value) = park(region, word, &mut poll, sleep_for)? {
                return Ok(value);
            }
        } else if strategy == WaitStrategy::Spin {
            std::hint::spin_loop();
        } else {
            backoff.snooze();
        }
    }
}

/// One sleep: announce it, re-check, sleep at most `timeout`. Returns what the re-check
/// found, if anything.
fn park<T>(
    region: &Region,
    word: &AtomicU32,
    poll: &mut impl FnMut(Probe) -> Result<Option<T>>,
    timeout: Duration,
) -> Result<Option<T>> {
    word.store(1, Ordering::Relaxed);
    // SeqCst fence: orders the flag store before the re-check's position load; pairs with
    // the fence in `wake_if_sleeping` (see the module docs).
    fence(Ordering::SeqCst);
    let found = poll(Probe::Ready);
    if !matches!(found, Ok(None)) {
        word.store(0, Ordering::Relaxed);
        return found;
    }
    futex_wait(region, word, 1, timeout);
    word.store(0, Ordering::Relaxed);
    Ok(None)
}

#[cfg(not(loom))]
fn futex_wait(_region: &Region, word: &AtomicU32, expected: u32, timeout: Duration) {
    crate::sys::futex_wait(word, expected, Some(timeout));
}

#[cfg(not(loom))]
fn futex_wake(_region: &Region, word: &AtomicU32) {
    crate::sys::futex_wake(word);
}

/// A futex stand-in the model checker understands: the compare-and-sleep happens under a
/// mutex that the waker also takes, which gives it the kernel's atomicity. Timeouts are not
/// modelled (a lost wake-up shows up as a deadlock, which loom reports).
#[cfg(loom)]
#[derive(Default)]
pub(crate) struct LoomParker {
    lock: loom::sync::Mutex<()>,
    cond: loom::sync::Condvar,
}

#[cfg(loom)]
fn futex_wait(region: &Region, word: &AtomicU32, expected: u32, _timeout: Duration) {
    let guard = region.parker.lock.lock().unwrap();
    if word.load(Ordering::SeqCst) == expected {
        drop(region.parker.cond.wait(guard).unwrap());
    }
}

#[cfg(loom)]
fn futex_wake(region: &Region, _word: &AtomicU32) {
    let _guard = region.parker.lock.lock().unwrap();
    region.parker.cond.notify_all();
}
