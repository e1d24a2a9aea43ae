//! Consumers the producer may overtake (format version 2): a lossy consumer never holds the
//! producer back, receives only whole messages, and counts exactly what it missed; a
//! consumer under `max_lag` is turned lossy when it lags too far, and told; a name under
//! `retain` is evicted once its holder has been gone that long.

use ringfile::{ConsumerOptions, Error, PolicyEvent, Ring, Start};
use std::time::Duration;

fn make(slots: u32, capacity: u64) -> (tempfile::TempDir, Ring) {
    let dir = tempfile::tempdir().unwrap();
    let ring = Ring::options()
        .capacity(capacity)
        .consumers(slots)
        .create(dir.path().join("ring"))
        .unwrap();
    (dir, ring)
}

/// A message of `len` bytes (at least 8) numbered `n`: the number, then bytes derived from it,
/// so that a torn or overwritten message is seen.
fn message(n: u64, len: usize) -> Vec<u8> {
    let mut msg = n.to_le_bytes().to_vec();
    msg.extend((8..len).map(|i| (n as usize).wrapping_mul(31).wrapping_add(i) as u8));
    msg
}

/// Checks that `msg` is whole and returns its number.
fn check(msg: &[u8]) -> u64 {
    let n = u64::from_le_bytes(msg[..8].try_into().unwrap());
    assert_eq!(msg, message(n, msg.len()), "message {n} is torn");
    n
}

/// Receives everything there is; checks that each message is whole and that every gap in the
/// numbers is one the consumer counted as missed. Returns the numbers received.
fn drain(consumer: &mut ringfile::Consumer, expect_next: &mut u64) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        let missed_before = consumer.missed();
        let Some(msg) = consumer.try_recv().unwrap() else {
            return got;
        };
        let n = check(&msg);
        drop(msg);
        let missed = consumer.missed() - missed_before;
        assert_eq!(
            n,
            *expect_next + missed,
            "a gap of {} with {missed} missed",
            n - *expect_next
        );
        *expect_next = n + 1;
        got.push(n);
    }
}

#[test]
fn a_lossy_consumer_never_holds_the_producer_and_counts_what_it_missed() {
    let (_dir, ring) = make(2, 4096);
    let mut producer = ring.producer().unwrap();
    let mut lossy = ring
        .consumer_with(&ConsumerOptions::new().name("live").lossy(true))
        .unwrap();
    assert!(lossy.is_lossy());
    let mut next = 0;
    let mut received = 0;
    for round in 0..50u64 {
        // Ten times what the ring holds, without waiting: nobody holds the producer back.
        for n in round * 1000..(round + 1) * 1000 {
            producer
                .try_send(&message(n, 8 + (n % 40) as usize))
                .unwrap();
        }
        received += drain(&mut lossy, &mut next).len() as u64;
    }
    producer.close().unwrap();
    received += drain(&mut lossy, &mut next).len() as u64;
    assert!(
        lossy.is_ended(),
        "the end of the stream reaches a lossy consumer"
    );
    assert_eq!(received + lossy.missed(), 50_000);
    assert!(
        lossy.missed() > 0 && received > 0,
        "{received} / {}",
        lossy.missed()
    );
}

#[test]
fn a_lossy_consumer_that_keeps_up_misses_nothing() {
    let (_dir, ring) = make(2, 4096);
    let mut producer = ring.producer().unwrap();
    let mut lossy = ring
        .consumer_with(&ConsumerOptions::new().name("live").lossy(true))
        .unwrap();
    let mut next = 0;
    for n in 0..100_000u64 {
        producer.send(&message(n, 24)).unwrap();
        if n % 16 == 15 {
            drain(&mut lossy, &mut next);
        }
    }
    drain(&mut lossy, &mut next);
    assert_eq!((next, lossy.missed()), (100_000, 0));
}

#[test]
fn a_lossy_consumer_beside_a_lossless_one_reads_whole_messages_in_batches() {
    let (_dir, ring) = make(3, 8192);
    let mut producer = ring.producer().unwrap();
    let mut lossless = ring.consumer_named("archive").unwrap();
    let mut lossy = ring
        .consumer_with(&ConsumerOptions::new().name("peek").lossy(true))
        .unwrap();
    let (mut all, mut next, mut seen) = (0u64, 0u64, 0u64);
    for round in 0..40u64 {
        for n in round * 500..(round + 1) * 500 {
            while producer.try_send(&message(n, 40)).is_err() {
                // Full: the lossless one makes room (the lossy one never has to).
                all += drain(&mut lossless, &mut all.clone()).len() as u64;
            }
        }
        // The lossy one reads in batches: the messages are whole, and the gaps are what it
        // missed.
        let missed_before = lossy.missed();
        let mut batch = lossy.try_recv_batch().unwrap();
        let mut numbers = Vec::new();
        while let Some(msg) = batch.next().unwrap() {
            numbers.push(check(msg));
        }
        drop(batch);
        if let Some(&first) = numbers.first() {
            assert!(
                numbers.windows(2).all(|w| w[1] == w[0] + 1),
                "a batch has no gap inside a lap"
            );
            assert_eq!(first, next + (lossy.missed() - missed_before));
            next = numbers.last().unwrap() + 1;
            seen += numbers.len() as u64;
        }
    }
    all += drain(&mut lossless, &mut all.clone()).len() as u64;
    assert_eq!(all, 20_000, "the lossless consumer lost nothing");
    assert!(seen > 0 && lossy.missed() > 0);
    assert_eq!(seen + lossy.missed() + (20_000 - next), 20_000);
}

#[test]
fn a_new_lossy_name_starts_at_the_oldest_whole_message_or_the_latest() {
    let (_dir, ring) = make(3, 4096);
    let mut producer = ring.producer().unwrap();
    for n in 0..1000u64 {
        producer.try_send(&message(n, 16)).unwrap();
    }
    let mut oldest = ring
        .consumer_with(&ConsumerOptions::new().name("old").lossy(true))
        .unwrap();
    let mut latest = ring
        .consumer_with(
            &ConsumerOptions::new()
                .name("new")
                .lossy(true)
                .start(Start::Latest),
        )
        .unwrap();
    producer.try_send(&message(1000, 16)).unwrap();
    let first = check(&oldest.recv().unwrap().unwrap());
    assert!(
        first > 0 && first < 1000,
        "{first}: an old message still whole"
    );
    assert_eq!(check(&latest.recv().unwrap().unwrap()), 1000);
    // Its position is durable: it resumes there, as a lossless name does.
    drop(oldest);
    let mut again = ring
        .consumer_with(&ConsumerOptions::new().name("old").lossy(true))
        .unwrap();
    assert_eq!(check(&again.recv().unwrap().unwrap()), first + 1);
}

#[test]
fn a_consumer_past_its_max_lag_is_turned_lossy_and_told() {
    let (_dir, ring) = make(2, 4096);
    let mut producer = ring.producer().unwrap();
    let options = ConsumerOptions::new().name("slow").max_lag(1024);
    let mut slow = ring.consumer_with(&options).unwrap();
    assert!(!slow.is_lossy());
    // Within its lag, it holds the producer back as a lossless consumer does...
    for n in 0..20u64 {
        producer.try_send(&message(n, 40)).unwrap();
    }
    let mut next = 0;
    assert_eq!(drain(&mut slow, &mut next).len(), 20);
    // ... and past it, the producer stops waiting for it, and says so.
    for n in 20..2000u64 {
        producer.try_send(&message(n, 40)).unwrap();
    }
    let events = producer.take_policy_events();
    assert!(
        matches!(&events[..], [PolicyEvent::TurnedLossy { name, lag }] if name == "slow" && *lag > 1024),
        "{events:?}"
    );
    assert!(slow.is_lossy());
    let got = drain(&mut slow, &mut next);
    assert!(!got.is_empty() && slow.missed() > 0);
    assert_eq!(got.len() as u64 + slow.missed(), 1980);
    // The limit is checked when it is set.
    let err = ring
        .consumer_with(&ConsumerOptions::new().name("x").max_lag(4096))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMaxLag { .. }), "{err}");
    assert!(
        err.to_string().contains("less than the ring's capacity"),
        "{err}"
    );
}

#[test]
fn a_name_whose_holder_is_gone_is_evicted_after_its_retain_time() {
    let (_dir, ring) = make(2, 4096);
    let mut producer = ring.producer().unwrap();
    let options = ConsumerOptions::new()
        .name("gone")
        .retain(Duration::from_millis(50));
    drop(ring.consumer_with(&options).unwrap());
    // The name holds the producer back until its retain time has passed...
    let mut n = 0;
    while producer.try_send(&message(n, 40)).is_ok() {
        n += 1;
    }
    assert!(n < 100, "held back");
    // ... then the producer, waiting for room, evicts it and goes on.
    producer
        .send_timeout(&message(n, 40), Duration::from_secs(30))
        .unwrap();
    let events = producer.take_policy_events();
    assert_eq!(
        events,
        [PolicyEvent::Evicted {
            name: "gone".to_string()
        }]
    );
    let names: Vec<_> = ringfile::Inspector::open(ring.path())
        .unwrap()
        .snapshot()
        .unwrap()
        .consumers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn policies_need_a_ring_with_consumer_slots() {
    let (_dir, ring) = make(1, 4096);
    for options in [
        ConsumerOptions::new().lossy(true),
        ConsumerOptions::new().retain(Duration::from_secs(1)),
        ConsumerOptions::new().max_lag(100),
    ] {
        let err = ring.consumer_with(&options).unwrap_err();
        assert!(err.to_string().contains("--consumers N"), "{err}");
    }
}

/// Found by the hostile-writer fuzz target: a released head (the gate) forged past the
/// published tail made a lossy consumer resynchronise forever, each try finding itself
/// overtaken again. It now says the file is damaged, in one error.
#[test]
fn a_gate_forged_past_the_tail_is_damage_not_a_lap_forever() {
    use std::os::unix::fs::FileExt;
    let (dir, ring) = make(2, 4096);
    let mut producer = ring.producer().unwrap();
    let mut lossy = ring
        .consumer_with(&ConsumerOptions::new().name("l").lossy(true))
        .unwrap();
    producer.send(&message(0, 16)).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("ring"))
        .unwrap();
    // The released head (the gate) lies at file offset 256 (FORMAT.md, "Header page").
    file.write_all_at(&(1u64 << 40).to_le_bytes(), 256).unwrap();
    let got = lossy.try_recv().map(|m| m.map(|m| m.to_vec()));
    match got {
        Err(Error::Corrupt { reason, .. }) => {
            assert_eq!(reason, "released head is past the published tail")
        }
        other => panic!("expected a damaged-file error, got {other:?}"),
    }
}
