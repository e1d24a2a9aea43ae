//! Waiting without a thread per ring: the futex words of every ring that an async task waits
//! on are watched by one thread per process (a pool of them past 127 words), which wakes the
//! task when its peer wakes the word.
//!
//! # Why a watcher thread
//!
//! A side waits on a futex word in the ring file, which epoll cannot watch; an eventfd would
//! have to be passed to the peer (an unrelated process) and every peer, blocking ones
//! included, would have to learn to signal it; polling with back-off either burns CPU or
//! wakes late. A thread that sleeps on many futex words at once (`futex_waitv`, Linux 5.16)
//! needs nothing from the peer: a blocking producer's ordinary wake-up of the consumer's word
//! wakes the watcher, which wakes the task. It costs one sleeping thread per process,
//! whatever the number of rings, and no CPU while nothing happens.
//!
//! # Why no wake-up is lost
//!
//! A task announces its sleep exactly as a blocking side does (see `wait`): it sets its
//! sleeping word to 1, issues the full barrier (a fence or a membarrier, see `barrier`),
//! re-checks the ring, and only then registers the word here. The watcher sleeps on the word
//! with expected value 1. A peer that publishes after the re-check sees the 1 (the barrier
//! pair), swaps it to 0 and wakes the futex: if the
//! watcher is asleep on it, the wake-up wakes it; if it is not asleep yet, the kernel finds
//! the word is no longer 1 when the watcher gets there and returns at once. Either way the
//! watcher then sees a word that is not 1 and fires the task. New registrations ring a
//! process-private "bell" futex that the watcher also sleeps on, read before it collects
//! them, so a registration made while it goes to sleep wakes it too.
//!
//! Every registration is also fired after [`IDLE_CHECK`] at most, so that a waiting consumer
//! notices a producer that died (as blocking waits do); sooner while the peer may still skip
//! its fence (`SleepBarrier::announce`), as a blocking sleep is sliced then.
//!
//! # Without `futex_waitv`
//!
//! On older kernels (or under a seccomp filter that forbids the call) the watcher cannot
//! sleep on many words: it then checks every registered word each time it wakes, sleeping on
//! its bell in between for 50 µs, doubling up to 1 ms while nothing fires. Waiting still
//! costs almost no CPU and every wait still ends, at the price of up to a millisecond of
//! latency per wake-up.

use crate::error::{Error, Result, Role};
use crate::os::sys::{self, WaitOn};
use crate::protocol::barrier::SleepBarrier;
use crate::protocol::wait::{FIRST_NAP, IDLE_CHECK, LONGEST_NAP};
use crate::store::shared::Shared;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Words one watcher thread sleeps on, besides its bell (`futex_waitv` takes 128 at most).
const WORDS_PER_WATCHER: usize = 127;

/// One task's wait on one sleeping word, shared by the task and the watcher.
pub(crate) struct Registration {
    /// Keeps the mapping (and so the word) alive while the watcher sleeps on it.
    shared: Arc<Shared>,
    side: Role,
    /// Whether the word is the consumers' shared `wake_seq` (a consumer among several)
    /// rather than the side's own sleeping word.
    among: bool,
    /// The word's value while nothing woke it: 1 for a sleeping word, the sequence read
    /// before announcing for `wake_seq`.
    expected: u32,
    /// Set by the watcher (Release) when the task should look again.
    fired: AtomicBool,
    /// Set by the task when it no longer waits: the watcher drops the registration.
    cancelled: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// When it was registered: it is fired `limit` after at the latest.
    since: Instant,
    /// [`IDLE_CHECK`], or less while the peer may skip its fence (`SleepBarrier::announce`).
    limit: Duration,
    watcher: Arc<Watcher>,
}

impl Registration {
    fn word(&self) -> &AtomicU32 {
        if self.among {
            &self
                .shared
                .region
                .fanout_wake()
                .expect("a consumer among several has a ring with slots")
                .wake_seq
        } else {
            sleeping_word(&self.shared, self.side)
        }
    }

    /// Stops announcing a sleep: the own word goes back to 0. The shared flag of consumers
    /// among several is left to the producer to clear (another consumer may sleep behind it).
    fn retract(&self) {
        if !self.among {
            sleeping_word(&self.shared, self.side).store(0, Ordering::Relaxed);
        }
    }

    /// Tells the task to look again.
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let waker = lock(&self.waker).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The sleeping word of `side`'s side of `shared`'s ring.
fn sleeping_word(shared: &Shared, side: Role) -> &AtomicU32 {
    &shared.region.control().wait_words(side).sleeping
}

/// A task's side of an async wait: at most one registration at a time. Kept in the
/// `Producer` or `Consumer` (not in a future), so that a future dropped mid-wait leaves
/// nothing behind that the next one cannot take over.
pub(crate) struct AsyncWait {
    registration: Option<Arc<Registration>>,
    /// The sleep slice while the peer may skip its fence (see `SleepBarrier::announce`).
    slice: Duration,
}

impl Default for AsyncWait {
    fn default() -> Self {
        AsyncWait {
            registration: None,
            slice: FIRST_NAP,
        }
    }
}

impl AsyncWait {
    /// Sleeps (as a task) until the word of `side` is woken, or [`IDLE_CHECK`] passes.
    /// `ready` re-checks the condition waited for once the sleep is announced: if it holds,
    /// its value is returned and no sleep happens. `Ready(Ok(None))`: woken, look again (and
    /// do the idle duty if it is due).
    pub(crate) fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Arc<Shared>,
        side: Role,
        among: bool,
        sleep_barrier: &mut SleepBarrier,
        ready: impl FnOnce() -> Result<Option<T>>,
    ) -> Poll<Result<Option<T>>> {
        if let Some(registration) = &self.registration {
            if !registration.fired.load(Ordering::Acquire) {
                *lock(&registration.waker) = Some(cx.waker().clone());
                // Fired between the check and the store (the watcher took no waker): look now.
                if !registration.fired.load(Ordering::Acquire) {
                    return Poll::Pending;
                }
            }
            // Awake: stop announcing a sleep (as a blocking sleeper does after its futex wait).
            registration.retract();
            self.registration = None;
            return Poll::Ready(Ok(None));
        }
        if among {
            return self.poll_among(cx, shared, ready);
        }
        let words = shared.region.control().wait_words(side);
        let word = &words.sleeping;
        // Announce, barrier, re-check: the protocol of `wait::park` (see the docs of `wait`).
        // A read-modify-write for the reason given there.
        word.swap(1, Ordering::Relaxed);
        let limit = sleep_barrier.announce(&shared.region, words, &mut self.slice);
        match ready() {
            Ok(None) => {}
            found => {
                word.store(0, Ordering::Relaxed);
                self.slice = FIRST_NAP;
                return Poll::Ready(found);
            }
        }
        let limit = limit.map_or(IDLE_CHECK, |limit| limit.min(IDLE_CHECK));
        match register(shared, side, (false, 1), limit, cx.waker().clone()) {
            Ok(registration) => {
                self.registration = Some(registration);
                Poll::Pending
            }
            Err(e) => {
                word.store(0, Ordering::Relaxed);
                Poll::Ready(Err(e))
            }
        }
    }

    /// [`poll`](Self::poll) for a consumer among several: announces on the consumers' shared
    /// words as `wait::park_among` does, and has the watcher sleep on `wake_seq`.
    fn poll_among<T>(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Arc<Shared>,
        ready: impl FnOnce() -> Result<Option<T>>,
    ) -> Poll<Result<Option<T>>> {
        let wake = shared
            .region
            .fanout_wake()
            .expect("a consumer among several has a ring with slots");
        let seq = wake.wake_seq.load(Ordering::SeqCst);
        wake.sleeping.swap(1, Ordering::SeqCst);
        // SeqCst fence: pairs with the producer's in `wait::store_and_wake_all`.
        std::sync::atomic::fence(Ordering::SeqCst);
        match ready() {
            Ok(None) => {}
            found => return Poll::Ready(found),
        }
        match register(
            shared,
            Role::Consumer,
            (true, seq),
            IDLE_CHECK,
            cx.waker().clone(),
        ) {
            Ok(registration) => {
                self.registration = Some(registration);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Gives up the wait (the side found what it waited for, or is dropped), and stops
    /// announcing a sleep, so that the peer makes no wake-up call for nobody.
    pub(crate) fn cancel(&mut self) {
        self.slice = FIRST_NAP;
        if let Some(registration) = self.registration.take() {
            registration.retract();
            registration.cancelled.store(true, Ordering::Release);
            registration.watcher.ring();
        }
    }
}

impl Drop for AsyncWait {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// One watcher thread and what it is asked to watch.
struct Watcher {
    /// Registrations not yet taken over by the thread.
    pending: Mutex<Vec<Arc<Registration>>>,
    /// Registrations the thread owns or will own; at most [`WORDS_PER_WATCHER`].
    load: Mutex<usize>,
    /// Rung (incremented, then woken) for every new registration and cancellation. Woken
    /// and waited on as a shared futex, as the ring words are (`sys` has only the shared
    /// operations): a private wait would never see a shared wake.
    bell: AtomicU32,
}

impl Watcher {
    fn ring(&self) {
        self.bell.fetch_add(1, Ordering::Release);
        // A failure leaves the watcher to notice at its next wake-up (within IDLE_CHECK).
        let _ = sys::futex_wake(&self.bell);
    }

    /// The thread: sleeps on its bell and every registered word, fires what was woken.
    fn run(self: Arc<Watcher>) {
        let mut owned: Vec<Arc<Registration>> = Vec::new();
        let mut waitv = true;
        let mut nap = FIRST_NAP;
        loop {
            // The bell's value before collecting: a registration pushed after this read
            // changes it, so the sleep below returns at once.
            let bell = self.bell.load(Ordering::Acquire);
            owned.append(&mut lock(&self.pending));
            let now = Instant::now();
            let before = owned.len();
            let mut fired = false;
            owned.retain(|r| {
                if r.cancelled.load(Ordering::Acquire) {
                    return false;
                }
                // Relaxed: the word's value is only a hint to look; the task re-checks the
                // ring itself (with the fence of its next announcement).
                if r.word().load(Ordering::Relaxed) != r.expected
                    || now.duration_since(r.since) >= r.limit
                {
                    r.fire();
                    fired = true;
                    return false;
                }
                true
            });
            if owned.len() != before {
                *lock(&self.load) -= before - owned.len();
            }
            let timeout = owned
                .iter()
                .map(|r| (r.since + r.limit).saturating_duration_since(now))
                .min();
            if waitv {
                let mut futexes = Vec::with_capacity(owned.len() + 1);
                futexes.push(WaitOn {
                    word: &self.bell,
                    expected: bell,
                });
                futexes.extend(owned.iter().map(|r| WaitOn {
                    word: r.word(),
                    expected: r.expected,
                }));
                if sys::futex_waitv(&futexes, timeout).is_ok() {
                    continue;
                }
                waitv = false;
            }
            // Without futex_waitv: sleep on the bell alone, in short naps while words are
            // registered, and look at every word after each.
            nap = if fired {
                FIRST_NAP
            } else {
                (nap * 2).min(LONGEST_NAP)
            };
            let sleep = if owned.is_empty() {
                None
            } else {
                Some(timeout.map_or(nap, |t| t.min(nap)))
            };
            if sys::futex_wait(&self.bell, bell, sleep).is_err() {
                std::thread::sleep(sleep.unwrap_or(LONGEST_NAP));
            }
        }
    }
}

/// The process's watcher threads, and the pid of the process that started them: a child
/// created by `fork` inherits the list but not the threads, and must start its own.
static WATCHERS: OnceLock<Mutex<(u32, Vec<Arc<Watcher>>)>> = OnceLock::new();

/// Asks a watcher to fire `waker` when the word of `side` is woken (or after `limit`).
fn register(
    shared: &Arc<Shared>,
    side: Role,
    (among, expected): (bool, u32),
    limit: Duration,
    waker: Waker,
) -> Result<Arc<Registration>> {
    let watcher = {
        let mut guard = lock(WATCHERS.get_or_init(Default::default));
        let (pid, watchers) = &mut *guard;
        if *pid != std::process::id() {
            // Forked since (or the first registration): the listed threads are not ours.
            *pid = std::process::id();
            watchers.clear();
        }
        let found = watchers.iter().find(|w| {
            let mut load = lock(&w.load);
            if *load < WORDS_PER_WATCHER {
                *load += 1;
                true
            } else {
                false
            }
        });
        match found {
            Some(watcher) => Arc::clone(watcher),
            None => {
                let watcher = Arc::new(Watcher {
                    pending: Mutex::new(Vec::new()),
                    load: Mutex::new(1),
                    bell: AtomicU32::new(0),
                });
                let thread = Arc::clone(&watcher);
                std::thread::Builder::new()
                    .name("ringfile-watcher".into())
                    .spawn(move || thread.run())
                    .map_err(|error| Error::Io {
                        path: shared.name.clone(),
                        op: "start the thread that watches rings for async waits",
                        error,
                    })?;
                watchers.push(Arc::clone(&watcher));
                watcher
            }
        }
    };
    let registration = Arc::new(Registration {
        shared: Arc::clone(shared),
        side,
        among,
        expected,
        fired: AtomicBool::new(false),
        cancelled: AtomicBool::new(false),
        waker: Mutex::new(Some(waker)),
        since: Instant::now(),
        limit,
        watcher: Arc::clone(&watcher),
    });
    lock(&watcher.pending).push(Arc::clone(&registration));
    watcher.ring();
    Ok(registration)
}

/// Locks a mutex, whether or not a thread panicked holding it (what it guards stays valid:
/// every critical section here is a single push, take or count update).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
