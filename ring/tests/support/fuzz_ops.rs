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

/// Opens a ring file made of arbitrary bytes and, if it validates, uses it: every record a
/// consumer finds is checked before use, a producer appends, both stop at the first error.
///
/// The first byte picks the shape: even, the bytes are the whole file (header validation);
/// odd, a valid header for a 64-byte to 4 KiB ring precedes the rest of the bytes, laid over
/// the control block and data region (position and record validation).
pub fn open_bytes(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let file = if shape % 2 == 0 {
        memfd_with(rest)
    } else {
        let capacity = 64u64 << ((shape >> 1) % 7);
        let mut bytes = header(capacity);
        bytes.resize((HEADER_SIZE + capacity) as usize, 0);
        let n = rest.len().min(bytes.len() - 128);
        bytes[128..128 + n].copy_from_slice(&rest[..n]);
        memfd_with(&bytes)
    };
    let Ok(ring) = Ring::from_fd(file.as_fd().try_clone_to_owned().unwrap()) else {
        return;
    };
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

/// Runs producer and consumer operations on one ring while a hostile writer changes bytes
/// of the file between them. The bytes are a program: each operation is one byte, some
/// followed by operands.
///
/// Checked throughout: nothing panics, and a message this process holds (received, not yet
/// released) is never changed by this process's own producer — unless the hostile writer
/// wrote into the file meanwhile, which the trust model allows.
pub fn hostile_ops(data: &[u8]) {
    let Some((&cap_sel, mut program)) = data.split_first() else {
        return;
    };
    let capacity = 64u64 << (cap_sel % 6);
    let ring = Ring::memfd(capacity).unwrap();
    let mut side = Writers {
        file: File::from(ring.as_fd().try_clone_to_owned().unwrap()),
        file_len: HEADER_SIZE + capacity,
        producer: Some(ring.producer().unwrap()),
        max: ring.max_message_len(),
        counter: 0,
    };
    let mut consumer = ring.consumer().unwrap();
    let mut buf = Vec::new();
    while let Some(op) = next(&mut program) {
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
                // else a word of the data region (record headers and payloads).
                let at = u64::from(at);
                let offset = if at < 80 {
                    128 + at * 8
                } else {
                    HEADER_SIZE + ((at - 80) * 8) % (self.file_len - HEADER_SIZE)
                };
                self.file
                    .write_all_at(&value.to_le_bytes(), offset)
                    .unwrap();
                true
            }
        }
    }
}
