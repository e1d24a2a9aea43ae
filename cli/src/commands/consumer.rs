//! The `consumer` program's options: here, not in its `main.rs`, so that `ringfile
//! completions` and `ringfile man` can describe it too.

use crate::options::CommonArgs;
use clap::Parser;
use std::path::PathBuf;

/// The examples and notes `--help` ends with.
pub const EXAMPLES: &str = "\
Examples:
  consumer /dev/shm/demo > output.txt            one message per line
  consumer --framing raw /dev/shm/demo > blob    byte-exact copy of a raw producer's input
  consumer --verify /dev/shm/demo                check `producer --gen` messages
  consumer --verify --latency /dev/shm/demo      ... and report one-way latency
  consumer --follow /dev/shm/demo                keep going across producers
  consumer --name archive /dev/shm/feed          one of several consumers (ring made
                                                 with --consumers N), each reading every
                                                 message
  consumer --name live --lossy /dev/shm/feed     a consumer the producer never waits for
  consumer --name ops --max-lag 8MiB --retain 10m /dev/shm/feed
                                                 waited for up to 8 MiB behind, kept 10 min
                                                 after it is gone

Start it before or after the producer: without --capacity it waits for the ring to be created
(with --capacity it creates it). With --verify or --latency, messages are checked, not written
out (unless --output is given); --latency stops with an error at a message that is not a
generated one, leaving it in the ring. Sizes are binary (KiB, MiB); rates are MB/s (10^6 B/s).
Space in the ring is released only after the messages are written out and flushed, so a
consumer that is killed, or whose output fails, loses nothing: the next consumer receives
every message not yet written out (it may repeat the last ones written). To restart a killed
consumer without erasing what it wrote, add --append:
  consumer --output out.txt --append /dev/shm/demo

Exit status: 0 end of stream (or --count reached, or a clean stop on SIGINT/SIGTERM),
1 runtime failure (verification errors, producer died without closing the stream, bad ring
file, I/O), 2 usage error.";

/// Receives messages from a ringfile ring file, creating it if needed, until the end of the
/// stream; prints a summary to stderr.
#[derive(Parser, Debug)]
#[command(name = "consumer", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    /// The options the programs share: the ring, its capacity and mode, framing, waiting, output.
    pub common: CommonArgs,

    /// Write messages to FILE (created, or truncated if it exists) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// With --output: add to FILE instead of truncating it (to restart a consumer that was
    /// killed without erasing what it wrote).
    #[arg(long, requires = "output")]
    pub append: bool,

    /// Expect generated messages (`producer --gen`): check every payload and that sequence
    /// numbers within a stream are consecutive. Exit 1 if any check fails.
    #[arg(long)]
    pub verify: bool,

    /// With generated messages: report one-way latency percentiles (p50 … max).
    #[arg(long)]
    pub latency: bool,

    /// Exit after N messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Do not exit at the end of a stream (or when a producer dies): wait for the next one.
    #[arg(long)]
    pub follow: bool,

    /// Read as the consumer NAME of a ring with several consumer slots (`--consumers N`
    /// where it is created): every named consumer reads every message. A name is registered
    /// in the ring when it first attaches, and its position is kept there: a consumer of that
    /// name killed and restarted resumes where it left off, and while registered the name
    /// holds the producer back, even with no process reading it, until `ringfile evict PATH
    /// NAME`. Without --name: the consumer `default`.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Where a name that is not registered yet starts: at the oldest message still held in
    /// the ring, or at the next one published. A registered name always resumes where it
    /// left off.
    #[arg(long, value_enum, value_name = "WHERE", default_value = "oldest")]
    pub from: From,

    /// Never hold the producer back (needs --name, or a ring with several consumer slots):
    /// when the producer overwrites messages before this consumer reads them, it says how
    /// many it missed (stderr, and `missed` in the JSON summary) and goes on from the oldest
    /// message still whole. It never receives a torn or overwritten message. With --verify,
    /// a gap in the sequence numbers equal to what it missed is not an error.
    #[arg(long)]
    pub lossy: bool,

    /// Keep this name's place for DURATION after its process is gone (killed, or stopped):
    /// the producer then evicts it, and it holds the producer back no more. Counted from
    /// when the producer finds it gone. Without it the name stays until `ringfile evict`.
    /// As in 30s, 10m, 2h, 1d.
    #[arg(long, value_name = "DURATION", value_parser = crate::size::parse_duration)]
    pub retain: Option<std::time::Duration>,

    /// Hold the producer back only while less than SIZE behind it: a consumer that falls
    /// further behind is turned lossy by the producer (and says so), as with --lossy from
    /// then on. Below the ring's capacity.
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_nonzero_size, conflicts_with = "lossy")]
    pub max_lag: Option<usize>,
}

/// `--from`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// The oldest message still held in the ring.
    Oldest,
    /// The next message published.
    Latest,
}

impl Cli {
    /// The consumer slot options `--name` and `--from` ask for.
    #[must_use]
    pub fn consumer_options(&self) -> ringfile::ConsumerOptions {
        let mut options = ringfile::ConsumerOptions::new().start(match self.from {
            From::Oldest => ringfile::Start::Oldest,
            From::Latest => ringfile::Start::Latest,
        });
        if let Some(name) = &self.name {
            options = options.name(name);
        }
        if self.lossy {
            options = options.lossy(true);
        }
        if let Some(retain) = self.retain {
            options = options.retain(retain);
        }
        if let Some(max_lag) = self.max_lag {
            options = options.max_lag(max_lag as u64);
        }
        options
    }
}
