//! What the producer and the consumer are made of besides their positions: the ring, the role,
//! how they wait — blocking or as a task, through one [`Waiting`] — and their traffic
//! counters. Attaching is the same for both but for which role, which waiting words and which
//! counters; fan-out's consumer slots will be one more kind of endpoint.

use crate::error::{Result, Role};
use crate::format::layout::Tally;
use crate::protocol::barrier::SleepBarrier;
use crate::protocol::roles::{self, RoleGuard};
use crate::protocol::wait::{wait_until, Probe, WaitStrategy, Words};
use crate::store::shared::Shared;
use std::sync::Arc;
use std::time::Instant;

/// One side's hold on a ring.
pub(crate) struct Endpoint {
    /// The ring, kept alive as long as the side is.
    pub(crate) shared: Arc<Shared>,
    /// The role's lock.
    pub(crate) role: RoleGuard,
    /// How the side waits.
    pub(crate) waiting: Waiting,
    /// What this side has published (messages and payload bytes) or released (messages),
    /// counted on from the file's counters (statistics only: see `layout::Control::published`).
    pub(crate) tally: Tally,
}

impl Endpoint {
    /// Takes `role` on `shared`'s ring: its lock, its promise about sleeps (the `barrier`
    /// module), and its counters as the file has them.
    pub(crate) fn attach(shared: Arc<Shared>, role: Role) -> Result<Endpoint> {
        let guard = roles::acquire(&shared, role)?;
        let barrier =
            SleepBarrier::declare(&shared.region, shared.region.control().wait_words(role));
        let tally = match role {
            Role::Producer => shared.region.control().published.load(),
            Role::Consumer => Tally {
                // Relaxed: statistics, never used to decide anything.
                messages: shared
                    .region
                    .control()
                    .released_messages
                    .load(std::sync::atomic::Ordering::Relaxed),
                bytes: 0,
            },
        };
        Ok(Endpoint {
            role: guard,
            waiting: Waiting {
                role,
                among: false,
                strategy: WaitStrategy::default(),
                barrier,
                #[cfg(all(feature = "async", not(loom)))]
                task: crate::side::watcher::AsyncWait::default(),
            },
            tally,
            shared,
        })
    }

    /// A consumer among several, on a slot whose lock `guard` holds, with `messages`
    /// released so far (the slot's counter): it sleeps on the consumers' shared wake-up
    /// words, with fences (nothing to declare).
    pub(crate) fn seated(shared: Arc<Shared>, guard: RoleGuard, messages: u64) -> Endpoint {
        Endpoint {
            role: guard,
            waiting: Waiting {
                role: Role::Consumer,
                among: true,
                strategy: WaitStrategy::default(),
                barrier: SleepBarrier::fence_only(),
                #[cfg(all(feature = "async", not(loom)))]
                task: crate::side::watcher::AsyncWait::default(),
            },
            tally: Tally { messages, bytes: 0 },
            shared,
        }
    }

    /// Whether a process holds the `other` role now (tested on its lock, never taken).
    pub(crate) fn is_live(&self, other: Role) -> Result<bool> {
        self.role.is_live(&self.shared, other)
    }
}

/// How one side waits for what it needs (data, or space), blocking or as a task: the
/// strategy, the side's sleep announcements (the same barrier for both) and, for tasks, the
/// registration with the watcher thread — kept here, not in a future, so that a future
/// dropped mid-wait leaves nothing behind that the next one cannot take over.
pub(crate) struct Waiting {
    /// Whose waiting words these are.
    role: Role,
    /// A consumer among several: it sleeps on the consumers' shared words.
    among: bool,
    pub(crate) strategy: WaitStrategy,
    barrier: SleepBarrier,
    #[cfg(all(feature = "async", not(loom)))]
    task: crate::side::watcher::AsyncWait,
}

impl Waiting {
    /// Blocks, as the strategy says, until `poll(Probe::Ready)` yields a value, `deadline`
    /// passes ([`Error::Timeout`](crate::Error::Timeout)) or `poll` fails; between sleeps,
    /// `poll(Probe::Idle)` does the side's idle duty.
    pub(crate) fn block<T>(
        &mut self,
        shared: &Shared,
        deadline: Option<Instant>,
        poll: impl FnMut(Probe) -> Result<Option<T>>,
    ) -> Result<T> {
        let words = match shared.region.fanout_wake() {
            Some(wake) if self.among => Words::Among(wake),
            _ => Words::Own(shared.region.control().wait_words(self.role)),
        };
        wait_until(
            self.strategy,
            &shared.region,
            words,
            &mut self.barrier,
            deadline,
            poll,
        )
    }

    /// As a task: announces the sleep as [`block`](Self::block) does, re-checks with
    /// `ready`, and registers the waiting word with the watcher thread. `Ready(Ok(None))`:
    /// woken, look again (and do the idle duty if it is due).
    #[cfg(all(feature = "async", not(loom)))]
    pub(crate) fn poll<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        shared: &Arc<Shared>,
        ready: impl FnOnce() -> Result<Option<T>>,
    ) -> std::task::Poll<Result<Option<T>>> {
        self.task
            .poll(cx, shared, self.role, self.among, &mut self.barrier, ready)
    }

    /// A task found what it waited for: its registration, if any, goes.
    #[cfg(all(feature = "async", not(loom)))]
    #[inline]
    pub(crate) fn found(&mut self) {
        self.task.cancel();
    }

    /// A stand-in while the side's own is taken out for a wait that borrows the whole side
    /// (see `Consumer::wait_for_record`); never waited on.
    pub(crate) fn placeholder(&self) -> Waiting {
        Waiting {
            role: self.role,
            among: self.among,
            strategy: self.strategy,
            barrier: self.barrier,
            #[cfg(all(feature = "async", not(loom)))]
            task: crate::side::watcher::AsyncWait::default(),
        }
    }
}
