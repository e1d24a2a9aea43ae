//! The `producer` program's options: here, not in its `main.rs`, so that `ringfile
//! completions` and `ringfile man` can describe it too.

use crate::generated;
use crate::options::CommonArgs;
use clap::Parser;
use std::path::PathBuf;

/// The examples and notes `--help` ends with.
pub const EXAMPLES: &str = "\
Examples:
  producer /dev/shm/demo < input.txt             one message per line
  producer --framing raw /dev/shm/demo < blob    byte stream, byte-exact at the consumer
  producer --gen 10000000 --size 64 /dev/shm/demo
  producer --gen 100000 --rate 10000 /dev/shm/demo    paced, for `consumer --latency`

Generated messages (--gen) carry a stream id, a sequence number, a CLOCK_MONOTONIC send time
and a check of every byte; 8 to 23-byte messages carry only the low 32 bits of the sequence
number and of the time, and no stream id (see FORMAT.md and README.md).

Without --capacity, an existing ring is used as it is, and a missing one is created at 1MiB.
--chunk applies only to --framing raw; --framing and --chunk do not apply to --gen. Sizes are
binary (KiB, MiB: 1MB is 1 MiB); rates are MB/s (10^6 bytes per second).

SIGINT/SIGTERM: stop at a message boundary, send the complete messages already read, close
the stream and exit 0 (bytes of an incomplete message are not sent, and are counted on
stderr). If the ring is full, it says it waits for a consumer to make room (and whether one is
attached). A second signal exits at once with status 1, leaving the stream open: the consumer
reports that the producer died. An input error (a line too long for the ring, a truncated
length-prefixed message) ends the stream as failed: the consumer reports it and exits 1.

Exit status: 0 success (including a clean stop on SIGINT/SIGTERM), 1 runtime failure,
2 usage error.";

/// Streams messages into a ringfile ring file, creating it if needed. At the end of input it
/// closes the stream (the consumer sees the end) and prints a summary to stderr.
#[derive(Parser, Debug)]
#[command(name = "producer", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    /// The options the programs share: the ring, its capacity and mode, framing, waiting, output.
    pub common: CommonArgs,

    /// Read input from FILE instead of standard input.
    #[arg(long, value_name = "FILE", conflicts_with = "gen")]
    pub input: Option<PathBuf>,

    /// With --framing raw: the largest message to cut [default: 64KiB, or the ring's
    /// maximum message size if smaller].
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_nonzero_size)]
    pub chunk: Option<usize>,

    /// Generate COUNT messages instead of reading input.
    #[arg(long, value_name = "COUNT")]
    pub gen: Option<u64>,

    /// Size of each generated message in bytes (at least 8).
    #[arg(long, value_name = "BYTES", default_value = "64", requires = "gen",
          value_parser = parse_gen_size)]
    pub size: usize,

    /// Pace generated messages at this many per second (default: as fast as possible).
    #[arg(long, value_name = "MSGS_PER_SEC", requires = "gen", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Do not close the stream at the end of input: a later producer may continue it.
    #[arg(long)]
    pub no_close: bool,
}

fn parse_gen_size(text: &str) -> Result<usize, String> {
    let size = crate::size::parse_nonzero_size(text)?;
    if size < generated::MIN_SIZE {
        return Err(format!(
            "generated messages are at least {} bytes",
            generated::MIN_SIZE
        ));
    }
    Ok(size)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!(
            "'{text}' is not a positive number of messages per second"
        )),
    }
}
