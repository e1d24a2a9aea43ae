//! How a side waits for data or space: spinning, yielding, sleeping on a futex, or spinning
//! briefly and then sleeping (adaptive, the default).
//!
//! # The sleep/wake protocol
//!
//! Each side has a *sleeping* word in the control block. A side that goes to sleep:
//!
//! 1. stores 1 in its sleeping word,
//! 2. issues a full barrier (see below),
//! 3. re-checks the condition it waits for (a new tail, or a new head) and stops if it holds,
//! 4. sleeps on the futex while the word is still 1 (the kernel checks and sleeps atomically).
//!
//! The other side, after every store of its position:
//!
//! 1. issues a full barrier,
//! 2. loads the sleeper's word, and only if it is 1, swaps it to 0 and makes the wake system call.
//!
//! The two barriers order "store flag, load position" against "store position, load flag": in
//! every interleaving at least one side sees the other's store. Either the sleeper sees the new
//! position in step 3 and does not sleep, or the waker sees the flag and wakes it — and
//! because the waker sets the word to 0 *before* waking, a sleeper that reaches step 4 late
//! finds the word changed and does not sleep. No wake-up is ever lost, and a side that is
//! not asleep costs the other side no system call.
//!
//! The barriers are a `SeqCst` fence on each side, or, where the kernel allows, an asymmetric
//! pair: a global `membarrier` issued by the sleeper, and nothing but a compiler barrier on
//! the waker's path, which runs for every message (the `barrier` module).
//!
//! # Without futexes
//!
//! A process may be unable to use futexes: a seccomp filter that forbids them (`EPERM`), or
//! a kernel without them (`ENOSYS`). The first failed call is recorded
//! ([`futex_fallback`] then says why) and from then on a side that would sleep on the futex
//! naps instead (`nanosleep`, 50 µs doubling up to 1 ms, re-checking after each nap):
//! waiting still costs almost no CPU and every wait still ends, at the price of up to a
//! millisecond of latency per wake-up. A peer that can use futexes is not woken by this
//! process any more; its sleeps end at their timeout slices (at most [`IDLE_CHECK`]), so it
//! too never waits for good, only longer. Never a silent busy loop: the programs print a
//! warning once when it happens.

use crate::error::{Error, Result};
use crate::format::layout::{FanoutWake, WaitWords};
use crate::os::sync::{AtomicU32, Ordering};
use crate::os::sys::Slept;
use crate::protocol::barrier::{self, SleepBarrier};
use crate::store::region::Region;
use crossbeam_utils::Backoff;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::atomic::AtomicI32;
use std::time::{Duration, Instant};

/// The error number of the first futex call that failed in this process (0: none failed).
static FUTEX_ERRNO: AtomicI32 = AtomicI32::new(0);

/// Why this process cannot use futexes, if a futex call has failed; `None` while futexes
/// work (or were not needed yet).
///
/// A process may be unable to use futexes: a seccomp filter forbids them (`EPERM`), or the
/// kernel lacks them (`ENOSYS`). The first failure is recorded here, and from then on a
/// side that would sleep on the futex ([`WaitStrategy::Park`], [`WaitStrategy::Adaptive`])
/// naps instead — 50 µs, doubling up to 1 ms, re-checking after each nap. Waiting still
/// costs almost no CPU and every wait still ends, at the price of up to a millisecond of
/// latency per wake-up. A peer in another process that can use futexes is no longer woken
/// by this one; its sleeps end at their 100 ms slices, so it too never waits for good, only
/// longer. It never becomes a silent busy loop: call this to tell your users (the
/// `producer` and `consumer` programs print a warning once).
///
/// ```
/// // Normally futexes work:
/// assert!(ringfile::diagnostics::futex_fallback().is_none());
/// ```
pub fn futex_fallback() -> Option<io::Error> {
    match FUTEX_ERRNO.load(Ordering::Relaxed) {
        0 => None,
        errno => Some(io::Error::from_raw_os_error(errno)),
    }
}

#[cfg_attr(loom, allow(dead_code))]
fn futex_failed(err: &io::Error) {
    let errno = err.raw_os_error().unwrap_or(libc::ENOSYS);
    let _ = FUTEX_ERRNO.compare_exchange(0, errno, Ordering::Relaxed, Ordering::Relaxed);
}

fn futex_broken() -> bool {
    FUTEX_ERRNO.load(Ordering::Relaxed) != 0
}

pub(crate) use crate::protocol::barrier::{FIRST_NAP, LONGEST_NAP};

/// How a producer waits for space and a consumer waits for data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

/// Spinning reads the clock only this often: a clock read costs tens of spins.
const SPINS_PER_CLOCK_READ: u32 = 256;

/// Runs `store` (this side's position store), then wakes the side waiting on `words` (whose
/// role's pid word is `holder`) if it is asleep.
#[inline]
pub(crate) fn store_and_wake(
    region: &Region,
    words: &WaitWords,
    holder: &AtomicU32,
    store: impl FnOnce(),
) {
    // The barrier between the store and the flag load is `store_then_wake`'s (see the
    // module docs).
    barrier::store_then_wake(region, words, holder, store, || wake_sleeper(region, words));
}

/// [`store_and_wake`] once the flag said a sleeper may be there: out of line (rare, and a
/// system call when it happens), so that the common path stays small.
#[cold]
#[inline(never)]
fn wake_sleeper(region: &Region, words: &WaitWords) {
    // Relaxed swap: the swap to 0 happens before the wake so that a late sleeper finds the
    // word changed.
    if words.sleeping.swap(0, Ordering::Relaxed) != 0 && !futex_broken() {
        futex_wake(region, &words.sleeping);
    }
}

/// Runs `store` (the producer's tail store), then wakes every consumer of a ring with
/// consumer slots that announced a sleep on `wake`: one check, and at most one system call
/// however many sleep.
///
/// The sleepers' side is [`Words::Among`] in `park`: a sleeper reads `wake_seq`, raises
/// `sleeping`, fences and re-checks the tail, then sleeps while `wake_seq` is unchanged. The
/// two `SeqCst` fences order "raise the flag, load the tail" against "store the tail, load
/// the flag": either the sleeper sees the new tail, or we see a raised flag and bump
/// `wake_seq` after the sleeper read it, so its futex wait returns at once or is woken. The
/// flag is cleared only here, never by a sleeper (another consumer may be asleep behind it);
/// a flag left raised by a sleeper that found data costs one wake-up call for nobody.
#[inline]
pub(crate) fn store_and_wake_all(region: &Region, wake: &FanoutWake, store: impl FnOnce()) {
    store();
    // SeqCst fence: pairs with the sleeper's fence (above).
    crate::os::sync::fence(Ordering::SeqCst);
    if wake.sleeping.load(Ordering::Relaxed) != 0 {
        wake_all(region, wake);
    }
}

#[cold]
fn wake_all(region: &Region, wake: &FanoutWake) {
    wake.sleeping.swap(0, Ordering::SeqCst);
    wake.wake_seq.fetch_add(1, Ordering::SeqCst);
    if !futex_broken() {
        futex_wake(region, &wake.wake_seq);
    }
}

/// Where a waiting side announces its sleeps.
#[derive(Clone, Copy)]
pub(crate) enum Words<'a> {
    /// Its own waiting words (the producer; the consumer of a ring with one slot), with its
    /// barrier declaration.
    Own(&'a WaitWords),
    /// The consumers' shared wake-up words of a ring with consumer slots (see
    /// [`store_and_wake_all`]); always fenced.
    Among(&'a FanoutWake),
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
/// (`Error::Timeout`), or `poll` fails. `words` are this side's waiting words, announced
/// with `sleep_barrier`.
pub(crate) fn wait_until<T>(
    strategy: WaitStrategy,
    region: &Region,
    words: Words<'_>,
    sleep_barrier: &mut SleepBarrier,
    deadline: Option<Instant>,
    mut poll: impl FnMut(Probe) -> Result<Option<T>>,
) -> Result<T> {
    let backoff = Backoff::new();
    let mut spins: u32 = 0;
    let mut next_idle: Option<Instant> = None;
    let mut nap = FIRST_NAP;
    let mut slice = FIRST_NAP;
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
        // The model checker must see the same steps in every run: no clock there (timeouts
        // and the idle duty are not modelled).
        if !cfg!(loom) && (parking || spins.is_multiple_of(SPINS_PER_CLOCK_READ)) {
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
            let sleep = Sleep {
                timeout: sleep_for,
                nap: &mut nap,
                slice: &mut slice,
            };
            if let Some(value) = park(region, words, sleep_barrier, &mut poll, sleep)? {
                return Ok(value);
            }
        } else if strategy == WaitStrategy::Spin {
            std::hint::spin_loop();
        } else {
            backoff.snooze();
        }
    }
}

/// How long one sleep may last.
struct Sleep<'a> {
    /// At most this long.
    timeout: Duration,
    /// The nap where futexes cannot be used (grows).
    nap: &'a mut Duration,
    /// The slice while the waker may not fence yet (grows; see `SleepBarrier::announce`).
    slice: &'a mut Duration,
}

/// One sleep: announce it, re-check, sleep at most `sleep.timeout` (or nap, where futexes
/// cannot be used). Returns what the re-check found, if anything.
fn park<T>(
    region: &Region,
    words: Words<'_>,
    sleep_barrier: &mut SleepBarrier,
    poll: &mut impl FnMut(Probe) -> Result<Option<T>>,
    sleep: Sleep<'_>,
) -> Result<Option<T>> {
    let words = match words {
        Words::Own(words) => words,
        Words::Among(wake) => return park_among(region, wake, poll, sleep),
    };
    let word = &words.sleeping;
    // A read-modify-write rather than a plain store (on x86 both are one locked or plain
    // store to the same line; this is the slow path anyway): it reads the latest value of
    // the word, so it is ordered after the waker's `swap(0)` of an earlier wake-up in every
    // model of memory, loom's included. With a plain store loom may place our 1 before that
    // swap (which then erases it), and reports a deadlock no machine can reach.
    word.swap(1, Ordering::Relaxed);
    // The full barrier between the flag store and the re-check's position load (see the
    // module docs); it may limit the sleep while the waker is switching to fences.
    let limit = sleep_barrier.announce(region, words, sleep.slice);
    let found = poll(Probe::Ready);
    if !matches!(found, Ok(None)) {
        lower(word);
        return found;
    }
    let timeout = limit.map_or(sleep.timeout, |limit| limit.min(sleep.timeout));
    match if futex_broken() {
        None
    } else if cfg!(loom) && limit.is_some() {
        // The model checker has no clock: a sleep limited to a slice is a re-check.
        loom_yield();
        Some(Slept::Woken)
    } else {
        futex_wait(region, word, 1, timeout)
    } {
        None => {
            std::thread::sleep((*sleep.nap).min(timeout));
            *sleep.nap = (*sleep.nap * 2).min(LONGEST_NAP);
        }
        // Slept the whole slice with our flag still up — no waker saw it — yet what we wait
        // for is there: a wake-up that never came (a peer that cannot use futexes, or a
        // protocol failure, or a waker that skipped its fence while this side was switching
        // back to fences, which the short slice bounds). Counted for `late_wakeups`.
        Some(Slept::TimedOut)
            if word.load(Ordering::Relaxed) == 1 && !matches!(poll(Probe::Ready), Ok(None)) =>
        {
            LATE_WAKEUPS.fetch_add(1, Ordering::Relaxed);
        }
        Some(_) => {}
    }
    lower(word);
    Ok(None)
}

/// Lowers a sleeper's own flag after its sleep. A read-modify-write, as the raise is: on x86
/// a locked instruction where a store would do, after a sleep or a re-check that found what
/// it waited for, so it costs nothing that counts. Loom needs it: it can order a plain store
/// against a concurrent read-modify-write of the same word (a waker's `swap(0)`) in a way
/// no machine can (tokio-rs/loom issues 254, 389), and then let this side's next re-raise be
/// read as 0 by its own futex check, reporting a lost wake-up that cannot happen.
fn lower(word: &AtomicU32) {
    word.swap(0, Ordering::Relaxed);
}

/// One sleep of a consumer among several (see [`store_and_wake_all`] for the protocol).
fn park_among<T>(
    region: &Region,
    wake: &FanoutWake,
    poll: &mut impl FnMut(Probe) -> Result<Option<T>>,
    sleep: Sleep<'_>,
) -> Result<Option<T>> {
    let seq = wake.wake_seq.load(Ordering::SeqCst);
    // A read-modify-write, as in `park`, so that it is ordered after the waker's swap(0).
    wake.sleeping.swap(1, Ordering::SeqCst);
    // SeqCst fence: pairs with the waker's fence in `store_and_wake_all`.
    crate::os::sync::fence(Ordering::SeqCst);
    let found = poll(Probe::Ready);
    if !matches!(found, Ok(None)) {
        // The flag stays up: another consumer may be asleep behind it (the waker clears it).
        return found;
    }
    if futex_broken() || futex_wait(region, &wake.wake_seq, seq, sleep.timeout).is_none() {
        std::thread::sleep((*sleep.nap).min(sleep.timeout));
        *sleep.nap = (*sleep.nap * 2).min(LONGEST_NAP);
    }
    Ok(None)
}

#[cfg(loom)]
fn loom_yield() {
    loom::thread::yield_now();
}

#[cfg(not(loom))]
fn loom_yield() {}

/// Sleeps of this process that ran to the end of their slice although what they waited for
/// had arrived and no waker had seen them asleep. See [`late_wakeups`].
static LATE_WAKEUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times a side of this process slept through a wake-up that never came: it slept
/// a whole slice (at most 100 ms, or its timeout) with its sleeping flag still raised —
/// nobody had seen it asleep — although the data or room it waited for had arrived. Always 0
/// between processes that can use futexes (the waiting protocol loses no wake-up); it grows
/// when a peer cannot use futexes (see [`futex_fallback`]), whose wake-ups arrive only with
/// the next slice. It may also grow, rarely, while a side switches from the asymmetric fence
/// back to full fences (its membarrier call failed, see [`membarrier_fallback`](crate::diagnostics::membarrier_fallback)):
/// its sleeps are then sliced to at most 1 ms until the peer confirms the switch. A
/// diagnostic, and what the stress tests check.
///
/// ```
/// assert_eq!(ringfile::diagnostics::late_wakeups(), 0);
/// ```
pub fn late_wakeups() -> u64 {
    LATE_WAKEUPS.load(Ordering::Relaxed)
}

/// Sleeps on the futex; `None` if futexes cannot be used (recorded for [`futex_fallback`]).
#[cfg(not(loom))]
fn futex_wait(
    _region: &Region,
    word: &AtomicU32,
    expected: u32,
    timeout: Duration,
) -> Option<Slept> {
    match crate::os::sys::futex_wait(word, expected, Some(timeout)) {
        Ok(slept) => Some(slept),
        Err(e) => {
            futex_failed(&e);
            None
        }
    }
}

#[cfg(not(loom))]
fn futex_wake(_region: &Region, word: &AtomicU32) {
    if let Err(e) = crate::os::sys::futex_wake(word) {
        futex_failed(&e);
    }
}

#[cfg(loom)]
fn futex_wait(
    region: &Region,
    word: &AtomicU32,
    expected: u32,
    _timeout: Duration,
) -> Option<Slept> {
    let guard = region.model.parker.lock.lock().unwrap();
    if word.load(Ordering::SeqCst) == expected {
        drop(region.model.parker.cond.wait(guard).unwrap());
    }
    Some(Slept::Woken)
}

#[cfg(loom)]
fn futex_wake(region: &Region, _word: &AtomicU32) {
    let _guard = region.model.parker.lock.lock().unwrap();
    region.model.parker.cond.notify_all();
}
