//! The options both programs take, and opening the ring they name.

use crate::progress::{Counters, Waiting};
use crate::signals::Signals;
use anyhow::Context;
use clap::{Args, ValueEnum};
use ringfile::{Ring, WaitStrategy};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::framing::Framing;

/// A `--wait` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Wait {
    /// Busy-spin: lowest latency, a full core while waiting.
    Spin,
    /// Spin, then sched_yield in a loop.
    Yield,
    /// Sleep in the kernel (futex) at once.
    Park,
    /// Spin for a few microseconds, then sleep: no CPU when idle.
    Adaptive,
}

impl From<Wait> for WaitStrategy {
    fn from(wait: Wait) -> WaitStrategy {
        match wait {
            Wait::Spin => WaitStrategy::Spin,
            Wait::Yield => WaitStrategy::Yield,
            Wait::Park => WaitStrategy::Park,
            Wait::Adaptive => WaitStrategy::Adaptive,
        }
    }
}

/// Options common to both programs.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// The ring file (use /dev/shm for speed). If it does not exist, the producer creates
    /// it; the consumer creates it only with --capacity, and otherwise waits for it.
    pub path: PathBuf,

    /// How the ring is created, and whose it may be.
    #[command(flatten)]
    pub ring: RingArgs,

    /// How to wait for space (producer) or data (consumer).
    #[arg(long, value_enum, default_value = "adaptive", value_name = "STRATEGY")]
    pub wait: Wait,

    /// Message framing of the input (producer) or output (consumer).
    #[arg(long, value_enum, default_value = "lines", value_name = "FRAMING")]
    pub framing: Framing,

    /// Print the final summary as one JSON object on the last line of stderr. Every exit,
    /// failures included, then ends with one JSON object there ({"error", "exit", ...} for a
    /// failure).
    #[arg(long)]
    pub json: bool,

    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

impl CommonArgs {
    /// Opens the ring, creating it if it does not exist (with `--capacity`, or the default).
    pub fn open_ring(&self) -> anyhow::Result<Ring> {
        self.ring.open(&self.path)
    }

    /// Opens the ring; if there is none yet and no `--capacity` was given, waits for another
    /// program to create it: see [`RingArgs::open_or_wait`].
    pub fn open_or_wait_for_ring(
        &self,
        program: &str,
        signals: &Signals,
        counters: &Counters,
    ) -> anyhow::Result<Option<Ring>> {
        let quiet = self.quiet || !std::io::stderr().is_terminal();
        self.ring
            .open_or_wait(&self.path, program, quiet, signals, counters)
    }
}

/// The options of every program that attaches to a ring and may create it (`producer`,
/// `consumer`, `ringfile-bridge in` and `out`): its shape if this program creates it, its
/// file mode, and whose it may be. One definition, so that they read and check alike.
#[derive(Args, Debug, Clone)]
pub struct RingArgs {
    /// Data capacity of the ring, created with it if it does not exist: a power of two such
    /// as 64KiB, 16MiB, 1GiB, or bytes (K, KB and KiB all mean 1024). If given, an existing
    /// ring must have this capacity. Without it, a writing program (producer, bridge in)
    /// creates a 1MiB ring and a reading one (consumer, bridge out) waits for the ring to be
    /// created.
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_capacity)]
    pub capacity: Option<u64>,

    /// Consumer slots of the ring, if this program creates it: each lets one more consumer
    /// (`consumer --name NAME`) read every message, 1 to 256 (default 1: one consumer, the
    /// ring of format version 1). If given, an existing ring must have this many.
    #[arg(long, value_name = "N")]
    pub consumers: Option<u32>,

    /// Permission bits (octal) of the ring file if this program creates it, applied exactly
    /// (the umask does not apply). Attaching needs read and write: 0600 the owner only, 0660
    /// the file's group too, 0666 everyone; read alone (0640) lets `ringfile stat`/`peek` look.
    #[arg(long, value_name = "OCTAL", default_value = "0600", value_parser = parse_mode)]
    pub mode: u32,

    /// Attach to a ring file that belongs to another user. Refused by default: in a shared
    /// directory such as /dev/shm, another user could have created the path first to read
    /// or alter the stream.
    #[arg(long)]
    pub allow_other_owner: bool,
}

impl RingArgs {
    /// The library's options these stand for.
    pub fn ring_options(&self) -> ringfile::RingOptions {
        let mut options = Ring::options()
            .mode(self.mode)
            .allow_other_owner(self.allow_other_owner);
        if let Some(capacity) = self.capacity {
            options = options.capacity(capacity);
        }
        if let Some(consumers) = self.consumers {
            options = options.consumers(consumers);
        }
        options
    }

    /// Opens the ring at `path`, creating it if it does not exist (with `--capacity`, or the
    /// default).
    pub fn open(&self, path: &Path) -> anyhow::Result<Ring> {
        explain(self.ring_options().open_or_create(path))
    }

    /// Opens the ring at `path`; if there is none yet and no `--capacity` was given, waits
    /// for another program to create it (saying so once on stderr unless `quiet`), until a
    /// signal: `Ok(None)`. A path whose directory does not exist is an error at once: no
    /// ring could ever appear there. With `--capacity`, creates the ring if it does not
    /// exist.
    pub fn open_or_wait(
        &self,
        path: &Path,
        program: &str,
        quiet: bool,
        signals: &Signals,
        counters: &Counters,
    ) -> anyhow::Result<Option<Ring>> {
        if self.capacity.is_some() {
            return self.open(path).map(Some);
        }
        let mut told = false;
        loop {
            match self.ring_options().open(path) {
                Err(ringfile::Error::NotFound { .. }) => {
                    // No program could ever create the ring there: say so now, not never.
                    if let Some(dir) = missing_directory(path) {
                        anyhow::bail!(
                            "{}: no such directory {}, so no ring can appear there (create the directory, or check the path)",
                            path.display(),
                            dir.display()
                        );
                    }
                }
                other => {
                    counters.set_waiting(Waiting::Nothing);
                    return explain(other).map(Some);
                }
            }
            if signals.requested() {
                return Ok(None);
            }
            if !told && !quiet {
                eprintln!(
                    "{program}: waiting for a producer to create {} (give --capacity to create it here)",
                    path.display()
                );
                told = true;
            }
            counters.set_waiting(Waiting::Ring);
            // Creation is atomic (the ring appears whole), so polling sees it complete.
            std::thread::sleep(RING_POLL);
        }
    }
}

/// The library's errors already name the path and the reason; a capacity or slot mismatch
/// also says what to do in terms of the programs' options.
fn explain(opened: ringfile::Result<Ring>) -> anyhow::Result<Ring> {
    opened.map_err(|e| match e {
        ringfile::Error::CapacityMismatch {
            path,
            requested,
            actual,
        } => anyhow::anyhow!(
            "{}: the existing ring has a capacity of {}, not the {} given with --capacity: omit --capacity to use it, or remove it (rm {}) if it is left from an earlier run",
            path.display(),
            format_capacity(actual),
            format_capacity(requested),
            path.display()
        ),
        ringfile::Error::ConsumersMismatch {
            path,
            requested,
            actual,
        } => anyhow::anyhow!(
            "{}: the existing ring has {actual} consumer slot{}, not the {requested} given with --consumers: omit --consumers to use it, or remove it (rm {}) if it is left from an earlier run",
            path.display(),
            if actual == 1 { "" } else { "s" },
            path.display()
        ),
        e => anyhow::Error::from(e),
    })
}

/// The directory a ring at `path` would be created in, if it does not exist (or is not a
/// directory).
fn missing_directory(path: &std::path::Path) -> Option<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    (!dir.is_dir()).then(|| dir.to_path_buf())
}

/// How often a consumer waiting for its ring to be created looks for it.
const RING_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// A capacity as it would be written on the command line: `64KiB`, `1MiB`.
fn format_capacity(bytes: u64) -> String {
    match bytes.trailing_zeros() {
        30.. => format!("{}GiB", bytes >> 30),
        20.. => format!("{}MiB", bytes >> 20),
        10.. => format!("{}KiB", bytes >> 10),
        _ => format!("{bytes} bytes"),
    }
}

/// Parses file permission bits written in octal (`600`, `0640`); the owner must keep read
/// and write access, which both roles need.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
        Ok(mode) if mode <= 0o777 && mode & 0o600 == 0o600 => Ok(mode),
        Ok(mode) if mode <= 0o777 => Err(format!(
            "'{text}' leaves the owner without read and write access, which both roles need: include 0600 (e.g. 0600, 0640, 0660)"
        )),
        _ => Err(format!(
            "'{text}' is not an octal file mode such as 0600 or 0640"
        )),
    }
}

/// Opens `path` for reading, or standard input.
pub fn open_input(path: Option<&PathBuf>) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsFd;
    match path {
        Some(p) => {
            std::fs::File::open(p).with_context(|| format!("{}: cannot open input", p.display()))
        }
        None => Ok(std::fs::File::from(
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("standard input")?,
        )),
    }
}

/// Opens `path` for writing — created if missing, then truncated, or with `append` added to —
/// or standard output.
pub fn open_output(path: Option<&PathBuf>, append: bool) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsFd;
    match path {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(p)
            .with_context(|| format!("{}: cannot open output", p.display())),
        None => Ok(std::fs::File::from(
            std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("standard output")?,
        )),
    }
}
