//! What goes in comes out, in order: property tests over random message sizes (including 0
//! and the maximum), random capacities and many wraps, plus a two-thread stress test.

use proptest::prelude::*;
use ringfile::format::{CONTROL_OFFSET, HEADER_SIZE};
use ringfile::{Error, Ring, WaitStrategy};
use std::collections::VecDeque;
use std::os::unix::fs::FileExt;

/// A message whose bytes identify it: `seq` repeated, so a torn or misplaced message shows.
fn message(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as u8).wrapping_add((i as u8).wrapping_mul(7)))
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    /// Send a message of this length (as a fraction of the maximum, in 1/1000).
    Send(u16),
    /// Send a message of the maximum length.
    SendMax,
    /// Send via claim/commit, committing a prefix.
    Claim(u16, u16),
    /// Receive up to this many messages one by one.
    Recv(u8),
    /// Receive everything available as one batch.
    Batch,
    /// Send several messages in one batch, of this length; in the pattern's bit `i`, whether
    /// message `i` goes by claim instead; bit 6: try a message one byte too large first; bit
    /// 7: leak the batch (`mem::forget`) instead of dropping it, then publish from a new one.
    SendBatch(u8, u16, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u16..=1000).prop_map(Op::Send),
        1 => Just(Op::SendMax),
        2 => (0u16..=1000, 0u16..=1000).prop_map(|(a, b)| Op::Claim(a, b)),
        3 => (1u8..8).prop_map(Op::Recv),
        2 => Just(Op::Batch),
        2 => (1u8..6, 0u16..=1000, any::<u8>()).prop_map(|(n, l, p)| Op::SendBatch(n, l, p)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn single_thread_model(cap_log in 6u32..=14, ops in proptest::collection::vec(op(), 1..400)) {
        let capacity = 1u64 << cap_log;
        let ring = Ring::memfd(capacity).unwrap();
        let max = ring.max_message_len();
        prop_assert!(max as u64 >= capacity / 4);
        let mut producer = ring.producer().unwrap();
        let mut consumer = ring.consumer().unwrap();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut seq = 0u64;
        let scaled = |f: u16| (max * f as usize) / 1000;
        let recv_one = |consumer: &mut ringfile::Consumer, model: &mut VecDeque<Vec<u8>>| -> Result<bool, TestCaseError> {
            match consumer.try_recv() {
                Ok(Some(msg)) => {
                    let expected = model.pop_front().expect("received a message never sent");
                    prop_assert_eq!(&*msg, &expected[..]);
                    return Ok(true);
                }
                Ok(None) => {}
                Err(e) => prop_assert!(false, "recv failed: {e}"),
            }
            // Nothing now (the message's borrow ends with the match).
            prop_assert!(!consumer.is_ended(), "unexpected end of stream");
            prop_assert!(model.is_empty(), "empty but {} queued", model.len());
            Ok(false)
        };
        for op in ops {
            match op {
                Op::Send(f) | Op::SendBatch(1, f, 0) => {
                    let m = message(seq, scaled(f));
                    match producer.try_send(&m) {
                        Ok(()) => { model.push_back(m); seq += 1; }
                        Err(Error::Full) => prop_assert!(!model.is_empty(), "full while empty"),
                        Err(e) => prop_assert!(false, "send failed: {e}"),
                    }
                }
                Op::SendMax => {
                    let m = message(seq, max);
                    match producer.try_send(&m) {
                        Ok(()) => { model.push_back(m); seq += 1; }
                        Err(Error::Full) => prop_assert!(!model.is_empty()),
                        Err(e) => prop_assert!(false, "send failed: {e}"),
                    }
                    let too_large = matches!(producer.try_send(&vec![0; max + 1]), Err(Error::TooLarge { .. }));
                    prop_assert!(too_large);
                }
                Op::Claim(a, b) => {
                    let len = scaled(a);
                    let keep = len * b as usize / 1000;
                    let m = message(seq, keep);
                    match producer.try_claim(len) {
                        Ok(mut claim) => {
                            claim[..keep].copy_from_slice(&m);
                            claim.commit_len(keep);
                            model.push_back(m);
                            seq += 1;
                        }
                        Err(Error::Full) => prop_assert!(!model.is_empty()),
                        Err(e) => prop_assert!(false, "claim failed: {e}"),
                    }
                }
                Op::SendBatch(n, f, pattern) => {
                    let mut batch = producer.batch();
                    if pattern & 0x40 != 0 {
                        let too_large = matches!(batch.try_send(&vec![0; max + 1]), Err(Error::TooLarge { .. }));
                        prop_assert!(too_large);
                    }
                    for i in 0..n {
                        let m = message(seq, scaled(f));
                        let sent = if pattern & (1 << i) != 0 {
                            batch.try_claim(m.len()).map(|mut claim| {
                                claim.copy_from_slice(&m);
                                claim.commit();
                            })
                        } else {
                            batch.try_send(&m)
                        };
                        match sent {
                            Ok(()) => { model.push_back(m); seq += 1; }
                            Err(Error::Full) => break,
                            Err(e) => prop_assert!(false, "send failed: {e}"),
                        }
                    }
                    if pattern & 0x80 != 0 {
                        // What a leaked batch sent is the producer's: the next publish carries it.
                        std::mem::forget(batch);
                        drop(producer.batch());
                    }
                }
                Op::Recv(n) => {
                    for _ in 0..n {
                        if !recv_one(&mut consumer, &mut model)? { break; }
                    }
                }
                Op::Batch => {
                    let mut batch = consumer.try_recv_batch().unwrap();
                    while let Some(msg) = batch.next().unwrap() {
                        let expected = model.pop_front().expect("batch yielded a message never sent");
                        prop_assert_eq!(msg, &expected[..]);
                    }
                    prop_assert!(!batch.is_end());
                    drop(batch);
                    prop_assert!(model.is_empty());
                }
            }
        }
        // Drain, then the end of the stream.
        while recv_one(&mut consumer, &mut model)? {}
        prop_assert!(model.is_empty());
        producer.close().unwrap();
        prop_assert!(consumer.try_recv().unwrap().is_none());
        prop_assert!(consumer.is_ended());
        // The marker is consumed: after it, nothing (and still the end).
        prop_assert!(consumer.try_recv().unwrap().is_none());
        prop_assert!(consumer.is_ended());
    }

    /// Whatever garbage the data region and positions hold, the consumer returns messages
    /// or a clean error — never panics, never reads outside the region.
    #[test]
    fn garbage_never_panics(cap_log in 6u32..=10, data in proptest::collection::vec(any::<u8>(), 64..1024), head in 0u64..4096, tail_delta in 0u64..2048) {
        let capacity = 1u64 << cap_log;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        drop(Ring::create(&path, capacity).unwrap());
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let data = &data[..data.len().min(capacity as usize)];
        file.write_all_at(data, HEADER_SIZE).unwrap();
        let head = head & !7;
        let tail = head + (tail_delta & !7);
        file.write_all_at(&tail.to_le_bytes(), CONTROL_OFFSET).unwrap();
        file.write_all_at(&head.to_le_bytes(), CONTROL_OFFSET + 128).unwrap();
        match Ring::open(&path) {
            Err(Error::BadPositions { .. }) => prop_assert!(tail - head > capacity),
            Err(e) => prop_assert!(false, "unexpected open error: {e}"),
            Ok(ring) => {
                let mut consumer = ring.consumer().unwrap();
                for _ in 0..64 {
                    match consumer.try_recv() {
                        Ok(Some(msg)) => prop_assert!(msg.len() < capacity as usize),
                        Ok(None) | Err(Error::Corrupt { .. }) => break,
                        Err(e) => prop_assert!(false, "unexpected error: {e}"),
                    }
                }
            }
        }
    }
}

/// Two threads, a small ring, varied sizes: every message arrives intact and in order.
fn stress(wait: WaitStrategy, count: u64, capacity: u64) {
    let ring = Ring::memfd(capacity).unwrap();
    let max = ring.max_message_len();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    producer.set_wait_strategy(wait);
    consumer.set_wait_strategy(wait);
    let len_of = move |seq: u64| ((seq * 2_654_435_761) % (max as u64 + 1)) as usize;
    let sender = std::thread::spawn(move || {
        for seq in 0..count {
            let len = len_of(seq);
            if seq % 3 == 0 {
                let mut claim = producer.claim(len).unwrap();
                claim.copy_from_slice(&message(seq, len));
                claim.commit();
            } else {
                producer.send(&message(seq, len)).unwrap();
            }
        }
        producer.close().unwrap();
    });
    let mut seq = 0u64;
    loop {
        if seq.is_multiple_of(2) {
            match consumer.recv().unwrap() {
                Some(msg) => assert_eq!(&*msg, &message(seq, len_of(seq))[..], "message {seq}"),
                None => break,
            }
            seq += 1;
        } else {
            let mut batch = consumer.recv_batch().unwrap();
            while let Some(msg) = batch.next().unwrap() {
                assert_eq!(msg, &message(seq, len_of(seq))[..], "message {seq}");
                seq += 1;
            }
            if batch.is_end() {
                break;
            }
        }
    }
    assert_eq!(seq, count);
    sender.join().unwrap();
}

#[test]
fn two_threads_adaptive() {
    stress(WaitStrategy::Adaptive, 40_000, 4096);
}

#[test]
fn two_threads_park() {
    stress(WaitStrategy::Park, 20_000, 1024);
}

#[test]
fn two_threads_spin() {
    stress(WaitStrategy::Spin, 40_000, 64 * 1024);
}

#[test]
fn two_threads_yield() {
    stress(WaitStrategy::Yield, 20_000, 256);
}

#[test]
fn timeouts() {
    for wait in [
        WaitStrategy::Spin,
        WaitStrategy::Yield,
        WaitStrategy::Park,
        WaitStrategy::Adaptive,
    ] {
        // A fresh ring each time: how much fits depends on where the records start.
        let ring = Ring::memfd(64).unwrap();
        let mut producer = ring.producer().unwrap();
        let mut consumer = ring.consumer().unwrap();
        consumer.set_wait_strategy(wait);
        producer.set_wait_strategy(wait);
        let d = std::time::Duration::from_millis(20);
        assert!(matches!(consumer.recv_timeout(d), Err(Error::Timeout)));
        assert!(matches!(
            consumer.recv_batch_timeout(d).map(|_| ()),
            Err(Error::Timeout)
        ));
        // 32 + 24 bytes of records: the last 8 of the 64 are kept for the end marker.
        producer.send_timeout(&[1; 24], d).unwrap();
        producer.send_timeout(&[2; 16], d).unwrap();
        assert!(matches!(
            producer.send_timeout(&[3; 1], d),
            Err(Error::Timeout)
        ));
        assert!(matches!(
            producer.claim_timeout(0, d).map(|_| ()),
            Err(Error::Timeout)
        ));
        assert_eq!(&*consumer.recv_timeout(d).unwrap().unwrap(), &[1; 24]);
        assert_eq!(&*consumer.recv_timeout(d).unwrap().unwrap(), &[2; 16]);
    }
}

#[test]
fn empty_messages_and_abort() {
    let ring = Ring::memfd(64).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    for _ in 0..100 {
        producer.send(b"").unwrap();
        let claim = producer.claim(16).unwrap();
        claim.discard();
        assert_eq!(consumer.try_recv().unwrap().unwrap().len(), 0);
        assert!(matches!(consumer.try_recv(), Ok(None)));
    }
}

#[test]
fn new_stream_after_close() {
    let ring = Ring::memfd(4096).unwrap();
    let mut consumer = ring.consumer().unwrap();
    for stream in 0u8..3 {
        let mut producer = ring.producer().unwrap();
        producer.send(&[stream]).unwrap();
        producer.close().unwrap();
        assert_eq!(&*consumer.recv().unwrap().unwrap(), &[stream]);
        assert!(consumer.recv().unwrap().is_none());
    }
}

#[test]
fn a_dropped_producer_ends_the_stream_and_a_detached_one_leaves_it_open() {
    let ring = Ring::memfd(4096).unwrap();
    let mut consumer = ring.consumer().unwrap();
    {
        let mut producer = ring.producer().unwrap();
        let mut batch = producer.batch();
        batch.send(b"kept").unwrap();
    }
    // Like a dropped channel sender (an early `?` return, say): the consumer drains, then
    // learns the stream ended. It used to wait for ever.
    assert_eq!(&*consumer.recv().unwrap().unwrap(), b"kept");
    assert!(consumer.recv().unwrap().is_none());

    // Keeping the stream open for a successor is explicit.
    let mut producer = ring.producer().unwrap();
    producer.send(b"more").unwrap();
    producer.detach();
    assert_eq!(&*consumer.recv().unwrap().unwrap(), b"more");
    // No end marker, and a clean detach is not a death: the consumer just waits.
    assert!(matches!(
        consumer.recv_timeout(std::time::Duration::from_millis(250)),
        Err(Error::Timeout)
    ));
}

#[test]
fn roles_are_exclusive_in_process() {
    let ring = Ring::memfd(4096).unwrap();
    let p = ring.producer().unwrap();
    let c = ring.consumer().unwrap();
    // The holder is this process, and the error says so (it used to call this process
    // "another live process", with its own pid).
    {
        let err = ring.producer().unwrap_err();
        assert!(
            matches!(err, Error::RoleTaken { role: ringfile::Role::Producer, pid: Some(pid), by_this_process: true, .. } if pid == std::process::id()),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("producer role is already held by this process"),
            "{err}"
        );
    }
    assert!(matches!(
        ring.consumer(),
        Err(Error::RoleTaken {
            by_this_process: true,
            ..
        })
    ));
    drop(p);
    drop(c);
    drop(ring.producer().unwrap());
    drop(ring.consumer().unwrap());
}

#[test]
fn sync_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Ring::create(dir.path().join("ring"), 4096).unwrap();
    let mut producer = ring.producer().unwrap();
    producer.send(b"durable").unwrap();
    producer.sync().unwrap();
    ring.sync().unwrap();
    drop(producer);
    drop(ring);
    let mut consumer = Ring::open(dir.path().join("ring"))
        .unwrap()
        .consumer()
        .unwrap();
    assert_eq!(&*consumer.try_recv().unwrap().unwrap(), b"durable");
}

#[test]
fn a_producer_dropped_by_a_panic_ends_the_stream_as_failed() {
    let ring = Ring::memfd(4096).unwrap();
    let mut consumer = ring.consumer().unwrap();
    let mut producer = ring.producer().unwrap();
    let sender = std::thread::spawn(move || {
        producer.send(b"last words").unwrap();
        panic!("producer thread fails");
    });
    assert!(sender.join().is_err());
    assert_eq!(&*consumer.recv().unwrap().unwrap(), b"last words");
    match consumer.recv() {
        Err(Error::StreamAborted { reason, .. }) => {
            assert_eq!(reason, "the producer's thread panicked")
        }
        other => panic!("{other:?}"),
    };
}

/// The copying receive returns each message whole, whatever its length (whole words and a
/// partial last word), and the end of the stream.
#[test]
fn recv_into_copies_every_length_exactly() {
    let ring = ringfile::Ring::memfd(4096).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    assert_eq!(consumer.max_message_len(), 4096 / 2 - 8);
    assert_eq!(consumer.max_message_len(), producer.max_message_len());
    let mut buf = vec![0xEE; 100]; // replaced, not appended to
    assert_eq!(consumer.try_recv_into(&mut buf).unwrap(), None);
    assert!(!consumer.is_ended());
    for len in 0..=40usize {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        producer.send(&msg).unwrap();
        assert_eq!(consumer.try_recv_into(&mut buf).unwrap(), Some(len));
        assert_eq!(buf, msg);
        producer.send(&msg).unwrap();
        let held = consumer.recv().unwrap().unwrap();
        let mut copy = Vec::new();
        held.copy_into(&mut copy);
        assert_eq!(copy, msg);
    }
    producer.send(b"last").unwrap();
    producer.close().unwrap();
    assert_eq!(
        consumer
            .recv_into_timeout(&mut buf, std::time::Duration::from_secs(5))
            .unwrap(),
        Some(4)
    );
    assert_eq!(buf, b"last");
    assert_eq!(consumer.recv_into(&mut buf).unwrap(), None);
}

#[test]
fn try_for_each_stops_at_a_failure_and_gives_that_message_back() {
    let ring = Ring::memfd(4096).unwrap();
    let (mut producer, mut consumer) = (ring.producer().unwrap(), ring.consumer().unwrap());
    for n in 0u8..5 {
        producer.send(&[n]).unwrap();
    }
    let mut seen = Vec::new();
    let mut batch = consumer.recv_batch().unwrap();
    let result = batch.try_for_each(|msg| {
        if msg[0] == 3 {
            return Err(Error::Timeout); // any error of the caller's
        }
        seen.push(msg[0]);
        Ok(())
    });
    assert!(matches!(result, Err(Error::Timeout)));
    assert_eq!(batch.count(), 3);
    drop(batch); // releases 0, 1, 2 only
    assert_eq!(seen, [0, 1, 2]);
    assert_eq!(&*consumer.try_recv().unwrap().unwrap(), &[3]);
    assert_eq!(&*consumer.try_recv().unwrap().unwrap(), &[4]);
    assert!(consumer.try_recv().unwrap().is_none() && !consumer.is_ended());
}

/// What the docs state of threads (every public type is `Send` and `Sync`; the sides'
/// methods take `&mut self`, so one thread uses a side at a time), checked at compile time so
/// the docs cannot drift.
#[test]
fn thread_safety_is_what_the_docs_say() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Ring>();
    sync::<Ring>();
    send::<ringfile::Producer>();
    sync::<ringfile::Producer>();
    send::<ringfile::Consumer>();
    sync::<ringfile::Consumer>();
    send::<ringfile::Message<'static>>();
    sync::<ringfile::Message<'static>>();
    send::<Error>();
    sync::<Error>();
}

#[test]
fn the_traffic_counters_count_payload_bytes_of_what_was_published_and_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let ring = Ring::create(&path, 1 << 16).unwrap();
    let counters = || {
        let s = ringfile::Inspector::open(&path)
            .unwrap()
            .snapshot()
            .unwrap();
        (
            (s.published_messages, s.published_bytes),
            (s.released_messages, s.released_bytes),
        )
    };
    let mut producer = ring.producer().unwrap();
    producer.send(&[1; 10]).unwrap();
    let mut claim = producer.claim(100).unwrap();
    claim[..3].copy_from_slice(b"abc");
    claim.commit_len(3);
    let mut batch = producer.batch();
    for len in [0, 7, 20] {
        batch.send(&vec![2; len]).unwrap();
    }
    drop(batch);
    // Five messages of 10 + 3 + 0 + 7 + 20 payload bytes (in 112 bytes of records).
    assert_eq!(counters(), ((5, 40), (0, 0)));

    let mut consumer = ring.consumer().unwrap();
    drop(consumer.recv().unwrap().unwrap());
    assert_eq!(counters().1, (1, 10));
    // A message given back is not released.
    consumer.recv().unwrap().unwrap().unread();
    assert_eq!(counters().1, (1, 10));
    // A batch whose handler fails on the third message releases the two before it.
    let mut batch = consumer.recv_batch().unwrap();
    let mut seen = 0;
    let failed = batch.try_for_each(|_| {
        seen += 1;
        if seen == 3 {
            Err(Error::Full)
        } else {
            Ok(())
        }
    });
    assert!(matches!(failed, Err(Error::Full)));
    drop(batch);
    assert_eq!(counters().1, (3, 13));
    // A batch released halfway, then at its end.
    let mut batch = consumer.recv_batch().unwrap();
    batch.next().unwrap().unwrap();
    batch.release();
    assert_eq!(counters().1, (4, 20));
    batch.next().unwrap().unwrap();
    drop(batch);
    assert_eq!(counters(), ((5, 40), (5, 40)));
    // The end marker counts as neither.
    producer.close().unwrap();
    assert!(consumer.recv().unwrap().is_none());
    assert_eq!(counters(), ((5, 40), (5, 40)));
    // A new producer and consumer count on from the file.
    let mut producer = ring.producer().unwrap();
    producer.send(b"xy").unwrap();
    drop(consumer);
    let mut consumer = ring.consumer().unwrap();
    drop(consumer.recv().unwrap().unwrap());
    assert_eq!(counters(), ((6, 42), (6, 42)));
}
