//! Property tests of the trust boundary, on stable Rust: the drivers the cargo-fuzz targets
//! run (`ring/fuzz`), fed by proptest. Arbitrary file bytes must open as a ring or fail
//! with an error; producer and consumer operations on a ring that a hostile writer changes
//! between them must never panic, leave the mapping, or change a held message.

#[path = "support/fuzz_ops.rs"]
mod fuzz_ops;

use proptest::prelude::*;

/// [`fuzz_ops::open_bytes`] on `rest` in the shape its first byte `shape` picks.
fn open_shaped(shape: u8, rest: Vec<u8>) {
    let mut data = vec![shape];
    data.extend(rest);
    fuzz_ops::open_bytes(&data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_file_bytes_open_or_fail_cleanly(
        data in prop::collection::vec(any::<u8>(), 0..6000)
    ) {
        fuzz_ops::open_bytes(&data);
    }

    /// Mostly a valid header with arbitrary control block and records (first byte 1 mod 4).
    #[test]
    fn arbitrary_ring_contents_are_validated_before_use(
        shape in (0u8..64).prop_map(|s| s * 4 + 1),
        rest in prop::collection::vec(any::<u8>(), 0..2200)
    ) {
        open_shaped(shape, rest);
    }

    /// A version 2 header (consumer slots) with arbitrary control block, slots (states,
    /// positions, names, counters, policy words) and records (first byte 3 mod 4).
    #[test]
    fn arbitrary_slots_are_validated_before_use(
        shape in (0u8..64).prop_map(|s| s * 4 + 3),
        rest in prop::collection::vec(any::<u8>(), 0..6000)
    ) {
        open_shaped(shape, rest);
    }

    #[test]
    fn producer_and_consumer_survive_a_hostile_writer(
        program in prop::collection::vec(any::<u8>(), 1..400)
    ) {
        fuzz_ops::hostile_ops(&program);
    }
}

/// What fuzzing found: another process moves the published tail backwards (below records
/// this process's consumer has already accepted) while no producer is attached; a producer of
/// this process attaching then would append over a message the consumer is about to hold.
#[test]
fn fuzz_finding_a_tail_moved_backwards_never_lets_our_producer_overwrite_our_messages() {
    fuzz_ops::hostile_ops(include_bytes!("support/regressions/tail_moved_backwards"));
}

/// What fuzzing found next: while this process's producer is attached, another process moves
/// the published tail *forward*, past what our producer wrote; our consumer read a "message"
/// there, and our producer's next send wrote over it while it was held. A consumer now never
/// reads past the tail its own process's producer published.
#[test]
fn fuzz_finding_a_tail_forged_past_our_producer_never_lets_it_overwrite_our_messages() {
    fuzz_ops::hostile_ops(include_bytes!(
        "support/regressions/tail_forged_past_our_producer"
    ));
}

/// Found by `cargo fuzz` (hostile_writer): with our consumer holding a message on a full ring
/// and the shared head forged forward, a producer that ended its stream and re-attached took
/// the forged head as its idea of free space and wrote its ABORT record over the held message.
#[test]
fn fuzz_finding_a_forged_head_at_attach_never_lets_our_producer_overwrite_our_messages() {
    fuzz_ops::hostile_ops(include_bytes!(
        "support/regressions/abort_over_held_message"
    ));
}
