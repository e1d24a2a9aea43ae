//! The command line of `ringfile-bridge`: its two directions and the options they share.

use clap::{Args, Parser, Subcommand, ValueEnum};
use ringfile_cli::options::RingArgs;
use std::path::PathBuf;
use std::time::Duration;

/// The notes `--help` ends with.
pub const EXAMPLES: &str = "\
Examples (host A publishes its ring, host B fills its own; one machine may play both):
  host A:  producer --gen --count 1000000 /dev/shm/feed &
           ringfile-bridge out /dev/shm/feed --server nats://nats1:4222 \\
               --stream FEED --subject feed.a --create-stream
  host B:  ringfile-bridge in /dev/shm/feed --server nats://nats1:4222 \\
               --stream FEED --subject feed.a --capacity 16MiB &
           consumer --verify /dev/shm/feed

Nothing lost, nothing doubled: `out` releases ring space only for messages JetStream has
acknowledged, and message ids (Nats-Msg-Id) derive from the ring's stream, so a restarted
`out` republishes what was not acknowledged and JetStream drops the duplicates; past the
stream's duplicate window it learns where it stopped from the stream's last message. `in`
records in the far ring, with each publish, the JetStream sequence it wrote (a resume mark),
and skips what it already wrote when JetStream redelivers. Either bridge may start first; a
server that is down or restarting is waited for. The end of the stream, a producer's abort
(with its reason) and a producer that died cross: a consumer of the far ring ends as one of
the near ring would. Each direction exits once it carried an ending (--follow: goes on with
the next producer's stream).

Exit status: 0 an ending carried (or a clean stop on SIGINT/SIGTERM), 1 runtime failure
(the server refused, a bad ring file, a message the stream cannot hold), 2 usage error.";

/// Carries a ringfile ring's stream across machines over NATS JetStream, exactly once.
#[derive(Parser, Debug)]
#[command(name = "ringfile-bridge", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Which way the stream goes.
    #[command(subcommand)]
    pub direction: Direction,
}

/// Which way the stream goes.
#[derive(Subcommand, Debug)]
pub enum Direction {
    /// Read a ring (as its consumer) and publish its stream to a JetStream subject.
    #[command(after_help = EXAMPLES)]
    Out(OutArgs),
    /// Fill a ring (as its producer) from a JetStream stream, through a durable consumer.
    #[command(after_help = EXAMPLES)]
    In(InArgs),
}

/// `ringfile-bridge out`.
#[derive(Args, Debug)]
pub struct OutArgs {
    /// The ring file to read. If it does not exist yet, waits for a producer to create it
    /// (with --capacity, creates it).
    pub path: PathBuf,

    /// How the ring is created if this program creates it, and whose it may be.
    #[command(flatten)]
    pub ring: RingArgs,

    /// Read as the consumer NAME of a ring with several consumer slots: the other consumers
    /// read every message too (`consumer --name`). Without it: the ring's one consumer
    /// (`default`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Pack messages into NATS messages of up to SIZE bytes (KiB, MiB; the server's
    /// max_payload, 1MiB by default, caps it). A frame is sent as soon as the ring has no
    /// more messages ready, so packing costs no latency. A message larger than SIZE goes alone.
    #[arg(long, value_name = "SIZE", default_value = "256KiB", value_parser = ringfile_cli::size::parse_size)]
    pub batch_bytes: u64,

    /// The most messages one NATS message carries.
    #[arg(long, value_name = "N", default_value_t = 16384,
          value_parser = clap::value_parser!(u64).range(1..=crate::frame::MAX_FRAME_MESSAGES))]
    pub batch_messages: u64,

    /// NATS messages published and not yet acknowledged, at most (pipelining).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub in_flight: u64,

    /// Do not exit once an ending is carried: go on with the next producer's stream.
    #[arg(long)]
    pub follow: bool,

    /// NATS and JetStream options.
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// `ringfile-bridge in`.
#[derive(Args, Debug)]
pub struct InArgs {
    /// The ring file to fill. Created if it does not exist (with --capacity, or 1MiB).
    pub path: PathBuf,

    /// How the ring is created if it does not exist, and whose it may be.
    #[command(flatten)]
    pub ring: RingArgs,

    /// The durable JetStream consumer to read through: JetStream keeps its place across
    /// restarts. Give each ring fed from one stream its own. Default: ringfile-<the ring
    /// file's name>.
    #[arg(long, value_name = "NAME")]
    pub durable: Option<String>,

    /// NATS messages pulled at once, at most. While the ring is full the bridge stops
    /// pulling: at most two such batches are held in memory.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub fetch: u64,

    /// Do not exit once an ending is carried: go on with the next producer's stream.
    #[arg(long)]
    pub follow: bool,

    /// NATS and JetStream options.
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// How a JetStream stream keeps messages (`--retention`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Retention {
    /// Until the stream's limits (age, bytes, messages) drop them: the default, and what
    /// lets `out` find where it stopped from the stream itself after any outage.
    Limits,
    /// Until every consumer of the stream acknowledged them.
    Interest,
    /// Until one consumer acknowledged them (one `in` bridge per stream).
    Workqueue,
}

/// Options both directions take: the server, the stream, credentials.
#[derive(Args, Debug)]
pub struct NatsArgs {
    /// The NATS server(s), e.g. nats://host:4222; repeat it (or separate by commas) to list
    /// the servers of a cluster. The client reconnects to any of them, for ever.
    #[arg(long, value_name = "URL", required = true, value_delimiter = ',')]
    pub server: Vec<String>,

    /// The JetStream stream.
    #[arg(long, value_name = "STREAM")]
    pub stream: String,

    /// The subject the ring's stream is published on (and read from).
    #[arg(long, value_name = "SUBJECT")]
    pub subject: String,

    /// Create the stream if it does not exist (on SUBJECT alone, file storage, with
    /// --retention, --replicas, --duplicate-window). Without it, waits for the stream.
    #[arg(long)]
    pub create_stream: bool,

    /// With --create-stream: how the stream keeps messages.
    #[arg(long, value_enum, default_value = "limits", requires = "create_stream")]
    pub retention: Retention,

    /// With --create-stream: copies JetStream keeps of each message (1, 3 or 5 on a
    /// cluster; with 3 the stream survives the loss of one server).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        requires = "create_stream"
    )]
    pub replicas: usize,

    /// With --create-stream: how long JetStream remembers message ids to drop duplicates.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = ringfile_cli::size::parse_duration, requires = "create_stream")]
    pub duplicate_window: Duration,

    /// A NATS credentials file (.creds: a user JWT and its nkey seed).
    #[arg(long, value_name = "FILE")]
    pub creds: Option<PathBuf>,

    /// A PEM file of the certificate authorities to trust; TLS is then required.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// A client certificate and key (PEM files) for servers that verify clients.
    #[arg(long, value_names = ["CERT", "KEY"], num_args = 2)]
    pub tls_cert: Option<Vec<PathBuf>>,

    /// Require TLS (with the system's certificate authorities unless --tls-ca is given).
    #[arg(long)]
    pub tls: bool,

    /// Print the final summary as one JSON object on the last line of stderr.
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
