//! Several consumers on one ring (format version 2): every named consumer reads every
//! message; names are exclusive and durable; the producer is held back by the slowest
//! registered consumer and by none that was evicted; bad slot counts and names are refused.

use ringfile::format::{FORMAT_VERSION, HEADER_SIZE};
use ringfile::{ConsumerOptions, Error, Ring, Start};
use std::os::unix::fs::FileExt;
use std::time::Duration;

fn make(slots: u32, capacity: u64) -> (tempfile::TempDir, std::path::PathBuf, Ring) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let ring = Ring::options()
        .capacity(capacity)
        .consumers(slots)
        .create(&path)
        .unwrap();
    (dir, path, ring)
}

fn seq(msg: &[u8]) -> u64 {
    u64::from_le_bytes(msg[..8].try_into().unwrap())
}

#[test]
fn a_ring_with_slots_is_version_2_and_a_ring_with_one_is_version_1() {
    let (_dir, path, ring) = make(3, 4096);
    assert_eq!(ring.consumers(), 3);
    assert_eq!(ring.file_len(), HEADER_SIZE + 4096);
    let file = std::fs::File::open(&path).unwrap();
    let mut header = [0u8; 52];
    file.read_exact_at(&mut header, 0).unwrap();
    assert_eq!(
        u32::from_le_bytes(header[8..12].try_into().unwrap()),
        FORMAT_VERSION
    );
    assert_eq!(u32::from_le_bytes(header[48..52].try_into().unwrap()), 3);
    assert_eq!(Ring::open(&path).unwrap().consumers(), 3);

    let (_dir, path, ring) = make(1, 4096);
    assert_eq!(ring.consumers(), 1);
    let file = std::fs::File::open(&path).unwrap();
    file.read_exact_at(&mut header, 0).unwrap();
    assert_eq!(u32::from_le_bytes(header[8..12].try_into().unwrap()), 1);

    // 64 slots need more than one header page: the data region moves.
    let (_dir, _path, ring) = make(64, 4096);
    assert_eq!(ring.file_len(), 3 * HEADER_SIZE + 4096);
}

#[test]
fn bad_slot_counts_and_names_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [0, 257] {
        let err = Ring::options()
            .consumers(bad)
            .create(dir.path().join(format!("r{bad}")))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConsumers { .. }), "{err}");
        assert!(!dir.path().join(format!("r{bad}")).exists());
    }
    let (_dir, path, ring) = make(2, 4096);
    let err = Ring::options().consumers(3).open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ConsumersMismatch {
                requested: 3,
                actual: 2,
                ..
            }
        ),
        "{err}"
    );
    for name in ["", "a\nb", &"x".repeat(65)] {
        let err = ring.consumer_named(name).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{err}");
        assert!(!err.to_string().contains('\n'));
    }
    let (_dir, _path, single) = make(1, 4096);
    let err = single.consumer_named("archive").unwrap_err();
    assert!(matches!(err, Error::NoSlot { .. }), "{err}");
    assert!(err.to_string().contains("--consumers"), "{err}");
    // The default consumer of a ring with one slot is the name "default".
    drop(single.consumer_named("default").unwrap());
}

#[test]
fn a_forged_slot_count_is_refused_naming_the_field() {
    let (_dir, path, ring) = make(2, 4096);
    drop(ring);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for forged in [0u32, 1, 257, 40] {
        file.write_all_at(&forged.to_le_bytes(), 48).unwrap();
        let err = Ring::open(&path).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::BadHeader { .. }) && text.contains("consumer slots")
                || text.contains("header size"),
            "{forged}: {text}"
        );
        assert!(!text.contains('\n'));
    }
}

#[test]
fn every_named_consumer_reads_every_message_through_a_small_ring() {
    const N: u64 = 20_000;
    let (_dir, _path, ring) = make(3, 1024);
    let names = ["a", "b", "c"];
    let consumers: Vec<_> = names
        .iter()
        .map(|name| ring.consumer_named(name).unwrap())
        .collect();
    let readers: Vec<_> = consumers
        .into_iter()
        .map(|mut consumer| {
            std::thread::spawn(move || {
                let mut next = 0;
                let name = consumer.name();
                while let Some(msg) = consumer.recv().unwrap() {
                    assert_eq!(seq(&msg), next, "{name}");
                    next += 1;
                }
                next
            })
        })
        .collect();
    let mut producer = ring.producer().unwrap();
    for i in 0..N {
        producer.send(&i.to_le_bytes()).unwrap();
    }
    producer.close().unwrap();
    for reader in readers {
        assert_eq!(reader.join().unwrap(), N);
    }
}

#[test]
fn a_name_is_exclusive_and_its_position_is_durable() {
    let (_dir, path, ring) = make(2, 4096);
    let mut a = ring.consumer_named("a").unwrap();
    let err = Ring::open(&path).unwrap().consumer_named("a").unwrap_err();
    assert!(
        matches!(
            err,
            Error::NameTaken {
                by_this_process: true,
                ..
            }
        ),
        "{err}"
    );
    let mut producer = ring.producer().unwrap();
    for i in 0..10u64 {
        producer.send(&i.to_le_bytes()).unwrap();
    }
    for i in 0..4 {
        assert_eq!(seq(&a.recv().unwrap().unwrap()), i);
    }
    drop(a);
    // Resumes after the last released message, from another opening of the file.
    let mut a = Ring::open(&path).unwrap().consumer_named("a").unwrap();
    assert_eq!(seq(&a.recv().unwrap().unwrap()), 4);
    // A new name starts at the oldest message still held (a's position), or at the next.
    let mut b = ring.consumer_named("b").unwrap();
    assert_eq!(seq(&b.try_recv().unwrap().unwrap()), 5);
    drop(b);
    ring.evict("b").unwrap();
    let mut late = ring
        .consumer_with(&ConsumerOptions::new().name("late").start(Start::Latest))
        .unwrap();
    assert!(late.try_recv().unwrap().is_none());
    producer.send(&10u64.to_le_bytes()).unwrap();
    assert_eq!(seq(&late.try_recv().unwrap().unwrap()), 10);
}

#[test]
fn a_registered_name_holds_the_producer_until_evicted() {
    let (_dir, _path, ring) = make(2, 256);
    let slow = ring.consumer_named("slow").unwrap();
    drop(slow); // registered, gone: still holds the producer back
    let mut producer = ring.producer().unwrap();
    let mut sent = 0u64;
    while producer.try_send(&sent.to_le_bytes()).is_ok() {
        sent += 1;
    }
    assert!(sent > 0 && sent < 20, "{sent}");
    assert!(matches!(
        producer.send_timeout(&[0; 8], Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    let err = ring.evict("nobody").unwrap_err();
    assert!(matches!(err, Error::UnknownName { .. }), "{err}");
    ring.evict("slow").unwrap();
    // Nobody holds the producer back now: it may overwrite what nobody reads.
    for i in 0..100u64 {
        producer.try_send(&i.to_le_bytes()).unwrap();
    }
}

#[test]
fn a_live_name_cannot_be_evicted_and_slots_run_out_with_a_clear_error() {
    let (_dir, _path, ring) = make(2, 4096);
    let _a = ring.consumer_named("a").unwrap();
    let err = ring.evict("a").unwrap_err();
    assert!(matches!(err, Error::NameTaken { .. }), "{err}");
    drop(ring.consumer_named("b").unwrap());
    let err = ring.consumer_named("c").unwrap_err();
    assert!(matches!(err, Error::NoSlot { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("a, b") && text.contains("evict"), "{text}");
}

#[cfg(feature = "async")]
#[test]
fn named_consumers_receive_as_tasks() {
    let (_dir, _path, ring) = make(2, 1024);
    let mut a = ring.consumer_named("a").unwrap();
    let mut b = ring.consumer_named("b").unwrap();
    let ring2 = Ring::open(ring.path()).unwrap();
    let writer = std::thread::spawn(move || {
        let mut producer = ring2.producer().unwrap();
        for i in 0..5_000u64 {
            producer.send(&i.to_le_bytes()).unwrap();
            if i % 1000 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        producer.close().unwrap();
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    async fn read_all(consumer: &mut ringfile::Consumer) -> u64 {
        let mut next = 0;
        while let Some(msg) = consumer.recv_async().await.unwrap() {
            assert_eq!(seq(&msg), next);
            next += 1;
        }
        next
    }
    // Both at once: each holds the producer back until it has read.
    let (got_a, got_b) =
        runtime.block_on(async { tokio::join!(read_all(&mut a), read_all(&mut b)) });
    assert_eq!((got_a, got_b), (5_000, 5_000));
    writer.join().unwrap();
}
