//! `ringfile-bridge in`: the far ring's producer, fed by a durable JetStream consumer.
//!
//! Exactly once: with each publish into the ring the bridge records a resume mark (the
//! JetStream sequence of the frame and how many of its messages are written,
//! [`frame::Mark`]); a bridge that attaches reads the mark its predecessor left and skips
//! what JetStream redelivers up to it. A frame is acknowledged to JetStream only once it is
//! published in the ring. Frames are also checked against the near ring's positions: one
//! whose place the ring already holds is a duplicate (skipped), and one that would leave a
//! gap (a frame lost on the way while a later one arrived) is given back to JetStream until
//! the missing one is redelivered.

use crate::frame::{self, Kind, Mark, Meta, Place};
use crate::nats;
use crate::options::InArgs;
use crate::totals::Totals;
use anyhow::Context as _;
use async_nats::jetstream;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::ConsumerErrorKind;
use futures_util::{FutureExt as _, StreamExt as _};
use ringfile::{Error, Producer};
use ringfile_cli::progress::{Counters, Progress, Waiting};
use ringfile_cli::signals::Signals;
use ringfile_cli::SIGNAL_POLL;
use std::sync::Arc;
use std::time::Duration;

/// The program's name in messages.
pub const PROGRAM: &str = "ringfile-bridge in";

/// How long JetStream waits for the acknowledgement of a delivered frame before delivering it
/// again (to this bridge, or its successor).
const ACK_WAIT: Duration = Duration::from_secs(30);

/// How long a pull request waits on the server for frames.
const PULL_EXPIRES: Duration = Duration::from_millis(500);

/// A batch pulled, or what stopped the pulling (said once, retried).
type Pulled = Result<Vec<jetstream::Message>, String>;

/// Runs `ringfile-bridge in`.
pub fn run(args: &InArgs, signals: &Signals) -> anyhow::Result<i32> {
    let runtime = crate::runtime()?;
    let servers = nats::servers(&args.nats);
    let counters = Arc::new(Counters::default());
    let mut totals = Totals::default();
    let js = runtime.block_on(nats::connect(&args.nats, PROGRAM))?;
    let ring = args.ring.open(&args.path)?;
    // Whatever way the bridge stops short of an ending (a signal, an error), the producer
    // detaches: the far ring's stream stays open for the next bridge, as the near one is.
    let mut producer = Detaching(Some(ring.producer()?));
    let Some(stream) = runtime.block_on(nats::stream(&js, &args.nats, PROGRAM, signals))? else {
        return Ok(totals.finish(PROGRAM, "stopped by signal", args.nats.json));
    };
    // Where the last bridge stopped: the mark in the ring, and the frame it names.
    let mut mark = producer
        .0
        .as_ref()
        .and_then(Producer::resume_mark)
        .map(Mark::decode);
    let mut last: Option<Place> = None;
    if let Some(m) = mark {
        last = runtime.block_on(async {
            match stream.get_raw_message(m.sequence).await {
                Ok(msg) => frame::decode(Some(&msg.headers), &msg.payload)
                    .ok()
                    .map(|meta| meta.place),
                Err(_) => None,
            }
        });
    }
    let durable = args
        .durable
        .clone()
        .unwrap_or_else(|| default_durable(&args.path));
    let mut puller = Puller {
        runtime: &runtime,
        stream: &stream,
        durable,
        subject: args.nats.subject.clone(),
        fetch: args.fetch,
        servers: servers.clone(),
        task: None,
    };
    // With a mark, JetStream delivers from the frame it names (what its consumer had
    // delivered to a killed bridge and not seen acknowledged would otherwise wait out the
    // acknowledgement timeout); without, from where the durable consumer is.
    let Some(mut rx) = puller.start(mark.map(|m| m.sequence), signals)? else {
        return Ok(totals.finish(PROGRAM, "stopped by signal", args.nats.json));
    };
    let progress = Progress::start(PROGRAM, Arc::clone(&counters), args.nats.quiet);
    let mut told: Option<String> = None;
    let ended = 'run: loop {
        if signals.requested() {
            break "stopped by signal";
        }
        let pulled = runtime.block_on(async { tokio::time::timeout(SIGNAL_POLL, rx.recv()).await });
        let batch = match pulled {
            Err(_) => continue, // nothing yet
            Ok(None) => anyhow::bail!("the task pulling from JetStream stopped"),
            Ok(Some(Err(problem))) => {
                if told.as_ref() != Some(&problem) {
                    eprintln!(
                        "{PROGRAM}: {servers}: pulling from stream {}: {problem}; retrying",
                        args.nats.stream
                    );
                    told = Some(problem);
                }
                continue;
            }
            Ok(Some(Ok(batch))) => {
                told = None;
                batch
            }
        };
        for message in batch {
            let sequence = message
                .info()
                .map_err(|e| anyhow::anyhow!("a JetStream message without its metadata: {e}"))?
                .stream_sequence;
            let meta =
                frame::decode(message.headers.as_ref(), &message.payload).with_context(|| {
                    format!(
                    "{servers}: stream {} message {sequence} on {}: not a ringfile-bridge frame",
                    args.nats.stream, message.subject
                )
                })?;
            let parts = if meta.kind == Kind::Data {
                meta.count
            } else {
                1
            };
            // Already written, by this bridge or the one before.
            let mut from = 0;
            if let Some(m) = mark {
                if sequence < m.sequence || (sequence == m.sequence && m.written >= parts) {
                    ack(&runtime, message);
                    continue;
                }
                if sequence == m.sequence {
                    from = m.written;
                }
            }
            if from == 0 {
                if let Some(l) = last.as_ref().filter(|l| l.ring == meta.place.ring) {
                    if meta.place.end <= l.end
                        && !(meta.kind == Kind::Died && meta.place.start == l.end)
                    {
                        ack(&runtime, message);
                        continue;
                    }
                    if meta.place.start > l.end {
                        // A frame before this one was lost on the way (a connection that
                        // broke): have JetStream deliver again from the one after the last
                        // written, dropping what was pulled.
                        let again = mark.map_or(1, |m| m.sequence + 1);
                        eprintln!(
                            "{PROGRAM}: {servers}: stream {} message {sequence} starts at position {}, past the end {} of what was written: pulling again from message {again}",
                            args.nats.stream, meta.place.start, l.end
                        );
                        match puller.start(Some(again), signals)? {
                            Some(fresh) => rx = fresh,
                            None => break 'run "stopped by signal",
                        }
                        continue 'run;
                    }
                    if meta.place.start < l.end {
                        anyhow::bail!(
                            "{servers}: stream {} message {sequence}: frame [{}, {}) overlaps the frame written before it, which ended at {} (the stream has two writers for one ring?)",
                            args.nats.stream, meta.place.start, meta.place.end, l.end
                        );
                    }
                }
            }
            if producer.0.is_none() {
                producer.0 = Some(ring.producer()?);
            }
            let written = match write(
                &mut producer.0,
                &meta,
                &message.payload,
                sequence,
                from,
                signals,
                &counters,
            )? {
                None => break 'run "stopped by signal",
                Some(w) => w,
            };
            if meta.kind == Kind::Data {
                totals.add(written.0, written.1, &counters);
            }
            mark = Some(Mark {
                sequence,
                written: parts,
            });
            last = Some(meta.place.clone());
            ack(&runtime, message);
            if meta.kind == Kind::Data {
                continue;
            }
            let what = meta.kind.ending();
            eprintln!(
                "{PROGRAM}: {}: {what} carried from stream {}",
                args.path.display(),
                args.nats.stream
            );
            if !args.follow {
                break 'run what;
            }
        }
    };
    puller.stop();
    progress.finish();
    drop(producer);
    // Acknowledgements go out before the connection closes.
    let _ = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(2), js.client().flush()).await
    });
    Ok(totals.finish(PROGRAM, ended, args.nats.json))
}

fn ack(runtime: &tokio::runtime::Runtime, message: jetstream::Message) {
    runtime.spawn(async move {
        let _ = message.ack().await;
    });
}

/// The far ring's producer, detached (not closed) if dropped attached.
struct Detaching(Option<Producer>);

impl Drop for Detaching {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.detach();
        }
    }
}

/// The durable consumer and the task that pulls from it: at most one batch waits in the
/// channel while the ring is full, and one more is being pulled; then it stops pulling.
struct Puller<'a> {
    runtime: &'a tokio::runtime::Runtime,
    stream: &'a jetstream::stream::Stream,
    durable: String,
    subject: String,
    fetch: u64,
    servers: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Puller<'_> {
    /// (Re)starts pulling: from stream message `from` (the durable consumer is created anew
    /// there), or, with `None`, from where the durable consumer stands. `None` on a signal
    /// while the server is away.
    fn start(
        &mut self,
        from: Option<u64>,
        signals: &Signals,
    ) -> anyhow::Result<Option<tokio::sync::mpsc::Receiver<Pulled>>> {
        self.stop();
        let config = pull::Config {
            durable_name: Some(self.durable.clone()),
            filter_subject: self.subject.clone(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            deliver_policy: from.map_or(DeliverPolicy::All, |start_sequence| {
                DeliverPolicy::ByStartSequence { start_sequence }
            }),
            max_ack_pending: i64::try_from(self.fetch * 4).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let mut told = false;
        let consumer = loop {
            let attempt = self.runtime.block_on(async {
                if from.is_some() {
                    // Gone already is fine; anything else shows in the create below.
                    let _ = self.stream.delete_consumer(&self.durable).await;
                    self.stream.create_consumer(config.clone()).await
                } else {
                    self.stream
                        .get_or_create_consumer(&self.durable, config.clone())
                        .await
                }
            });
            match attempt {
                Ok(c) => break c,
                Err(e) => {
                    // Only a server away (the request timed out or failed) is waited for.
                    if !matches!(
                        e.kind(),
                        ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request
                    ) {
                        anyhow::bail!(
                            "{}: the durable consumer {}: {e}",
                            self.servers,
                            self.durable
                        );
                    }
                    if !told {
                        eprintln!(
                            "{PROGRAM}: {}: the durable consumer {}: {e}; waiting for the server",
                            self.servers, self.durable
                        );
                        told = true;
                    }
                }
            }
            if self
                .runtime
                .block_on(nats::sleep_or_signal(signals, nats::RETRY))
            {
                return Ok(None);
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Pulled>(1);
        let fetch = usize::try_from(self.fetch).unwrap_or(usize::MAX);
        self.task = Some(self.runtime.spawn(async move {
            // async-nats's pull stream keeps pull requests pipelined (a new one goes out when
            // half of `fetch` is left), so frames keep coming while the last ones are written;
            // what it holds is bounded by `fetch` (and by max_ack_pending at the server).
            // Each batch sent on is what had arrived, up to `fetch` frames: one to wait for,
            // the rest ready.
            loop {
                let problem = match consumer
                    .stream()
                    .max_messages_per_batch(fetch)
                    .expires(PULL_EXPIRES)
                    .messages()
                    .await
                {
                    Err(e) => e.to_string(),
                    Ok(mut messages) => loop {
                        let mut got = Vec::new();
                        let mut failed = pulled(messages.next().await).map(|m| got.push(m)).err();
                        while failed.is_none() && got.len() < fetch {
                            let Some(next) = messages.next().now_or_never() else {
                                break;
                            };
                            failed = pulled(next).map(|m| got.push(m)).err();
                        }
                        if !got.is_empty() && tx.send(Ok(got)).await.is_err() {
                            return;
                        }
                        if let Some(problem) = failed {
                            break problem;
                        }
                    },
                };
                if tx.send(Err(problem)).await.is_err() {
                    return;
                }
                tokio::time::sleep(nats::RETRY).await;
            }
        }));
        Ok(Some(rx))
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One item of a pull stream as a message, or the text of why there is none.
fn pulled<E: std::fmt::Display>(
    next: Option<Result<jetstream::Message, E>>,
) -> Result<jetstream::Message, String> {
    match next {
        Some(Ok(message)) => Ok(message),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the pull subscription ended".to_string()),
    }
}

/// The durable consumer's name when none is given: from the ring file's name.
fn default_durable(path: &std::path::Path) -> String {
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ringfile-{name}")
}

/// Writes a frame into the ring from its message `from` on, marking each publish; returns
/// the messages written and their bytes, or `None` if a signal came while the ring was full. An ending ends
/// the producer (`producer` is then `None`).
fn write(
    producer: &mut Option<Producer>,
    meta: &Meta,
    payload: &[u8],
    sequence: u64,
    from: u64,
    signals: &Signals,
    counters: &Counters,
) -> anyhow::Result<Option<(u64, u64)>> {
    let mark = |written| Mark { sequence, written }.encode();
    match &meta.kind {
        Kind::Data => {}
        Kind::End => {
            let mut p = producer.take().expect("attached");
            p.mark_next_publish(mark(1));
            p.close()?;
            return Ok(Some((0, 0)));
        }
        Kind::Abort(reason) => {
            let mut p = producer.take().expect("attached");
            p.mark_next_publish(mark(1));
            p.abort(reason)?;
            return Ok(Some((0, 0)));
        }
        Kind::Died => {
            producer.take().expect("attached").abandon();
            return Ok(Some((0, 0)));
        }
    }
    let messages = frame::unpack(payload, meta.count).with_context(|| {
        format!(
            "frame at position {} of ring {}",
            meta.place.start, meta.place.ring
        )
    })?;
    let p = producer.as_mut().expect("attached");
    let max = p.max_message_len();
    if let Some(big) = messages.iter().find(|m| m.len() > max) {
        anyhow::bail!(
            "{}: a message of {} bytes came, larger than the ring's maximum of {max}: create the ring with a larger --capacity",
            p.path().display(),
            big.len()
        );
    }
    let mut batch = p.batch();
    let (mut written, mut bytes) = (0, 0);
    for (i, msg) in messages.iter().enumerate().skip(from as usize) {
        match batch.try_send(msg) {
            Ok(()) => {}
            Err(Error::Full) => {
                // What is written so far is published with its mark; then wait for room.
                batch.mark_next_publish(mark(i as u64));
                batch.publish();
                counters.set_waiting(Waiting::Room);
                loop {
                    match batch.send_timeout(msg, SIGNAL_POLL) {
                        Ok(()) => break,
                        Err(Error::Timeout) if signals.requested() => return Ok(None),
                        Err(Error::Timeout) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                counters.set_waiting(Waiting::Nothing);
            }
            Err(e) => return Err(e.into()),
        }
        written += 1;
        bytes += msg.len() as u64;
    }
    batch.mark_next_publish(mark(meta.count));
    batch.publish();
    Ok(Some((written, bytes)))
}
