//! `consumer`: receives messages from a ringfile ring file and writes them out, or checks
//! generated ones (`--verify`, `--latency`).

use anyhow::Context;
use clap::ArgMatches;
use ringfile::{Consumer, Error};
use ringfile_cli::commands::consumer::Cli;
use ringfile_cli::framing::Framing;
use ringfile_cli::generated::{self, SequenceChecker};
use ringfile_cli::options::open_output;
use ringfile_cli::program::Program;
use ringfile_cli::progress::{Counters, Progress, Waiting};
use ringfile_cli::signals::Signals;
use ringfile_cli::summary::{latency_histogram, Summary};
use ringfile_cli::{usage, EXIT_FAILURE, EXIT_OK, SIGNAL_POLL};
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let (program, cli, matches) = Program::start::<Cli>("consumer");
    if let Some(problem) = useless_options(&cli, &matches) {
        program.usage_error::<Cli>(&problem);
    }
    let signals = program.signals(
        "exiting at once (messages not yet written out stay in the ring for the next consumer)",
    );
    program.exit(run(&cli, &signals))
}

/// Options that would change nothing, which are usage errors: a user who gives one expects
/// an effect.
fn useless_options(cli: &Cli, matches: &ArgMatches) -> Option<String> {
    if usage::given(matches, "framing") && !writes_messages(cli) {
        return Some(
            "--framing applies to messages written out, and with --verify or --latency they are only checked: add --output FILE to write them too".to_string(),
        );
    }
    None
}

/// Whether messages are written out (not only checked).
fn writes_messages(cli: &Cli) -> bool {
    cli.output.is_some() || !(cli.verify || cli.latency)
}

/// Where messages go.
struct Output {
    writer: BufWriter<std::fs::File>,
    framing: Framing,
    name: String,
}

impl Output {
    #[inline]
    fn write(&mut self, msg: &[u8]) -> std::io::Result<()> {
        self.framing.write(&mut self.writer, msg)
    }
}

/// Verification and latency measurement of generated messages.
struct Checks {
    verify: Option<SequenceChecker>,
    latency: Option<hdrhistogram::Histogram<u64>>,
    shown: u64,
    received: u64,
}

/// Verify errors printed one by one before they are only counted.
const ERRORS_SHOWN: u64 = 10;

impl Checks {
    /// Checks one message. Under `--latency` without `--verify`, a message that is not a
    /// generated one is an error (`Err` says why): its latency cannot be measured, and
    /// counting it silently would report a stream that was never measured. (`--verify`
    /// counts it as a verification error instead.)
    #[inline]
    fn check(&mut self, msg: &[u8]) -> Result<(), String> {
        let number = self.received + 1;
        if let Some(checker) = &mut self.verify {
            if let Some(problem) = checker.check(msg) {
                self.shown += 1;
                if self.shown <= ERRORS_SHOWN {
                    eprintln!("consumer: verify: message {number}: {problem}");
                } else if self.shown == ERRORS_SHOWN + 1 {
                    eprintln!("consumer: verify: further errors are counted, not shown");
                }
            }
        }
        if let Some(histogram) = &mut self.latency {
            match generated::decode(msg) {
                Ok(decoded) => {
                    let ns = generated::latency_ns(&decoded, ringfile::diagnostics::monotonic_ns());
                    histogram.saturating_record(ns.max(1));
                }
                Err(problem) if self.verify.is_none() => {
                    return Err(format!(
                        "--latency: message {number} is not a generated message (producer --gen): {problem}; it was left in the ring"
                    ));
                }
                Err(_) => {}
            }
        }
        self.received = number;
        Ok(())
    }
}

/// What a consumer the producer may overtake has said about what it missed.
struct Misses {
    /// `Consumer::missed` when it attached (a name coming back lossless may have missed some
    /// while it was away) and when it was last reported.
    at_start: u64,
    reported: u64,
    reported_at: Option<Instant>,
    /// Whether it said it was turned lossy.
    turned: bool,
    /// Sequence gaps not explained by what it missed, already counted as errors.
    unexplained: u64,
}

/// How often, at most, a consumer says it missed messages.
const MISSED_EVERY: Duration = Duration::from_secs(1);

impl Misses {
    fn new(consumer: &Consumer) -> Misses {
        Misses {
            at_start: consumer.missed(),
            reported: consumer.missed(),
            reported_at: None,
            turned: consumer.is_lossy(),
            unexplained: 0,
        }
    }

    /// After a batch: says (at most once a second) how many messages were missed, once that
    /// the producer turned this consumer lossy, and under --verify checks that every gap in
    /// the sequence is one the consumer was told it missed.
    fn report(
        &mut self,
        consumer: &Consumer,
        path: &std::path::Path,
        verify: Option<&mut SequenceChecker>,
    ) {
        let missed = consumer.missed();
        let name = consumer.name();
        if !self.turned && consumer.is_lossy() {
            self.turned = true;
            eprintln!(
                "consumer: {}: {name:?} lagged more than its --max-lag: the producer no longer waits for it (lossy from now on)",
                path.display()
            );
        }
        if missed != self.reported
            && self
                .reported_at
                .is_none_or(|at| at.elapsed() >= MISSED_EVERY)
        {
            eprintln!(
                "consumer: {}: {name:?} was overtaken by the producer: missed {} messages ({missed} in all)",
                path.display(),
                missed - self.reported
            );
            self.reported = missed;
            self.reported_at = Some(Instant::now());
        }
        if let Some(checker) = verify {
            let allowed = missed - self.at_start;
            let beyond = checker.skipped.saturating_sub(allowed);
            if beyond > self.unexplained {
                eprintln!(
                    "consumer: verify: {} messages are missing from the sequence beyond the {allowed} the consumer missed",
                    beyond - self.unexplained
                );
                checker.errors += 1;
                self.unexplained = beyond;
            }
        }
    }
}

/// Why reading a batch stopped before its end.
/// The most of the ring one batch reads before releasing it, as a fraction (1/N): a batch
/// that covered the whole ring (large messages, a full ring) would keep the producer waiting
/// until it was all read, and the two sides would take turns instead of overlapping.
const BATCH_RING_PART: u64 = 4;

enum Stop {
    /// `--count` reached.
    Count,
    /// The batch has covered [`BATCH_RING_PART`] of the ring: release it, so the producer can
    /// fill that part again while the rest is read.
    Pause,
    /// Writing out failed.
    Write(std::io::Error),
    /// A message `--latency` cannot measure.
    NotGenerated(String),
    /// The ring reported an error (corrupt record, stream aborted).
    Ring(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Ring(e)
    }
}

fn run(cli: &Cli, signals: &Signals) -> anyhow::Result<i32> {
    let counters = Arc::new(Counters::default());
    let Some(ring) = cli
        .common
        .open_or_wait_for_ring("consumer", signals, &counters)?
    else {
        // Stopped by a signal before any ring appeared.
        summary(0, 0, Duration::ZERO, "stopped by signal", None, None, None).print(cli.common.json);
        return Ok(EXIT_OK);
    };
    let mut consumer = ring.consumer_with(&cli.consumer_options())?;
    consumer.set_wait_strategy(cli.common.wait.into());
    // A consumer the producer may overtake: it reports what it missed.
    let lapped = cli.lossy || cli.max_lag.is_some();
    let mut misses = Misses::new(&consumer);
    let mut output = if writes_messages(cli) {
        Some(Output {
            writer: BufWriter::with_capacity(
                256 * 1024,
                open_output(cli.output.as_ref(), cli.append)?,
            ),
            framing: cli.common.framing,
            name: cli
                .output
                .as_ref()
                .map_or_else(|| "standard output".into(), |p| p.display().to_string()),
        })
    } else {
        None
    };
    let mut checks = Checks {
        verify: cli.verify.then(|| {
            let mut checker = SequenceChecker::default();
            checker.allow_gaps = lapped;
            checker
        }),
        latency: cli.latency.then(latency_histogram),
        shown: 0,
        received: 0,
    };
    let progress = Progress::start("consumer", Arc::clone(&counters), cli.common.quiet);
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let limit = cli.count.unwrap_or(u64::MAX);
    let batch_bytes = consumer.capacity() / BATCH_RING_PART;
    let mut producer_failed = false;
    let ended = loop {
        if messages >= limit {
            break "count reached";
        }
        if signals.requested() {
            break "stopped by signal";
        }
        let mut batch = match receive(&mut consumer) {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                // Nothing yet: look for signals, wait again.
                counters.set_waiting(Waiting::Messages);
                continue;
            }
            Err(Error::ProducerDied { pid, .. }) => {
                let who = pid.map_or(String::new(), |p| format!(" (pid {p})"));
                eprintln!(
                    "consumer: {}: the producer{who} died without closing the stream; every message it published was received",
                    ring.path().display()
                );
                if cli.follow {
                    continue;
                }
                producer_failed = true;
                break "producer died";
            }
            Err(e) => return Err(e.into()),
        };
        counters.set_waiting(Waiting::Nothing);
        let (before_m, before_b) = (messages, bytes);
        // Read until the batch runs out, or something stops it. A message that stops it is
        // given back (not consumed): the count is reached, it cannot be measured, or it could
        // not be written out (then nothing of the batch is released).
        let stop = batch
            .try_for_each(|msg| {
                if messages >= limit {
                    return Err(Stop::Count);
                }
                if bytes - before_b >= batch_bytes {
                    return Err(Stop::Pause);
                }
                first.get_or_insert_with(Instant::now);
                if let Some(out) = &mut output {
                    out.write(msg).map_err(Stop::Write)?;
                }
                checks.check(msg).map_err(Stop::NotGenerated)?;
                messages += 1;
                bytes += msg.len() as u64;
                Ok(())
            })
            .err();
        // Written out and flushed before released: a consumer killed now repeats, never
        // loses. If the output failed, nothing of this batch is released: the next consumer
        // gets all of it (what did reach the output may be repeated).
        let (stop, write_failed) = match stop {
            Some(Stop::Write(e)) => (None, Some(e)),
            other => (other, None),
        };
        if let Some(out) = &mut output {
            if let Some(e) = write_failed.or_else(|| out.writer.flush().err()) {
                batch.unread();
                return Err(e).with_context(|| format!("writing {}", out.name));
            }
        }
        let end = batch.is_end();
        // Releases what was handled: every message accepted (and an end or abort record).
        drop(batch);
        if lapped {
            misses.report(&consumer, ring.path(), checks.verify.as_mut());
        }
        counters.add(messages - before_m, bytes - before_b);
        if messages > before_m {
            last = Instant::now();
        }
        match stop {
            None | Some(Stop::Count) | Some(Stop::Pause) | Some(Stop::Write(_)) => {} // writes: handled above
            Some(Stop::NotGenerated(problem)) => {
                progress.finish();
                return Err(anyhow::anyhow!(problem));
            }
            Some(Stop::Ring(aborted @ Error::StreamAborted { .. })) => {
                // The error names the ring and the reason ("no reason recorded" if none fitted).
                eprintln!("consumer: {aborted}; every message it sent before was received");
                if cli.follow {
                    continue;
                }
                producer_failed = true;
                break "producer failed";
            }
            Some(Stop::Ring(e)) => return Err(e.into()),
        }
        if end && !cli.follow {
            break "end of stream";
        }
    };
    progress.finish();
    let errors = checks.verify.as_ref().map(|c| c.errors);
    let elapsed = first.map_or(Duration::ZERO, |f| last.duration_since(f));
    let missed = lapped.then(|| consumer.missed());
    summary(
        messages,
        bytes,
        elapsed,
        ended,
        errors,
        checks.latency,
        missed,
    )
    .print(cli.common.json);
    if producer_failed || errors.unwrap_or(0) > 0 {
        Ok(EXIT_FAILURE)
    } else {
        Ok(EXIT_OK)
    }
}

fn summary(
    messages: u64,
    bytes: u64,
    elapsed: Duration,
    ended: &'static str,
    errors: Option<u64>,
    latency: Option<hdrhistogram::Histogram<u64>>,
    missed: Option<u64>,
) -> Summary {
    Summary {
        missed,
        program: "consumer",
        messages,
        bytes,
        elapsed,
        ended,
        errors,
        latency,
    }
}

/// Waits up to [`SIGNAL_POLL`] for messages; `None` if none came.
fn receive(consumer: &mut Consumer) -> Result<Option<ringfile::RecvBatch<'_>>, Error> {
    match consumer.recv_batch_timeout(SIGNAL_POLL) {
        Ok(batch) => Ok(Some(batch)),
        Err(Error::Timeout) => Ok(None),
        Err(e) => Err(e),
    }
}
