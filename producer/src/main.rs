//! `producer`: streams messages into a ringfile ring file — from standard input (or a file)
//! cut into messages, or generated for testing and benchmarking.

use anyhow::Context;
use clap::ArgMatches;
use ringfile::{Error, Producer};
use ringfile_cli::commands::producer::Cli;
use ringfile_cli::framing::{Cut, Framer, Framing};
use ringfile_cli::options::open_input;
use ringfile_cli::program::{Program, UsageError};
use ringfile_cli::progress::Waiting;
use ringfile_cli::progress::{Counters, Progress};
use ringfile_cli::signals::Signals;
use ringfile_cli::summary::Summary;
use ringfile_cli::{generated, usage, SIGNAL_POLL};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options that would change nothing, which are usage errors: a user who gives one expects
/// an effect.
fn useless_options(cli: &Cli, matches: &ArgMatches) -> Option<String> {
    let framing_given = usage::given(matches, "framing");
    if cli.gen.is_some() && (framing_given || cli.chunk.is_some()) {
        let option = if framing_given {
            "--framing"
        } else {
            "--chunk"
        };
        return Some(format!(
            "{option} applies to input, and --gen reads none (generated messages are --size bytes each)"
        ));
    }
    if cli.chunk.is_some() && cli.common.framing != Framing::Raw {
        return Some(format!(
            "--chunk applies only to --framing raw (with --framing {}, the input says where each message ends)",
            clap::ValueEnum::to_possible_value(&cli.common.framing)
                .map_or_else(String::new, |v| v.get_name().to_string())
        ));
    }
    None
}

fn main() {
    let (program, cli, matches) = Program::start::<Cli>("producer");
    if let Some(problem) = useless_options(&cli, &matches) {
        program.usage_error::<Cli>(&problem);
    }
    let signals = program.signals(
        "exiting at once without closing the stream (the consumer will report that the producer died)",
    );
    program.exit_with(run(&cli, &signals))
}

/// Running totals of what was sent.
struct Sent {
    messages: u64,
    bytes: u64,
    counters: Arc<Counters>,
    /// On a ring with consumer slots: the consumer the producer last found holding it back
    /// (name and position), since when, and whether it said so.
    held_by: Option<HeldBy>,
}

/// See [`Sent::held_by`].
struct HeldBy {
    name: String,
    position: u64,
    since: Instant,
    told: bool,
}

/// How long a producer waits for room on one consumer that does not move before it says
/// which (at once for one whose process is gone).
const SAY_WHO_AFTER: Duration = Duration::from_secs(1);

impl Sent {
    fn add(&mut self, messages: u64, bytes: u64) {
        self.messages += messages;
        self.bytes += bytes;
        self.counters.add(messages, bytes);
    }
}

/// Options the ring cannot carry, as a usage error: `max` is the ring's maximum message size.
fn check_sizes(cli: &Cli, max: usize) -> Result<(), UsageError> {
    if cli.gen.is_some() && cli.size > max {
        return Err(UsageError(format!(
            "--size {} exceeds the ring's maximum message size of {max} bytes (use a larger --capacity)",
            cli.size
        )));
    }
    if let Some(chunk) = cli.chunk.filter(|&chunk| chunk > max) {
        return Err(UsageError(format!(
            "--chunk {chunk} exceeds the ring's maximum message size of {max} bytes"
        )));
    }
    Ok(())
}

fn run(cli: &Cli, signals: &Signals) -> anyhow::Result<()> {
    // Usage errors come before anything is created: with --capacity, or where there is no
    // ring yet (so one of the default capacity would be made), the ring's maximum message
    // size is known now.
    if cli.common.ring.capacity.is_some() || !cli.common.path.exists() {
        let capacity = cli
            .common
            .ring
            .capacity
            .unwrap_or(ringfile::DEFAULT_CAPACITY);
        check_sizes(cli, ringfile::format::max_message_len(capacity) as usize)?;
    }
    let ring = cli.common.open_ring()?;
    // An existing ring's own (options the ring cannot carry are found before the stream is
    // touched).
    check_sizes(cli, ring.max_message_len())?;
    let mut producer = ring.producer()?;
    producer.set_wait_strategy(cli.common.wait.into());
    let counters = Arc::new(Counters::default());
    let progress = Progress::start("producer", Arc::clone(&counters), cli.common.quiet);
    let mut sent = Sent {
        messages: 0,
        bytes: 0,
        counters,
        held_by: None,
    };
    let start = Instant::now();
    let outcome = match cli.gen {
        Some(count) => generate(cli, count, &mut producer, &mut sent, signals),
        None => stream_input(cli, &mut producer, &mut sent, signals),
    };
    let elapsed = start.elapsed();
    progress.finish();
    if let Err(e) = outcome {
        // End the stream as failed, so the consumer reports why rather than waiting for a
        // producer that will never come back (or mistaking this for a clean detach). If even
        // that fails, the producer is abandoned: the consumer reports it as died.
        if let Err(abort) = producer.abort(&format!("{e:#}")) {
            eprintln!("producer: could not mark the stream as failed: {abort}");
        }
        return Err(e);
    }
    let ended = if signals.requested() {
        "stopped by signal"
    } else {
        "end of input"
    };
    if cli.no_close {
        producer.detach();
    } else {
        producer.close()?;
    }
    Summary {
        program: "producer",
        messages: sent.messages,
        bytes: sent.bytes,
        elapsed,
        ended,
        errors: None,
        latency: None,
        missed: None,
    }
    .print(cli.common.json);
    Ok(())
}

/// A producer found the ring full: says what it waits for on its progress line, and on a
/// ring with consumer slots which name holds it back (and since when): at once for a name
/// whose process is gone, which only an operator can free, after [`SAY_WHO_AFTER`] for a
/// live one that does not read; once per name and position.
fn room_wait(producer: &mut Producer, sent: &mut Sent) {
    policy_news(producer);
    let slowest = producer.slowest_consumer();
    let waiting = match &slowest {
        Ok(Some(slowest)) if !slowest.live => Waiting::RoomNoConsumer,
        _ => Waiting::Room,
    };
    sent.counters.set_waiting(waiting);
    let Ok(Some(slowest)) = slowest else {
        return;
    };
    if producer.consumer_slots() <= 1 {
        return;
    }
    let same = sent
        .held_by
        .as_ref()
        .is_some_and(|h| h.name == slowest.name && h.position == slowest.position);
    if !same {
        sent.held_by = Some(HeldBy {
            name: slowest.name.clone(),
            position: slowest.position,
            since: Instant::now(),
            told: false,
        });
    }
    let held = sent.held_by.as_mut().expect("set above");
    if !held.told && (!slowest.live || held.since.elapsed() >= SAY_WHO_AFTER) {
        held.told = true;
        eprintln!(
            "producer: ring full since {} UTC: {}",
            time_of_day(held.since),
            holder_state(producer, &slowest)
        );
    }
}

/// Says what the producer did under its consumers' policies (`consumer --retain`,
/// `--max-lag`), if anything.
fn policy_news(producer: &mut Producer) {
    for event in producer.take_policy_events() {
        match event {
            ringfile::PolicyEvent::Evicted { name } => eprintln!(
                "producer: {}: evicted the consumer {name:?}: its process was gone for longer than its --retain",
                producer.path().display()
            ),
            ringfile::PolicyEvent::TurnedLossy { name, lag } => eprintln!(
                "producer: {}: the consumer {name:?} lagged {} behind, more than its --max-lag: no longer waiting for it (it is lossy now)",
                producer.path().display(),
                ringfile::units::Size(lag)
            ),
            _ => {}
        }
    }
}

/// The time of day `at` was, UTC, as HH:MM:SS.
fn time_of_day(at: Instant) -> String {
    let secs = std::time::SystemTime::now()
        .checked_sub(at.elapsed())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// Who should make room, for the message a stopping producer prints while it waits, and
/// for the one it prints when a ring with consumer slots is held by a name whose process
/// is gone.
fn consumer_state(producer: &Producer) -> String {
    match producer.slowest_consumer() {
        Ok(Some(slowest)) => holder_state(producer, &slowest),
        _ => "no consumer holds the ring".to_string(),
    }
}

/// [`consumer_state`] for the consumer `slowest` already found.
fn holder_state(producer: &Producer, slowest: &ringfile::SlowestConsumer) -> String {
    let named = producer.consumer_slots() > 1;
    let who = if named {
        format!("the consumer {:?}", slowest.name)
    } else {
        "the consumer".to_string()
    };
    match (slowest.live, slowest.pid) {
        (true, Some(pid)) => format!("{who} (pid {pid}) is attached but not reading"),
        (true, None) => format!("{who} is attached but not reading"),
        (false, Some(pid)) if named => format!(
            "{who} is registered but dead (its last holder, pid {pid}, is gone): `ringfile evict {} {}` frees the ring of it",
            producer.path().display(),
            slowest.name
        ),
        (false, Some(pid)) => format!("no consumer is attached; the last one, pid {pid}, is gone"),
        (false, None) => "no consumer has attached yet".to_string(),
    }
}

/// A stream id for generated messages: differs between runs, never 0.
fn stream_id() -> u32 {
    let mix = (u64::from(std::process::id()) << 32 ^ ringfile::diagnostics::monotonic_ns())
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mix >> 32) as u32).max(1)
}

/// Messages per batch when generating as fast as possible: one tail store and one timestamp
/// per batch. Small enough that a batch is a few microseconds of work.
const GEN_BATCH: u64 = 128;

/// The most of the ring one batch of generated messages fills, as a fraction (1/N): the
/// consumer gets the first part of the ring to check while the rest is being filled. A batch
/// that filled the whole ring would make the two sides take turns instead of overlapping
/// (large messages in a small ring: 16 of 64 KiB fill 1 MiB).
const GEN_BATCH_RING_PART: u64 = 8;

fn generate(
    cli: &Cli,
    count: u64,
    producer: &mut Producer,
    sent: &mut Sent,
    signals: &Signals,
) -> anyhow::Result<()> {
    let size = cli.size;
    let stream = stream_id();
    let mut seq = 0u64;
    let record = 8 + (size as u64).next_multiple_of(8);
    let batch_len = GEN_BATCH.min((producer.capacity() / GEN_BATCH_RING_PART / record).max(1));
    match cli.rate {
        Some(rate) => {
            let start = Instant::now();
            while seq < count {
                // A due time too far to represent (a tiny rate) is never: wait for a signal.
                let due = Duration::try_from_secs_f64(seq as f64 / rate)
                    .ok()
                    .and_then(|after| start.checked_add(after));
                if !sleep_until(due, signals) {
                    break;
                }
                // Each wait for room is bounded, so a signal is seen within SIGNAL_POLL.
                loop {
                    match producer.claim_timeout(size, SIGNAL_POLL) {
                        Ok(mut claim) => {
                            generated::fill(
                                &mut claim,
                                stream,
                                seq,
                                ringfile::diagnostics::monotonic_ns(),
                            );
                            claim.commit();
                            break;
                        }
                        Err(Error::Timeout) if signals.requested() => return Ok(()),
                        Err(Error::Timeout) => room_wait(producer, sent),
                        Err(e) => return Err(e.into()),
                    }
                }
                seq += 1;
                sent.add(1, size as u64);
                sent.counters.set_waiting(Waiting::Nothing);
            }
        }
        None => {
            while seq < count && !signals.requested() {
                let n = batch_len.min(count - seq);
                // Messages of a batch are published together: one send time for all.
                let now = ringfile::diagnostics::monotonic_ns();
                let mut batch = producer.batch();
                let mut done = 0;
                let mut full = false;
                while done < n {
                    match batch.claim_timeout(size, SIGNAL_POLL) {
                        Ok(mut claim) => {
                            generated::fill(&mut claim, stream, seq, now);
                            claim.commit();
                            seq += 1;
                            done += 1;
                        }
                        Err(Error::Timeout) if signals.requested() => break,
                        Err(Error::Timeout) => {
                            full = true;
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                drop(batch);
                sent.add(done, done * size as u64);
                policy_news(producer);
                // Said after the batch (which borrows the producer) is published.
                if full {
                    room_wait(producer, sent);
                } else {
                    sent.counters.set_waiting(Waiting::Nothing);
                }
            }
        }
    }
    Ok(())
}

/// Sleeps until `due` (`None`: forever): in the kernel while it is far, in slices that look
/// for signals, spinning for the last 100 µs so paced messages leave on time. Returns false
/// if a signal asked us to stop.
fn sleep_until(due: Option<Instant>, signals: &Signals) -> bool {
    loop {
        if signals.requested() {
            return false;
        }
        let now = Instant::now();
        let left = match due {
            Some(due) if now >= due => return true,
            Some(due) => due - now,
            None => Duration::MAX,
        };
        if left > Duration::from_micros(100) {
            std::thread::sleep((left - Duration::from_micros(100)).min(SIGNAL_POLL));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Waits until `fd` has input (or end of input), checking for signals every 100 ms.
/// Returns false if a signal asked us to stop.
fn wait_readable(fd: i32, signals: &Signals, counters: &Counters) -> anyhow::Result<bool> {
    loop {
        if signals.requested() {
            return Ok(false);
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, 100) };
        if rc > 0 {
            counters.set_waiting(Waiting::Nothing);
            return Ok(true);
        }
        if rc == 0 {
            counters.set_waiting(Waiting::Input);
        }
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).context("waiting for input");
            }
        }
    }
}

fn stream_input(
    cli: &Cli,
    producer: &mut Producer,
    sent: &mut Sent,
    signals: &Signals,
) -> anyhow::Result<()> {
    let max = producer.max_message_len();
    let chunk = cli.chunk.unwrap_or(max.min(64 * 1024));
    let mut input = open_input(cli.input.as_ref())?;
    let input_name = cli
        .input
        .as_ref()
        .map_or_else(|| "standard input".to_string(), |p| p.display().to_string());
    let fd = input.as_raw_fd();
    // Room for the largest message and its length prefix, and big reads.
    let mut buf = vec![0u8; (max + 5).max(1 << 20)];
    let (mut start, mut end) = (0usize, 0usize);
    let mut framer = Framer {
        framing: cli.common.framing,
        max,
        chunk,
        offset: 0,
    };
    let mut eof = false;
    // A signal stops the input at a message boundary: what follows the last complete
    // message is not a message, even when nothing more will be read.
    let mut stopped = false;
    let mut told = false;
    loop {
        // Send every complete message buffered, as one batch: published before we wait.
        {
            let mut batch = producer.batch();
            let (mut messages, mut bytes) = (0u64, 0u64);
            let mut full = false;
            let result = loop {
                let (from, to, used) = match framer.cut(&buf[start..end], eof && !stopped) {
                    Ok(Cut::More) => break Ok(()),
                    Ok(Cut::Message(from, to, used)) => (from, to, used),
                    Err(e) => break Err(e),
                };
                let msg = &buf[start + from..start + to];
                // Messages already read are sent even after a signal (they would be lost
                // otherwise); a second signal exits at once.
                match batch.send_timeout(msg, SIGNAL_POLL) {
                    Ok(()) => {}
                    Err(Error::Timeout) => {
                        // Publish what is batched, then wait for room outside the batch
                        // (which borrows the producer), saying why.
                        full = true;
                        break Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
                start += used;
                framer.offset += used as u64;
                messages += 1;
                bytes += msg.len() as u64;
            };
            drop(batch);
            sent.add(messages, bytes);
            policy_news(producer);
            result?;
            if full {
                // The ring is full: wait for room for the next message, looking for signals.
                room_wait(producer, sent);
                if signals.requested() && !told {
                    told = true;
                    eprintln!(
                        "producer: stopping: waiting for a consumer to make room for the messages already read, then to close the stream ({}); signal again to exit at once without sending them",
                        consumer_state(producer)
                    );
                }
                continue;
            }
            sent.counters.set_waiting(Waiting::Nothing);
        }
        if eof {
            if stopped && end > start {
                eprintln!(
                    "producer: stopped by signal: the last {} bytes read from {input_name} are an incomplete message and were not sent",
                    end - start
                );
            }
            return Ok(());
        }
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if !wait_readable(fd, signals, &sent.counters)? {
            // Stop cleanly, at the last complete message read.
            eof = true;
            stopped = true;
            continue;
        }
        match input.read(&mut buf[end..]) {
            Ok(0) => eof = true,
            Ok(n) => end += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading {input_name}")),
        }
    }
}
