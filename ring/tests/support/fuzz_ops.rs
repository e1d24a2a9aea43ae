//! Hostile-input drivers shared by the cargo-fuzz targets (`ring/fuzz`) and the stable
//! property tests (`tests/hostile.rs`): the same code runs under libFuzzer on nightly and
//! under proptest on every `cargo test`.
//!
//! Each driver panics only when the library breaks a promise of its trust model: a panic
//! inside the library, a read or write outside the mapping (which would crash), or a message
//! this process holds changing because of this process's own producer.
#![allow(dead_code)] // each user calls its own part

use ringfile::{Error, Ring};
use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

/// Size of the header page (FORMAT.md).
pub const HEADER_SIZE: u64 = 4096;

/// A memfd holding `bytes`.
fn memfd_with(bytes: &[u8]) -> File {
    // SAFETY: the name is a valid NUL-terminated string.
    let fd = unsafe { libc::memfd_create(c"fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create failed");
    // SAFETY: `fd` was just created and is owned by nobody else.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all_at(bytes, 0).unwrap();
    file
}

/// A valid header for a ring of `capacity` bytes (FORMAT.md), as bytes.
fn header(capacity: u64) -> Vec<u8> {
    let mut h = vec![0u8; 128];
    h[0..8].copy_from_slice(b"RINGFILE");
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
    h[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    h[16..24].copy_from_slice(&capacity.to_le_bytes());
    h[24..32].copy_from_slice(&(capacity / 2 - 8).to_le_bytes());
    h
}

/// A valid version 2 header (consumer slots) for a ring of `capacity` bytes with `slots`
/// slots (FORMAT.md, "Several consumers"), as bytes, and the header's size.
fn header_v2(capacity: u64, slots: u32) -> (Vec<u8>, u64) {
    let mut h = header(capacity);
    let size = ringfile::format::header_size(slots);
    h[8..12].copy_from_slice(&2u32.to_le_bytes());
    h[12..16].copy_from_slice(&(size as u32).to_le_bytes());
    h[48..52].copy_from_slice(&slots.to_le_bytes());
    (h, size)
}

/// Opens a ring file made of arbitrary bytes and, if it validates, uses it: every record a
/// consumer finds is checked before use, a producer appends, both stop at the first error.
///
/// The first byte picks the shape: 0 mod 4, the bytes are the whole file (header
/// validation); 1 and 2 mod 4, a valid header for a 64-byte to 4 KiB ring precedes the rest
/// of the bytes, laid over the control block and data region (position and record
/// validation); 3 mod 4, the same with a version 2 header of 2 to 5 consumer slots, the bytes
/// laid over the control block, the slots (positions, states, names, counters, policy
/// words) and the data region, which named, lossy and policy-bound consumers then read.
pub fn open_bytes(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let capacity = 64u64 << ((shape >> 2) % 7);
    let file = match shape % 4 {
        0 => memfd_with(rest),
        3 => {
            let (mut bytes, size) = header_v2(capacity, 2 + u32::from(shape >> 5) % 4);
            bytes.resize((size + capacity) as usize, 0);
            let n = rest.len().min(bytes.len() - 128);
            bytes[128..128 + n].copy_from_slice(&rest[..n]);
            memfd_with(&bytes)
        }
        _ => {
            let mut bytes = header(capacity);
            bytes.resize((HEADER_SIZE + capacity) as usize, 0);
            let n = rest.len().min(bytes.len() - 128);
            bytes[128..128 + n].copy_from_slice(&rest[..n]);
            memfd_with(&bytes)
        }
    };
    let Ok(ring) = Ring::from_fd(file.as_fd().try_clone_to_owned().unwrap()) else {
        return;
    };
    if ring.consumers() > 1 {
        use_slots(&ring, &file);
        return;
    }
    if let Ok(mut consumer) = ring.consumer() {
        for _ in 0..64 {
            match consumer.try_recv() {
                Ok(Some(msg)) => assert!(msg.len() <= ring.max_message_len()),
                Ok(None) | Err(Error::StreamAborted { .. }) => {}
                Err(_) => break,
            }
        }
        let mut batch = consumer.try_recv_batch().unwrap();
        while let Ok(Some(msg)) = batch.next() {
            assert!(msg.len() <= ring.max_message_len());
        }
    }
    if let Ok(mut producer) = ring.producer() {
        for len in [0usize, 1, 7, 8, 9, 24, 100] {
            if producer.try_send(&vec![0x5A; len]).is_err() {
                break;
            }
        }
        // The consumer is gone and this thread is the only one: never wait for room.
        let _ = producer.close_timeout(std::time::Duration::ZERO);
    }
}

/// [`open_bytes`] on a ring with consumer slots: the names the forged slots may hold, a new
/// one, a lossy one and one under a max-lag policy each read what they find; a producer
/// appends, looking at the forged slots (their positions, states and policy words) when it
/// needs room; the inspector lists the consumers.
fn use_slots(ring: &Ring, file: &File) {
    use ringfile::ConsumerOptions;
    let max = ring.max_message_len();
    let mut options = vec![
        ConsumerOptions::new(),
        ConsumerOptions::new().name("a").lossy(true),
        ConsumerOptions::new()
            .name("b")
            .start(ringfile::Start::Latest),
    ];
    if ring.capacity() > 64 {
        options.push(
            ConsumerOptions::new()
                .name("c")
                .max_lag(ring.capacity() / 2),
        );
    }
    let mut consumers: Vec<_> = options
        .iter()
        .filter_map(|o| ring.consumer_with(o).ok())
        .collect();
    for consumer in &mut consumers {
        for _ in 0..16 {
            match consumer.try_recv() {
                Ok(Some(msg)) => assert!(msg.len() <= max),
                Ok(None) | Err(Error::StreamAborted { .. }) => {}
                Err(_) => break,
            }
        }
    }
    if let Ok(mut producer) = ring.producer() {
        for len in [0usize, 1, 7, 8, 9, 24, 100, 1000] {
            if producer.try_send(&vec![0x5A; len.min(max)]).is_err() {
                break;
            }
        }
        let _ = producer.take_policy_events();
        let _ = producer.slowest_consumer();
        let _ = producer.close_timeout(std::time::Duration::ZERO);
    }
    for consumer in &mut consumers {
        let mut batch = consumer.try_recv_batch().unwrap();
        while let Ok(Some(msg)) = batch.next() {
            assert!(msg.len() <= max);
        }
    }
    drop(consumers);
    use std::os::fd::AsRawFd;
    if let Ok(inspector) = ringfile::Inspector::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
    {
        let _ = inspector.snapshot();
    }
}

/// Runs producer and consumer operations on one ring while a hostile writer changes bytes
/// of the file between them. The bytes are a program: each operation is one byte, some
/// followed by operands.
///
/// Checked throughout: nothing panics, and a message this process holds (received, not yet
/// released) is never changed by this process's own producer — unless the hostile writer
/// wrote into the file meanwhile, which the trust model allows.
///
/// A first byte of 128 or more makes a ring with three consumer slots (format version 2): the
/// consumer is then a named one, beside a lossy one (operation 3 mod 8: receive and hold a
/// copy, which must never change, whatever anyone writes), and the hostile writer's words
/// reach the slots too.
pub fn hostile_ops(data: &[u8]) {
    let Some((&cap_sel, mut program)) = data.split_first() else {
        return;
    };
    let capacity = 64u64 << (cap_sel % 6);
    let fanout = cap_sel >= 128;
    let ring = if fanout {
        Ring::options()
            .capacity(capacity)
            .consumers(3)
            .memfd()
            .unwrap()
    } else {
        Ring::memfd(capacity).unwrap()
    };
    let header = ringfile::format::header_size(ring.consumers());
    let mut side = Writers {
        file: File::from(ring.as_fd().try_clone_to_owned().unwrap()),
        file_len: header + capacity,
        header,
        producer: Some(ring.producer().unwrap()),
        max: ring.max_message_len(),
        counter: 0,
    };
    let mut consumer = if fanout {
        ring.consumer_named("a").unwrap()
    } else {
        ring.consumer().unwrap()
    };
    let mut lossy = fanout.then(|| {
        ring.consumer_with(&ringfile::ConsumerOptions::new().name("l").lossy(true))
            .unwrap()
    });
    let mut buf = Vec::new();
    while let Some(op) = next(&mut program) {
        if let (3, Some(lossy)) = (op % 8, lossy.as_mut()) {
            // A lossy consumer's message is its own copy: nothing changes it.
            let steps = next(&mut program).unwrap_or(0) % 16;
            if let Ok(Some(msg)) = lossy.try_recv() {
                let copy = msg.to_vec();
                for _ in 0..steps {
                    let Some(op) = next(&mut program) else { break };
                    side.step(op, &mut program, &ring);
                }
                assert_eq!(&*msg, &copy[..], "a lossy consumer's message changed");
            }
            continue;
        }
        match op % 8 {
            // Receive a message and hold it while the next few operations (sends and
            // hostile writes) run, then check it.
            0 => {
                let steps = next(&mut program).unwrap_or(0) % 16;
                if let Ok(Some(msg)) = consumer.try_recv() {
                    let copy = msg.to_vec();
                    let mut poked = false;
                    for _ in 0..steps {
                        let Some(op) = next(&mut program) else { break };
                        poked |= side.step(op, &mut program, &ring);
                    }
                    if !poked {
                        assert_eq!(&*msg, &copy[..], "a held message changed");
                    }
                }
            }
            1 => {
                if let Ok(mut batch) = consumer.try_recv_batch() {
                    while let Ok(Some(msg)) = batch.next() {
                        assert!(msg.len() <= side.max);
                    }
                }
            }
            2 => {
                if let Ok(Some(len)) = consumer.try_recv_into(&mut buf) {
                    assert!(len <= side.max);
                }
            }
            _ => {
                side.step(op, &mut program, &ring);
            }
        }
    }
}

fn next(program: &mut &[u8]) -> Option<u8> {
    let (&first, rest) = program.split_first()?;
    *program = rest;
    Some(first)
}

/// The producer, and the hostile writer.
struct Writers {
    file: File,
    file_len: u64,
    /// The data region's offset.
    header: u64,
    producer: Option<ringfile::Producer>,
    max: usize,
    counter: u8,
}

impl Writers {
    /// One producer operation or hostile write; true if it was a hostile write.
    fn step(&mut self, op: u8, program: &mut &[u8], ring: &Ring) -> bool {
        match op % 6 {
            0 | 1 => {
                let len = next(program).unwrap_or(0) as usize;
                self.counter = self.counter.wrapping_add(1);
                if let Some(p) = self.producer.as_mut() {
                    let msg = vec![self.counter; len % (self.max + 8)];
                    let _ = p.try_send(&msg);
                }
                false
            }
            2 => {
                let len = next(program).unwrap_or(0) as usize;
                if let Some(p) = self.producer.as_mut() {
                    if let Ok(mut claim) = p.try_claim(len % (self.max + 1)) {
                        claim.fill(0xC1);
                        let keep = claim.len() / 2;
                        claim.commit_len(keep);
                    }
                }
                false
            }
            3 => {
                // End this producer's stream (close or abort) and attach a new one.
                if let Some(p) = self.producer.take() {
                    // The consumer is this thread: waiting for it to make room would never end.
                    let _ = if self.counter.is_multiple_of(2) {
                        p.close_timeout(std::time::Duration::ZERO)
                    } else {
                        p.abort_timeout("fuzz", std::time::Duration::ZERO)
                    };
                }
                self.producer = ring.producer().ok();
                false
            }
            _ => {
                // The hostile writer: a 64-bit value at an 8-aligned offset past the header.
                let (Some(at), Some(bytes)) = (next(program), program.get(..8)) else {
                    return false;
                };
                let value = u64::from_le_bytes(bytes.try_into().unwrap());
                *program = &program[8..];
                // Below 80: a word of the control block (positions, futex words, roles);
                // 80 to 127 with consumer slots: a word of the slots; else a word of the data
                // region (record headers and payloads).
                let at = u64::from(at);
                let offset = if at < 80 {
                    128 + at * 8
                } else if at < 128 && ring.consumers() > 1 {
                    ringfile::format::SLOTS_OFFSET
                        + ((at - 80) * 8) % (128 * u64::from(ring.consumers()))
                } else {
                    self.header + ((at - 80) * 8) % (self.file_len - self.header)
                };
                self.file
                    .write_all_at(&value.to_le_bytes(), offset)
                    .unwrap();
                true
            }
        }
    }
}
