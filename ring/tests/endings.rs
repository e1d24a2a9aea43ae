//! How a stream ends, and releasing exactly what was handled: close and abort never wait
//! (unless another writer left no room for the end), reasons are cut to what fits,
//! abandon looks like a death, unread batches and messages come back, long timeouts work,
//! memfd rings cannot be resized.

#[path = "support/full_ring.rs"]
mod full_ring;

use ringfile::{Error, Ring};
use std::os::fd::AsFd;
use std::time::Duration;

/// Fills the ring until not even an empty message fits.
fn fill(producer: &mut ringfile::Producer) -> usize {
    let mut sent = 0;
    for msg in [&[7u8; 40][..], &[]] {
        while producer.try_send(msg).is_ok() {
            sent += 1;
        }
    }
    sent
}

#[test]
fn close_and_abort_never_wait_even_on_a_full_ring() {
    let ring = Ring::memfd(4096).unwrap();
    let mut producer = ring.producer().unwrap();
    let sent = fill(&mut producer);
    assert!(matches!(producer.try_send(&[]), Err(Error::Full)));
    producer.close().unwrap(); // no consumer: would wait forever if it needed room
    let mut consumer = ring.consumer().unwrap();
    for _ in 0..sent {
        drop(consumer.recv().unwrap().unwrap());
    }
    assert!(consumer.recv().unwrap().is_none());

    // A full ring again, then an abort whose reason cannot fit: it ends with an empty one.
    let mut producer = ring.producer().unwrap();
    let sent = fill(&mut producer);
    producer.abort(&"x".repeat(1000)).unwrap();
    for _ in 0..sent {
        drop(consumer.recv().unwrap().unwrap());
    }
    match consumer.recv() {
        Err(e @ Error::StreamAborted { .. }) => {
            let Error::StreamAborted { reason, .. } = &e else {
                unreachable!()
            };
            assert_eq!(reason, "");
            // The text never shows an empty reason.
            assert!(e.to_string().ends_with("no reason recorded"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Reported once, as the stream's end; the ring is empty and open for the next producer.
    assert!(matches!(consumer.try_recv(), Ok(None)));
    assert!(consumer.is_ended());
}

#[test]
fn an_abort_reason_is_cut_to_what_fits_at_a_character_boundary() {
    let ring = Ring::memfd(4096).unwrap();
    let mut producer = ring.producer().unwrap();
    // Records of 2048 and 2032 bytes: 16 bytes left free, room for an 8-byte reason.
    producer.send(&[1; 2040]).unwrap();
    producer.send(&[2; 2024]).unwrap();
    assert!(matches!(producer.try_send(&[0]), Err(Error::Full)));
    // 9 bytes, the 8th inside the last 'é': cut before it.
    producer.abort("aéééé").unwrap();
    let mut consumer = ring.consumer().unwrap();
    assert_eq!(consumer.recv().unwrap().unwrap().len(), 2040);
    assert_eq!(consumer.recv().unwrap().unwrap().len(), 2024);
    match consumer.recv() {
        Err(Error::StreamAborted { reason, .. }) => assert_eq!(reason, "aééé"),
        other => panic!("{other:?}"),
    };
}

/// A file ring left exactly full (`support/full_ring.rs`): the directory and the path.
fn exactly_full_ring() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    full_ring::create_exactly_full_ring(&path);
    (dir, path)
}

#[test]
fn a_ring_left_without_the_reserve_is_closed_once_the_consumer_makes_room() {
    let (_dir, path) = exactly_full_ring();
    let producer = Ring::open(&path).unwrap().producer().unwrap();
    // Not even an END fits: close waits for the consumer (it used to fail with Full and
    // leave the producer looking dead).
    let closer = std::thread::spawn(move || producer.close());
    let mut consumer = Ring::open(&path).unwrap().consumer().unwrap();
    let mut lengths = Vec::new();
    for _ in 0..3 {
        lengths.push(consumer.recv().unwrap().unwrap().len());
    }
    assert_eq!(lengths, [2040, 2032, 0]);
    assert!(consumer.recv().unwrap().is_none(), "no end of stream");
    closer.join().unwrap().unwrap();

    // With a timeout (one thread being both sides, say): no room in time leaves the stream
    // open, with a clean detach, never a producer that looks dead.
    let (_dir, path) = exactly_full_ring();
    let ring = Ring::open(&path).unwrap();
    let producer = ring.producer().unwrap();
    assert!(matches!(
        producer.close_timeout(Duration::from_millis(1)),
        Err(Error::Timeout)
    ));
    let mut consumer = ring.consumer().unwrap();
    for _ in 0..3 {
        drop(consumer.recv().unwrap().unwrap());
    }
    assert!(
        matches!(consumer.try_recv(), Ok(None)) && !consumer.is_ended(),
        "detached cleanly"
    );
    ring.producer()
        .unwrap()
        .close_timeout(Duration::ZERO)
        .unwrap();
    assert!(consumer.recv().unwrap().is_none());
    drop(consumer);

    // The same ring, aborted: the reason takes what the consumer freed.
    let (_dir, path) = exactly_full_ring();
    let producer = Ring::open(&path).unwrap().producer().unwrap();
    let mut consumer = Ring::open(&path).unwrap().consumer().unwrap();
    drop(consumer.recv().unwrap().unwrap()); // 2048 bytes free
    producer.abort("input failed").unwrap();
    for _ in 0..2 {
        drop(consumer.recv().unwrap().unwrap());
    }
    match consumer.recv() {
        Err(Error::StreamAborted { reason, .. }) => assert_eq!(reason, "input failed"),
        other => panic!("{other:?}"),
    };
}

#[test]
fn an_abort_in_a_batch_is_reported_after_the_messages_before_it() {
    let ring = Ring::memfd(4096).unwrap();
    let mut producer = ring.producer().unwrap();
    producer.send(b"a").unwrap();
    producer.send(b"b").unwrap();
    producer.abort("no more input").unwrap();
    let mut consumer = ring.consumer().unwrap();
    let mut batch = consumer.recv_batch().unwrap();
    assert_eq!(batch.next().unwrap(), Some(&b"a"[..]));
    assert_eq!(batch.next().unwrap(), Some(&b"b"[..]));
    match batch.next() {
        Err(Error::StreamAborted { reason, .. }) => assert_eq!(reason, "no more input"),
        other => panic!("{other:?}"),
    }
    assert!(batch.is_end());
    drop(batch);
    assert!(matches!(consumer.try_recv(), Ok(None)));
    assert!(consumer.is_ended());
}

#[test]
fn unread_batches_and_messages_are_received_again() {
    let ring = Ring::memfd(4096).unwrap();
    let mut producer = ring.producer().unwrap();
    for i in 0..5u8 {
        producer.send(&[i]).unwrap();
    }
    producer.close().unwrap();
    let mut consumer = ring.consumer().unwrap();
    let mut batch = consumer.recv_batch().unwrap();
    assert_eq!(batch.next().unwrap(), Some(&[0][..]));
    batch.release(); // 0 handled
    assert_eq!(batch.next().unwrap(), Some(&[1][..]));
    assert_eq!(batch.next().unwrap(), Some(&[2][..]));
    batch.unread(); // 1 and 2 were not
    let msg = consumer.recv().unwrap().unwrap();
    assert_eq!(&*msg, &[1]);
    msg.unread();
    // A new consumer (a restarted process) starts at the first message not released.
    drop(consumer);
    let mut consumer = ring.consumer().unwrap();
    let mut got = Vec::new();
    while let Some(msg) = consumer.recv().unwrap() {
        got.push(msg[0]);
    }
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn an_abandoned_producer_is_reported_as_died() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let ring = Ring::create(&path, 4096).unwrap();
    let mut producer = ring.producer().unwrap();
    producer.send(b"last").unwrap();
    producer.abandon();
    let mut consumer = Ring::open(&path).unwrap().consumer().unwrap();
    assert_eq!(&*consumer.recv().unwrap().unwrap(), b"last");
    assert!(matches!(
        consumer.recv_timeout(Duration::from_secs(5)),
        Err(Error::ProducerDied { .. })
    ));
}

#[test]
fn the_longest_timeouts_mean_forever_and_do_not_panic() {
    let ring = Ring::memfd(4096).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    producer.send_timeout(b"x", Duration::MAX).unwrap();
    producer
        .claim_timeout(1, Duration::MAX)
        .unwrap()
        .copy_from_slice(b"y");
    assert_eq!(
        &*consumer.recv_timeout(Duration::MAX).unwrap().unwrap(),
        b"x"
    );
    // The claim above was dropped, not committed: nothing more was sent.
    assert!(matches!(consumer.try_recv(), Ok(None)));
    let mut batch = producer.batch();
    batch.send_timeout(b"z", Duration::MAX).unwrap();
    drop(batch);
    let mut batch = consumer.recv_batch_timeout(Duration::MAX).unwrap();
    assert_eq!(batch.next().unwrap(), Some(&b"z"[..]));
}

#[test]
fn memfd_rings_cannot_be_resized_by_anyone() {
    use std::os::fd::AsFd;
    let ring = Ring::memfd(4096).unwrap();
    let file = std::fs::File::from(ring.as_fd().try_clone_to_owned().unwrap());
    assert!(file.set_len(0).is_err());
    assert!(file.set_len(1 << 20).is_err());
    assert_eq!(file.metadata().unwrap().len(), ring.file_len());
}

/// Producer A closes its stream; producer B attaches before the consumer has read A's end
/// marker, sends, and dies. Reading A's end must not count as B's end: B's death is reported.
#[test]
fn a_producer_that_attached_before_the_previous_end_was_read_is_reported_when_it_dies() {
    for aborted in [false, true] {
        let ring = Ring::memfd(4096).unwrap();
        let mut a = ring.producer().unwrap();
        a.send(b"from A").unwrap();
        if aborted {
            a.abort("A gave up").unwrap();
        } else {
            a.close().unwrap();
        }
        let mut b = ring.producer().unwrap();
        b.send(b"from B").unwrap();
        b.abandon(); // as if killed: the role is free, the stream not closed

        let mut consumer = ring.consumer().unwrap();
        let wait = Duration::from_secs(10);
        assert_eq!(&*consumer.recv_timeout(wait).unwrap().unwrap(), b"from A");
        match consumer.recv_timeout(wait) {
            Ok(None) if !aborted => {}
            Err(Error::StreamAborted { .. }) if aborted => {}
            other => panic!("A's end: {other:?}"),
        }
        assert_eq!(&*consumer.recv_timeout(wait).unwrap().unwrap(), b"from B");
        match consumer.recv_timeout(wait) {
            Err(Error::ProducerDied { .. }) => {}
            other => panic!("B died, but recv gave {other:?}"),
        }
        // Reported once: then the consumer waits for the next producer.
        assert!(matches!(
            consumer.recv_timeout(Duration::from_millis(300)),
            Err(Error::Timeout)
        ));
    }
}

/// A producer that published its end and then died before clearing its attached bit is not
/// reported as died: its stream ended properly.
#[test]
fn a_producer_whose_own_end_was_read_is_never_reported_as_died() {
    use std::os::unix::fs::FileExt;
    const PRODUCER_STATE: u64 = 648; // FORMAT.md
    let ring = Ring::memfd(4096).unwrap();
    let mut a = ring.producer().unwrap();
    a.send(b"x").unwrap();
    a.close().unwrap();
    // "Died between publishing the end and clearing the bit": set the bit again.
    let file = std::fs::File::from(ring.as_fd().try_clone_to_owned().unwrap());
    let mut word = [0u8; 8];
    file.read_exact_at(&mut word, PRODUCER_STATE).unwrap();
    let state = u64::from_le_bytes(word);
    assert_eq!(state & 1, 0, "close clears the attached bit");
    file.write_all_at(&(state | 1).to_le_bytes(), PRODUCER_STATE)
        .unwrap();

    let mut consumer = ring.consumer().unwrap();
    assert_eq!(&*consumer.recv().unwrap().unwrap(), b"x");
    assert!(consumer.recv().unwrap().is_none());
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(300)),
        Err(Error::Timeout)
    ));
}

#[test]
fn kept_messages_hold_their_space_until_released_and_come_back_to_the_next_consumer() {
    let ring = Ring::memfd(4096).unwrap();
    let mut producer = ring.producer().unwrap();
    let sent = fill(&mut producer);
    let mut consumer = ring.consumer().unwrap();
    // Read everything, keep it: the producer gets no room back.
    let mut batch = consumer.recv_batch().unwrap();
    let mut read = 0;
    while batch.next().unwrap().is_some() {
        read += 1;
    }
    batch.keep();
    assert_eq!((read, consumer.kept()), (sent, sent as u64));
    assert!(matches!(consumer.try_recv(), Ok(None)));
    assert!(!consumer.is_ended());
    assert!(matches!(producer.try_send(&[]), Err(Error::Full)));
    // Give back what lay before a mark: the producer has room again, the rest stays kept.
    drop(consumer);
    let mut consumer = ring.consumer().unwrap();
    consumer.recv().unwrap().unwrap().keep();
    consumer.recv().unwrap().unwrap().keep();
    let mark = consumer.read_mark();
    consumer.recv().unwrap().unwrap().keep();
    consumer.release_to(mark);
    assert_eq!(consumer.kept(), 1);
    consumer.release_to(mark); // again: nothing more
    assert_eq!(consumer.kept(), 1);
    producer.send(&[7u8; 40]).unwrap();
    producer.close().unwrap();
    // The third was kept, not released: a new consumer reads it first.
    drop(consumer);
    let mut consumer = ring.consumer().unwrap();
    let mut received = 0;
    while let Some(msg) = consumer.recv().unwrap() {
        msg.keep();
        received += 1;
    }
    assert_eq!(received, sent - 2 + 1);
    // The end released everything kept before it.
    assert_eq!(consumer.kept(), 0);
    assert!(consumer.is_ended());
}
