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

/// The stream identity of the ring (see [`frame::ring_id`]).
fn ring_id(ring: &Ring) -> anyhow::Result<String> {
    let snapshot = ringfile::Inspector::open(ring.path())?.snapshot()?;
    Ok(frame::ring_id(
        snapshot.created_unix_ns,
        snapshot.creator_pid,
    ))
}
