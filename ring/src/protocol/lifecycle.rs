//! The producer's lifecycle as the file records it: which producer is attached, whether it
//! ended its stream, and whether it died.
//!
//! This module alone reads and writes the two words of the roles block that carry it:
//! `producer_state` (`epoch << 1 | attached`, a [`ProducerState`]) and `producer_start` (the
//! published tail when that producer attached). The producer attaches and departs through
//! an [`Attachment`]; a consumer judges endings and deaths with a [`Watch`]; the inspector
//! decodes with [`ProducerState::load`]. FORMAT.md, "Roles and liveness", is the contract.
//!
//! The shape `epoch << 1 | attached` is not the producer's alone: a role that can be held by
//! one process after another, and must tell one holder's life from the next, needs exactly
//! this word. Consumer slots (several consumers per ring) will hold one each, with an
//! attachment and a watch of their own beside these.
//!
//! The roles block also holds the producer's two resume marks ([`ResumeMarks`]): what a
//! producer that copies another stream in (a bridge) recorded of its input with a publish, so
//! that its successor knows where to go on.

use crate::format::layout::{Roles, PRODUCER_ATTACHED};
use crate::format::position::Position;
use crate::os::sync::Ordering;
use std::num::NonZeroU64;

/// A producer state word: the epoch counts the producers that ever attached (it tells one
/// producer's life from the next); the low bit says whether the last one to attach still is.
/// The epoch wraps after 2^63 attaches, which is harmless: states are only compared for
/// equality.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct ProducerState(u64);

impl ProducerState {
    /// The word as it is now. Acquire: pairs with the Release of [`Attachment::attach`] (a
    /// reader then sees a `producer_start` at least as new) and of [`Attachment::detach`] (a
    /// reader that sees the bit clear sees every record the producer published).
    pub(crate) fn load(roles: &Roles) -> ProducerState {
        ProducerState(roles.producer_state.load(Ordering::Acquire))
    }

    /// Whether the producer that attached last is still attached (or died attached).
    #[inline]
    pub(crate) fn attached(self) -> bool {
        self.0 & PRODUCER_ATTACHED != 0
    }

    /// The state of the next producer to attach after this one.
    fn next(self) -> ProducerState {
        ProducerState(((self.0 >> 1).wrapping_add(1) << 1) | PRODUCER_ATTACHED)
    }

    /// This state with the attached bit clear.
    fn detached(self) -> ProducerState {
        ProducerState(self.0 & !PRODUCER_ATTACHED)
    }
}

/// What dropping a producer does to the stream and its state word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Departure {
    /// End the stream (an END record, or an ABORT if the thread is panicking), then clear
    /// the bit: what a dropped producer does unless told otherwise, as a dropped channel
    /// sender does.
    End,
    /// A clean detach: the bit is cleared, the stream stays open for a successor.
    Detach,
    /// The word is left as it is: the stream's end is published (and the bit already
    /// cleared), or the producer was abandoned (the consumer is to learn it died), or it
    /// could not end its stream properly.
    Leave,
}

/// A producer's hold on the lifecycle words, from attach to departure.
#[derive(Debug)]
pub(crate) struct Attachment {
    /// The state this producer wrote when it attached: its own, for as long as the word
    /// still holds it.
    state: ProducerState,
    departure: Departure,
}

impl Attachment {
    /// Records that a producer attached at the published tail `tail`: the start first, then
    /// the state (Release), so that a reader of the state (Acquire) then reads a start at
    /// least this new.
    pub(crate) fn attach(roles: &Roles, tail: Position) -> Attachment {
        roles.producer_start.store(tail.get(), Ordering::Relaxed);
        let mut state = ProducerState::default();
        // A read-modify-write, so that the epoch is derived from the word as it is at this
        // instant whatever else writes it (every well-behaved write happens under the
        // producer lock, which we hold; FORMAT.md says a load and a store would do).
        let _ = roles
            .producer_state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                state = ProducerState(old).next();
                Some(state.0)
            });
        Attachment {
            state,
            departure: Departure::End,
        }
    }

    /// What dropping the producer will do.
    pub(crate) fn departure(&self) -> Departure {
        self.departure
    }

    /// From now on, dropping the producer detaches cleanly, leaving the stream open.
    pub(crate) fn keep_open(&mut self) {
        self.departure = Departure::Detach;
    }

    /// From now on, dropping the producer leaves the state word as it is.
    pub(crate) fn leave(&mut self) {
        self.departure = Departure::Leave;
    }

    /// Clears the attached bit of the state word — if it is still ours: a word another
    /// producer has replaced since (after ours died, say) is left alone.
    pub(crate) fn detach(&self, roles: &Roles) {
        // Release: a consumer that sees the bit clear also sees every record we published.
        let _ = roles.producer_state.compare_exchange(
            self.state.0,
            self.state.detached().0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}

/// A consumer's view of the producers' lifecycles: the state whose end it has already
/// learnt (the end of its stream, or its death), which is never reported as died again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Watch {
    settled: ProducerState,
}

impl Watch {
    /// On an END or ABORT record that ends at `next`. If it is the current producer's own
    /// (it attached at or before the record: `producer_start < next`), that producer ended
    /// its stream properly and is never reported as died, even if it dies before clearing
    /// its attached bit. An earlier producer's record says nothing of a producer that
    /// attached since, which is judged on its own.
    pub(crate) fn end_seen(&mut self, roles: &Roles, next: Position) {
        // State first, then start: the producer writes them in the other order (start, then
        // a Release update of the state), so the start read is at least as new as the state.
        let state = ProducerState::load(roles);
        let start = roles.producer_start.load(Ordering::Relaxed);
        if state.attached() && start < next.get() {
            self.settled = state;
        }
    }

    /// The first step of telling whether the producer attached now died without ending
    /// its stream: its state, if the word says attached and this consumer has not settled
    /// it. The caller then checks that the producer's role lock is free and that everything
    /// it published was received, and [confirms](Self::confirm_death).
    pub(crate) fn suspect(&self, roles: &Roles) -> Option<ProducerState> {
        let state = ProducerState::load(roles);
        (state.attached() && state != self.settled).then_some(state)
    }

    /// The last step: `suspect` died if no producer attached meanwhile; it is then settled,
    /// so each producer's death is reported once.
    pub(crate) fn confirm_death(&mut self, roles: &Roles, suspect: ProducerState) -> bool {
        if ProducerState::load(roles) != suspect {
            return false;
        }
        self.settled = suspect;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_count_attachments_and_say_whether_the_last_one_is_attached() {
        let never = ProducerState::default();
        assert!(!never.attached());
        let first = never.next();
        assert!(first.attached());
        assert_eq!(first.0, 0b11);
        assert!(!first.detached().attached());
        assert_eq!(first.detached().next().0, 0b101);
        // The epoch wraps, the bit stays meaningful.
        let last = ProducerState(u64::MAX);
        assert_eq!(last.next().0, PRODUCER_ATTACHED);
    }
}

/// A producer's resume marks: the mark recorded with the last publish (if that publish had
/// one), and which of the two slots the next mark goes to.
///
/// The protocol: to record mark `m` with the publish of tail `t`, write `m` then `t` into the
/// slot that does not hold the mark valid now, then publish `t`. A slot is valid while its tail
/// equals the published tail; tails only grow, so at most one slot is, and a producer that
/// dies between writing a slot and publishing leaves the other slot — the previous publish's
/// mark — valid. Only producers read and write the slots, one at a time (the producer lock);
/// one that dies leaves its stores in the shared mapping for the next.
#[derive(Debug, Default)]
pub(crate) struct ResumeMarks {
    /// The mark valid when we attached.
    found: Option<NonZeroU64>,
    /// The slot the next mark is written to.
    next: usize,
}

impl ResumeMarks {
    /// Reads the marks as a producer attaching at published tail `tail` finds them.
    pub(crate) fn read(roles: &Roles, tail: Position) -> ResumeMarks {
        for (i, slot) in roles.resume.iter().enumerate() {
            // Acquire: pairs with the Release in `write` — a slot whose tail we see has its
            // mark at least that new (the mark is stored first).
            if slot.tail.load(Ordering::Acquire) == tail.get() {
                if let Some(found) = NonZeroU64::new(slot.mark.load(Ordering::Relaxed)) {
                    return ResumeMarks {
                        found: Some(found),
                        next: 1 - i,
                    };
                }
            }
        }
        ResumeMarks::default()
    }

    /// The mark recorded with the publish of the tail this producer attached at.
    pub(crate) fn found(&self) -> Option<NonZeroU64> {
        self.found
    }

    /// Records `mark` for the publish of `tail`, which the caller makes next.
    pub(crate) fn write(&mut self, roles: &Roles, tail: Position, mark: NonZeroU64) {
        let slot = &roles.resume[self.next];
        slot.mark.store(mark.get(), Ordering::Relaxed);
        // Release: pairs with the Acquire in `read` (the mark before the tail).
        slot.tail.store(tail.get(), Ordering::Release);
        self.next = 1 - self.next;
    }
}

#[cfg(all(test, not(loom)))]
mod resume_tests {
    use super::*;

    fn at(n: u64) -> Position {
        Position::new(n).unwrap()
    }

    #[test]
    fn a_mark_written_but_never_published_leaves_the_previous_one() {
        let roles = Roles::default();
        assert_eq!(ResumeMarks::read(&roles, at(0)).found(), None);
        let mut marks = ResumeMarks::read(&roles, at(0));
        marks.write(&roles, at(64), NonZeroU64::new(7).unwrap());
        // Published: 64. Then a mark for 128 is written and the producer dies unpublished.
        marks.write(&roles, at(128), NonZeroU64::new(9).unwrap());
        let after_death = ResumeMarks::read(&roles, at(64));
        assert_eq!(after_death.found().map(NonZeroU64::get), Some(7));
        // Had 128 been published, its mark would be the one.
        assert_eq!(
            ResumeMarks::read(&roles, at(128))
                .found()
                .map(NonZeroU64::get),
            Some(9)
        );
        // The successor writes over the dead producer's stale slot, not over the valid one.
        let mut successor = after_death;
        successor.write(&roles, at(192), NonZeroU64::new(11).unwrap());
        assert_eq!(
            ResumeMarks::read(&roles, at(64))
                .found()
                .map(NonZeroU64::get),
            Some(7)
        );
        assert_eq!(
            ResumeMarks::read(&roles, at(192))
                .found()
                .map(NonZeroU64::get),
            Some(11)
        );
        // A publish without a mark: no slot matches.
        assert_eq!(ResumeMarks::read(&roles, at(256)).found(), None);
    }
}
