//! Consumer slots (format version 2): several consumers on one ring, each under a name of its
//! own, each reading every message. The only module that knows a slot's state word, how a
//! name is registered, found, left and evicted, and how the producer learns how far the
//! slowest consumer that holds it back has read.
//!
//! # The gate
//!
//! The producer may overwrite the bytes below its *gate*: the lowest released position of
//! the slots that hold it back (registered and not lossy), as it last looked. It stores the
//! gate in the word a version 1 ring keeps its consumer's head in (`released_head`), so that
//! tools, the openers' position check and a consumer that joins all read one position below
//! which nothing may be read. Data from the gate up to the published tail is intact.
//!
//! A consumer that registers a new name starts at the gate (or at the tail, `Start::Latest`);
//! it must not start below what the producer will overwrite before it next looks. The race
//! is a Dekker pair, `SeqCst` on both sides:
//!
//! - the joiner stores its slot (position, then the registered state), fences, loads the
//!   gate, and if the gate is past its position moves up to it and looks again;
//! - the producer, when it raises the gate, stores the new gate, fences, and looks at the
//!   slots again, keeping the lower of the two looks.
//!
//! Either the producer's second look sees the joiner's slot (and so holds back for it), or
//! the joiner's load sees the new gate (and so starts at or after it). A producer that does
//! not raise the gate needs no second look: a joiner starts at or after the gate already.

use crate::error::{Error, Result};
use crate::format::layout::{
    slot_lock_byte, Slot, FORMAT_VERSION, MAX_NAME_LEN, SLOT_ATTACHED, SLOT_DEMOTED,
    SLOT_EPOCH_SHIFT, SLOT_LOSSY, SLOT_REGISTERED,
};
use crate::format::position::Position;
use crate::os::sync::{fence, Ordering};
use crate::protocol::lapping;
use crate::protocol::roles::{self, RoleGuard};
use crate::store::region::Region;
use crate::store::shared::Shared;

/// The name of the consumer that attaches without one.
pub const DEFAULT_NAME: &str = "default";

/// A slot's state word: `epoch << 8 | flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotState(u64);

impl SlotState {
    /// The state of `slot` now. Acquire: pairs with the Release (`SeqCst`) store of a holder
    /// that registered it, so its name and position are visible.
    pub(crate) fn load(slot: &Slot) -> SlotState {
        SlotState(slot.state.load(Ordering::Acquire))
    }

    /// The word as stored.
    pub(crate) fn raw(self) -> u64 {
        self.0
    }

    /// Whether the slot holds a name.
    pub(crate) fn registered(self) -> bool {
        self.0 & SLOT_REGISTERED != 0
    }

    /// Whether its consumer is lossy.
    pub(crate) fn lossy(self) -> bool {
        self.0 & SLOT_LOSSY != 0
    }

    /// Whether the producer turned it lossy (its `max_lag` policy).
    pub(crate) fn demoted(self) -> bool {
        self.0 & SLOT_DEMOTED != 0
    }

    /// Whether its position holds the producer back.
    #[inline]
    pub(crate) fn holds_back(self) -> bool {
        self.0 & (SLOT_REGISTERED | SLOT_LOSSY) == SLOT_REGISTERED
    }

    /// The state after this one with `flags`: the next epoch.
    fn next(self, flags: u64) -> SlotState {
        SlotState(((self.0 >> SLOT_EPOCH_SHIFT).wrapping_add(1) << SLOT_EPOCH_SHIFT) | flags)
    }
}

/// Checks a consumer name: 1 to 64 bytes of UTF-8 without control characters.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAME_LEN {
        "it is longer than 64 bytes"
    } else if name.chars().any(char::is_control) {
        "it holds a control character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_string(),
        reason,
    })
}

/// The name a slot holds (as far as it is valid UTF-8: a forged one is shown lossily).
pub(crate) fn name_of(slot: &Slot) -> String {
    let len = (slot.name_len.load(Ordering::Relaxed) as usize).min(MAX_NAME_LEN);
    let mut bytes = Vec::with_capacity(MAX_NAME_LEN);
    for word in &slot.name {
        bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
    }
    bytes.truncate(len);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn write_name(slot: &Slot, name: &str) {
    let mut bytes = [0u8; MAX_NAME_LEN];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    for (word, chunk) in slot.name.iter().zip(bytes.chunks_exact(8)) {
        word.store(
            u64::from_le_bytes(chunk.try_into().expect("8 bytes")),
            Ordering::Relaxed,
        );
    }
    slot.name_len.store(name.len() as u32, Ordering::Relaxed);
}

/// Where a consumer that registers a new name starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Start {
    /// At the oldest message still held in the ring (the default).
    #[default]
    Oldest,
    /// At the next message published.
    Latest,
}

/// What a consumer asks for when it joins.
#[derive(Clone, Debug)]
pub(crate) struct Join<'a> {
    pub(crate) name: &'a str,
    pub(crate) start: Start,
    pub(crate) lossy: bool,
    pub(crate) retain_ns: u64,
    pub(crate) max_lag: u64,
}

/// A consumer's seat: the slot it holds and where it starts reading.
pub(crate) struct Seat {
    pub(crate) index: u32,
    pub(crate) guard: RoleGuard,
    pub(crate) start: Position,
    /// The index of the message at `start` (`lapping`): the slot's counter.
    pub(crate) messages: u64,
    /// Messages this name lost while it was away: a position the gate had passed (a name
    /// that was lossy, or turned lossy, comes back lossless).
    pub(crate) missed: u64,
    /// The state this holder stored (its detach compares against it).
    pub(crate) state: SlotState,
}

/// Takes `join.name`'s slot on a ring with consumer slots: the slot already registered to
/// that name, or a free one, registered now. Fails with [`Error::NameTaken`] while a live
/// process holds the name, [`Error::NoSlot`] when every slot is registered to another name.
pub(crate) fn join(shared: &Shared, join: &Join<'_>) -> Result<Seat> {
    let region = &shared.region;
    let registry = roles::lock_registry(shared)?;
    let (index, guard, fresh) = take_slot(shared, join.name)?;
    let slot = region.slot(index).expect("in range");
    let control = region.control();
    let gate = control.released_head.load(Ordering::SeqCst);
    let tail = control.published_tail.load(Ordering::Acquire);
    let bad = |head: u64| Error::BadPositions {
        path: shared.name.clone(),
        head,
        tail,
        capacity: region.capacity().bytes(),
    };
    // Where it starts, and the index of the message there (`lapping`).
    let (mut start, mut messages) = if join.lossy {
        // It does not hold the producer back: no race with the gate to settle. It starts
        // at what is whole now, and proves each record whole as it reads it.
        let anchor = match (fresh, join.start) {
            (true, Start::Oldest) => lapping::oldest(region),
            (true, Start::Latest) => lapping::latest(control),
            (false, _) => Position::new(slot.released.load(Ordering::Acquire))
                .filter(|p| p.is_aligned() && p.get() <= tail)
                .map(|pos| lapping::Anchor {
                    pos,
                    index: slot.released_messages.load(Ordering::Relaxed),
                })
                .or_else(|| lapping::oldest(region)),
        };
        let anchor = anchor.ok_or_else(|| bad(gate))?;
        (anchor.pos.get(), anchor.index)
    } else if fresh {
        let start = match join.start {
            // The oldest message still held for anyone: the slowest consumer that holds the
            // producer back, or, with none, the oldest the producer has not overwritten.
            Start::Oldest => {
                let held = lowest_released(region, u64::MAX);
                if held == u64::MAX {
                    gate
                } else {
                    held.clamp(gate, tail.max(gate))
                }
            }
            Start::Latest => tail.max(gate),
        };
        (start, 0) // counted below, once the producer is held back
    } else {
        // A name's position is durable: it resumes where its last holder released.
        (
            slot.released.load(Ordering::Acquire),
            slot.released_messages.load(Ordering::Relaxed),
        )
    };
    if fresh {
        write_name(slot, join.name);
        slot.missed.store(0, Ordering::Relaxed);
    }
    slot.released_messages.store(messages, Ordering::Relaxed);
    slot.pid.store(crate::os::sys::pid(), Ordering::Relaxed);
    slot.attached_unix_ns.store(unix_ns(), Ordering::Relaxed);
    slot.retain_ns.store(join.retain_ns, Ordering::Relaxed);
    slot.max_lag.store(join.max_lag, Ordering::Relaxed);
    // SeqCst: the joiner's half of the gate's Dekker pair (module docs) — the position
    // before the state, both before the gate is loaded again.
    slot.released.store(start, Ordering::SeqCst);
    let flags = SLOT_REGISTERED | SLOT_ATTACHED | if join.lossy { SLOT_LOSSY } else { 0 };
    let state = SlotState::load(slot).next(flags);
    slot.state.store(state.raw(), Ordering::SeqCst);
    drop(registry);
    let mut missed = 0;
    if !join.lossy {
        let resumed = start;
        loop {
            fence(Ordering::SeqCst);
            let gate = control.released_head.load(Ordering::SeqCst);
            if start >= gate {
                break;
            }
            // The producer may overwrite what lies below the gate: start there. (Only a name
            // that was lossy, or a file another process wrote, has a position below it.)
            start = gate;
            slot.released.store(start, Ordering::SeqCst);
        }
        if fresh || start != resumed {
            // Held back from `start` on, the records up to the tail stay put while counted.
            let index = Position::new(start)
                .filter(|p| p.is_aligned())
                .and_then(|p| lapping::index_of(region, p))
                .unwrap_or(messages);
            if !fresh {
                missed = index.saturating_sub(messages);
            }
            messages = index;
            slot.released_messages.store(messages, Ordering::Relaxed);
        }
    }
    let tail = control.published_tail.load(Ordering::Acquire);
    let start = Position::new(start)
        .filter(|p| p.is_aligned() && p.get() <= tail)
        .ok_or_else(|| bad(start))?;
    Ok(Seat {
        index,
        guard,
        start,
        messages,
        missed,
        state,
    })
}

/// The slot registered to `name`, if any (the caller holds the registry lock).
fn find_name(region: &Region, name: &str) -> Option<u32> {
    (0..region.shape().slots()).find(|&i| {
        let slot = region.slot(i).expect("in range");
        SlotState::load(slot).registered() && name_of(slot) == name
    })
}

/// Takes the lock of slot `index`, registered to `name`; [`Error::NameTaken`], with the
/// slot's last pid, while a live process holds it.
fn lock_name(shared: &Shared, index: u32, name: &str) -> Result<RoleGuard> {
    let slot = shared.region.slot(index).expect("in range");
    roles::acquire_byte(shared, slot_lock_byte(FORMAT_VERSION, index), |here| {
        Error::NameTaken {
            path: shared.name.clone(),
            name: name.to_string(),
            pid: Some(slot.pid.load(Ordering::Relaxed)).filter(|&pid| pid != 0),
            by_this_process: here,
        }
    })
}

/// Under the registry lock: the slot registered to `name`, or a free one, with its lock
/// taken; and whether it is free (to be registered now).
fn take_slot(shared: &Shared, name: &str) -> Result<(u32, RoleGuard, bool)> {
    let region = &shared.region;
    if let Some(i) = find_name(region, name) {
        return Ok((i, lock_name(shared, i, name)?, false));
    }
    let slots = region.shape().slots();
    for i in 0..slots {
        let slot = region.slot(i).expect("in range");
        if SlotState::load(slot).registered() {
            continue;
        }
        // A free slot whose lock is held is being evicted: the next one.
        if let Ok(guard) =
            roles::acquire_byte(shared, slot_lock_byte(FORMAT_VERSION, i), |_| Error::Full)
        {
            return Ok((i, guard, true));
        }
    }
    Err(Error::NoSlot {
        path: shared.name.clone(),
        name: name.to_string(),
        reason: format!(
            "all {slots} consumer slots are registered to other names ({}); `ringfile evict` frees one",
            registered_names(region).join(", ")
        ),
    })
}

/// The names registered now, in slot order.
pub(crate) fn registered_names(region: &Region) -> Vec<String> {
    (0..region.shape().slots())
        .filter_map(|i| region.slot(i))
        .filter(|slot| SlotState::load(slot).registered())
        .map(name_of)
        .collect()
}

/// A holder leaves its slot (its process goes on): the name stays registered, its position
/// durable, and the attached bit goes — if the slot is still in the epoch this holder
/// stored (a later holder's or an eviction's state is never touched; the producer's
/// demotion under `max_lag` keeps the epoch and is kept).
pub(crate) fn leave(region: &Region, index: u32, state: SlotState) {
    if let Some(slot) = region.slot(index) {
        let epoch = state.raw() >> SLOT_EPOCH_SHIFT;
        let _ = slot
            .state
            .fetch_update(Ordering::Release, Ordering::Relaxed, |now| {
                (now >> SLOT_EPOCH_SHIFT == epoch).then_some(now & !SLOT_ATTACHED)
            });
    }
}

/// Removes the registration of `name` (its holder must be gone: [`Error::NameTaken`]
/// otherwise). Its position no longer holds the producer back.
pub(crate) fn evict(shared: &Shared, name: &str) -> Result<()> {
    let region = &shared.region;
    let _registry = roles::lock_registry(shared)?;
    let Some(index) = find_name(region, name) else {
        return Err(Error::UnknownName {
            path: shared.name.clone(),
            name: name.to_string(),
        });
    };
    let _guard = lock_name(shared, index, name)?;
    free_slot(shared, index);
    Ok(())
}

/// Under the registry lock and slot `index`'s lock: frees the slot.
fn free_slot(shared: &Shared, index: u32) {
    let region = &shared.region;
    let slot = region.slot(index).expect("in range");
    let state = SlotState::load(slot).next(0);
    write_name(slot, "");
    // A producer waiting for room may be waiting for this very slot: wake it, as a release
    // would, so that it looks at the slots again now rather than at its next idle check.
    let control = region.control();
    crate::protocol::wait::store_and_wake(
        region,
        &control.producer_wait,
        &control.roles.producer_pid,
        || slot.state.store(state.raw(), Ordering::SeqCst),
    );
}

/// The producer evicts slot `index` under its `retain` policy, if it still holds the
/// registration the producer saw (`seen`) and no live process holds it; returns the name
/// evicted.
fn expire(shared: &Shared, index: u32, seen: SlotState) -> Result<Option<String>> {
    let _registry = roles::lock_registry(shared)?;
    let slot = shared.region.slot(index).expect("in range");
    if SlotState::load(slot).raw() >> SLOT_EPOCH_SHIFT != seen.raw() >> SLOT_EPOCH_SHIFT {
        return Ok(None); // attached again (or evicted) since
    }
    let name = name_of(slot);
    let Ok(_guard) = lock_name(shared, index, &name) else {
        return Ok(None); // a live holder came back
    };
    free_slot(shared, index);
    Ok(Some(name))
}

/// What the producer's look at the slots found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scan {
    /// The lowest released position among the slots that hold it back, at most its tail.
    pub(crate) low: u64,
    /// Whether some registered slot does not hold it back (lossy, or turned lossy): the gate
    /// then moves no further than the producer needs, so that such readers keep what they
    /// can still read (see `Space::refresh_gate`).
    pub(crate) lapped: bool,
}

/// The producer's memory of the slots its policies watch: since when it has seen each
/// registered slot under a `retain` policy without a live holder.
#[derive(Debug, Default)]
pub(crate) struct Policies {
    /// (slot, the state seen, first seen without a holder).
    gone: Vec<(u32, SlotState, std::time::Instant)>,
    /// Names the producer evicted or turned lossy, for its caller to report.
    pub(crate) events: Vec<PolicyEvent>,
}

/// Something the producer did under a consumer's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyEvent {
    /// A name whose holder was gone for its `retain` time was evicted.
    Evicted {
        /// The name.
        name: String,
    },
    /// A lossless name that lagged more than its `max_lag` was turned lossy.
    TurnedLossy {
        /// The name.
        name: String,
        /// How far behind the tail it was, in bytes.
        lag: u64,
    },
}

/// The producer's look at the slots when its cached gate says the ring may be full: the
/// lowest position that holds it back, after applying the slots' policies — a lossless slot
/// more than its `max_lag` behind `limit` is turned lossy (its reader copies and checks
/// what it reads, so it can be lapped: see `lapping`), and a slot whose holder has been
/// gone for its `retain` time is evicted.
#[cold]
pub(crate) fn scan(shared: &Shared, limit: u64, policies: &mut Policies) -> Scan {
    let region = &shared.region;
    let mut lapped = false;
    let mut low = limit;
    let mut expired = Vec::new();
    for i in 0..region.shape().slots() {
        let slot = region.slot(i).expect("in range");
        let state = SlotState::load(slot);
        if !state.registered() {
            continue;
        }
        if state.lossy() {
            lapped = true;
            continue;
        }
        // SYNC POINT (slot state and position): as in `lowest_released`.
        let released = slot.released.load(Ordering::Acquire);
        if !Position::new(released).is_some_and(Position::is_aligned) {
            continue;
        }
        let max_lag = slot.max_lag.load(Ordering::Relaxed);
        let lag = limit.saturating_sub(released);
        if max_lag != 0 && lag > max_lag && demote(slot, state) {
            policies.events.push(PolicyEvent::TurnedLossy {
                name: name_of(slot),
                lag,
            });
            lapped = true;
            continue;
        }
        if slot.retain_ns.load(Ordering::Relaxed) != 0 {
            if let Some(since) = policies.gone_since(shared, i, state) {
                let retain =
                    std::time::Duration::from_nanos(slot.retain_ns.load(Ordering::Relaxed));
                if since.elapsed() >= retain {
                    expired.push((i, state));
                }
            }
        }
        low = low.min(released);
    }
    let mut evicted = false;
    for (i, state) in expired {
        policies.gone.retain(|&(slot, _, _)| slot != i);
        if let Ok(Some(name)) = expire(shared, i, state) {
            policies.events.push(PolicyEvent::Evicted { name });
            evicted = true;
        }
    }
    if evicted {
        // Without the slots given up.
        low = lowest_released(region, limit);
    }
    Scan { low, lapped }
}

impl Policies {
    /// Since when slot `index` (in `state`) has been seen without a live holder; `None`
    /// while one holds it (forgetting any earlier sighting).
    fn gone_since(
        &mut self,
        shared: &Shared,
        index: u32,
        state: SlotState,
    ) -> Option<std::time::Instant> {
        let held = state.raw() & SLOT_ATTACHED != 0 && is_held(shared, index).unwrap_or(true);
        let seen = self.gone.iter().position(|&(i, s, _)| {
            i == index && s.raw() >> SLOT_EPOCH_SHIFT == state.raw() >> SLOT_EPOCH_SHIFT
        });
        if held {
            self.gone.retain(|&(i, _, _)| i != index);
            return None;
        }
        match seen {
            Some(at) => Some(self.gone[at].2),
            None => {
                self.gone.retain(|&(i, _, _)| i != index);
                let now = std::time::Instant::now();
                self.gone.push((index, state, now));
                Some(now)
            }
        }
    }
}

/// Turns a lossless slot lossy under its `max_lag` policy (compare-and-swap from the state
/// seen: a slot attached or evicted since is left alone). Its reader learns it from the
/// [`SLOT_DEMOTED`] bit.
fn demote(slot: &Slot, seen: SlotState) -> bool {
    slot.state
        .compare_exchange(
            seen.raw(),
            seen.raw() | SLOT_LOSSY | SLOT_DEMOTED,
            Ordering::SeqCst,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// The lowest released position among the slots that hold the producer back, at most
/// `limit` (the producer's published tail: with no such slot, everything published may be
/// overwritten). Values another process forged (unaligned, past `limit`, beyond
/// `MAX_POSITION`) are ignored: they cannot make the producer write where it must not (its
/// own process's consumers are guarded apart), only stall it, and a reader of a forged
/// position validates what it reads.
#[cold]
pub(crate) fn lowest_released(region: &Region, limit: u64) -> u64 {
    let mut low = limit;
    for i in 0..region.shape().slots() {
        let slot = region.slot(i).expect("in range");
        // SYNC POINT (slot state and position): Acquire pairs with the consumer's Release
        // (SeqCst) stores, so its reads of every byte below the position happen before we
        // overwrite them.
        if SlotState::load(slot).holds_back() {
            let released = slot.released.load(Ordering::Acquire);
            if Position::new(released).is_some_and(Position::is_aligned) && released < low {
                low = released;
            }
        }
    }
    low
}

/// The producer's half of the gate's Dekker pair (module docs): with `low` the lowest
/// released position it found, raises the stored gate to it if it is higher, then looks
/// again; returns how far it may overwrite (below `low`, or below what the second look
/// found).
#[cold]
pub(crate) fn raise_gate(region: &Region, low: u64, limit: u64) -> u64 {
    let gate = &region.control().released_head;
    if low <= gate.load(Ordering::Relaxed) {
        return low;
    }
    gate.store(low, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    low.min(lowest_released(region, limit))
}

/// The slot that holds the producer back the most: registered, not lossy, lowest position.
pub(crate) fn slowest(region: &Region) -> Option<SlotView> {
    views(region)
        .into_iter()
        .filter(|view| view.state.holds_back())
        .min_by_key(|view| view.released)
}

/// Whether a live process holds slot `index`.
pub(crate) fn is_held(shared: &Shared, index: u32) -> Result<bool> {
    roles::byte_is_locked(shared, slot_lock_byte(FORMAT_VERSION, index))
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What one slot says, for inspection.
#[derive(Clone, Debug)]
pub(crate) struct SlotView {
    pub(crate) index: u32,
    pub(crate) name: String,
    pub(crate) state: SlotState,
    pub(crate) pid: u32,
    pub(crate) released: u64,
    pub(crate) released_messages: u64,
    pub(crate) missed: u64,
    pub(crate) attached_unix_ns: u64,
    pub(crate) retain_ns: u64,
    pub(crate) max_lag: u64,
}

/// Every registered slot of a ring, as the file says now.
pub(crate) fn views(region: &Region) -> Vec<SlotView> {
    (0..region.shape().slots())
        .filter_map(|i| region.slot(i).map(|slot| (i, slot)))
        .filter_map(|(index, slot)| {
            let state = SlotState::load(slot);
            state.registered().then(|| SlotView {
                index,
                name: name_of(slot),
                state,
                pid: slot.pid.load(Ordering::Relaxed),
                released: slot.released.load(Ordering::Acquire),
                released_messages: slot.released_messages.load(Ordering::Relaxed),
                missed: slot.missed.load(Ordering::Relaxed),
                attached_unix_ns: slot.attached_unix_ns.load(Ordering::Relaxed),
                retain_ns: slot.retain_ns.load(Ordering::Relaxed),
                max_lag: slot.max_lag.load(Ordering::Relaxed),
            })
        })
        .collect()
}
