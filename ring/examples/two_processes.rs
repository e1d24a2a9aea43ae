//! Two processes, typed messages, a clean shutdown: the program to copy when starting with
//! ringfile.
//!
//! ```text
//! cargo run -p ringfile --example two_processes [-- RING_PATH]
//! ```
//!
//! The parent creates a ring (in `/dev/shm` unless given a path), starts this same program
//! again as its consumer, and sends it 100 000 `Reading`s. Closing the producer ends the
//! stream: the consumer receives every reading, then learns that the stream ended, prints
//! what it received and exits 0; the parent waits for it, checks its status and removes the
//! ring. The consumer could as well be started first, or be another program (`consumer`);
//! either side may be killed at any point and the other is told (`Error::ProducerDied`, or a
//! producer that waits for room until a new consumer comes).

use ringfile::{Error, Ring};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// One message: a plain `#[repr(C)]` struct with no padding, sent as its bytes and read in
/// place (no serialisation, no copy). Both processes must agree on it: give it a version
/// field, or a ring per type, when it changes.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Reading {
    sequence: u64,
    sensor: u32,
    celsius: f32,
}

const READINGS: u64 = 100_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--consume") => consume(Path::new(&args[2])),
        path => produce(
            path.map(PathBuf::from)
                .unwrap_or_else(|| format!("/dev/shm/two-processes-{}", std::process::id()).into()),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line naming what failed, as ringfile's errors do.
            eprintln!("two_processes: {error}");
            ExitCode::FAILURE
        }
    }
}

fn produce(path: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let ring = Ring::options().capacity(1 << 20).open_or_create(&path)?;
    // The consumer: this program again, in a process of its own.
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--consume")
        .arg(&path)
        .spawn()?;
    // The size of a Reading is checked once, here: every send below fits.
    let mut producer = ring.producer_of::<Reading>()?;
    for sequence in 0..READINGS {
        producer.send(&Reading {
            sequence,
            sensor: (sequence % 4) as u32,
            celsius: 20.0 + (sequence % 100) as f32 / 10.0,
        })?; // waits for room while the consumer catches up
    }
    // Ends the stream (dropping the producer would too; `close` reports a failure).
    producer.close()?;
    let status = child.wait()?;
    std::fs::remove_file(&path)?;
    if !status.success() {
        return Err(format!("the consumer failed: {status}").into());
    }
    println!("producer: sent {READINGS} readings, the consumer received them all");
    Ok(())
}

fn consume(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let ring = Ring::open(path)?;
    let mut consumer = ring.consumer_of::<Reading>()?;
    let (mut received, mut sum) = (0u64, 0f64);
    // `Ok(None)`: the producer closed the stream, and everything before the end was received.
    loop {
        match consumer.recv() {
            Ok(Some(reading)) => {
                // `reading` dereferences to the Reading in the ring; its space is given
                // back to the producer when it is dropped, at the end of this arm.
                if reading.sequence != received {
                    return Err(format!("reading {} out of order", reading.sequence).into());
                }
                received += 1;
                sum += f64::from(reading.celsius);
            }
            Ok(None) => break,
            // The producer was killed (or exited without ending the stream): what it sent
            // was all received, and this is how the consumer learns that nothing more comes.
            Err(Error::ProducerDied { .. }) => return Err("the producer died".into()),
            Err(other) => return Err(other.into()),
        }
    }
    println!(
        "consumer: {received} readings, mean {:.2} °C",
        sum / received.max(1) as f64
    );
    if received != READINGS {
        return Err(format!("expected {READINGS} readings, received {received}").into());
    }
    Ok(())
}
