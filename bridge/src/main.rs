//! `ringfile-bridge`: carries a ringfile ring's stream across machines over NATS JetStream,
//! exactly once. `out` reads a ring and publishes it; `in` fills a ring on another host from
//! the JetStream stream. See README, "Across machines", and `ringfile-bridge --help`.

mod frame;
mod inbound;
mod nats;
mod options;
mod outbound;
mod totals;

use options::{Cli, Direction};
use ringfile::Ring;
use ringfile_cli::program::Program;
use ringfile_cli::progress::{Counters, Waiting};
use ringfile_cli::signals::Signals;
use std::path::Path;
use std::time::Duration;

fn main() {
    let (program, cli, _) = Program::start::<Cli>("ringfile-bridge");
    let signals = program.signals(
        "stopping (what JetStream has not acknowledged stays in the ring; what was not written stays in JetStream)",
    );
    program.exit(match &cli.direction {
        Direction::Out(args) => outbound::run(args, &signals),
        Direction::In(args) => inbound::run(args, &signals),
    })
}

/// The runtime the NATS client runs on: two workers are plenty for one connection.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Opens the ring at `path`, waiting for a producer to create it (saying so once); `None` on
/// a signal.
fn wait_for_ring(
    path: &Path,
    program: &str,
    signals: &Signals,
    counters: &Counters,
) -> anyhow::Result<Option<Ring>> {
    let mut told = false;
    loop {
        match Ring::open(path) {
            Err(ringfile::Error::NotFound { .. }) => {}
            other => {
                counters.set_waiting(Waiting::Nothing);
                return Ok(Some(other?));
            }
        }
        if signals.requested() {
            return Ok(None);
        }
        if !told {
            eprintln!(
                "{program}: waiting for a producer to create {}",
                path.display()
            );
            told = true;
        }
        counters.set_waiting(Waiting::Ring);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The stream identity of the ring (see [`frame::ring_id`]).
fn ring_id(ring: &Ring) -> anyhow::Result<String> {
    let snapshot = ringfile::Inspector::open(ring.path())?.snapshot()?;
    Ok(frame::ring_id(
        snapshot.created_unix_ns,
        snapshot.creator_pid,
    ))
}
