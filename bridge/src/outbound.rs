//! `ringfile-bridge out`: the ring's consumer, publishing its stream to JetStream.
//!
//! Messages are read and kept ([`ringfile::Message::keep`]), packed into frames, and
//! published with many frames in flight; as acknowledgements come back, in order, the ring
//! space of the frames acknowledged is released ([`ringfile::Consumer::release_to`]). The end
//! of a stream is kept the same way ([`ringfile::Consumer::set_keep_ends`]). So whatever
//! stops the bridge, the ring still holds every message JetStream has not acknowledged.
//!
//! Each frame is published with `Nats-Expected-Last-Msg-Id` naming the frame before it: the
//! stream holds the frames contiguously and in order, or refuses the publish. Any refusal,
//! timeout or duplicate starts a new session: the consumer is dropped (what it kept goes back
//! to the ring), the stream's last message says where the stream stands, and reading resumes
//! after it — the same path a restarted bridge takes.

use crate::frame::{self, Kind, Meta, Place};
use crate::nats;
use crate::options::OutArgs;
use crate::totals::Totals;
use anyhow::Context as _;
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use ringfile::{Consumer, ConsumerOptions, Error, ReadMark, Ring};
use ringfile_cli::progress::{Counters, Progress, Waiting};
use ringfile_cli::signals::Signals;
use ringfile_cli::SIGNAL_POLL;
use std::collections::VecDeque;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

/// The program's name in messages.
pub const PROGRAM: &str = "ringfile-bridge out";

/// Room left in a NATS message for the frame's headers.
const HEADER_ROOM: u64 = 1024;

/// How long the bridge waits for an acknowledgement at a time when it has nothing else to do.
const ACK_POLL: Duration = Duration::from_millis(2);

/// Where the stream stands: its last message.
struct Tip {
    /// Its message id (the next publish expects it).
    id: Option<String>,
    /// Where it lies in a ring's stream, if it is a ringfile frame.
    meta: Option<Meta>,
}

/// A frame published and not yet acknowledged.
struct InFlight {
    ack: tokio::task::JoinHandle<
        Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
    >,
    /// The consumer's read mark just after the frame: released once it is acknowledged.
    mark: ReadMark,
    meta: Meta,
    bytes: u64,
}

/// Why a session stopped.
enum Stop {
    /// An ending was carried (its description).
    Carried(&'static str),
    /// A signal.
    Signal,
    /// Something about the server: start a new session (after saying this).
    Resume(String),
}

/// What one receive gave.
enum Step {
    /// A message, packed into the frame (and kept).
    Packed,
    /// A message the stream already holds (kept, released once nothing before it waits).
    Skipped,
    /// Nothing ready (or the end of the stream: `is_ended` tells).
    Empty,
    /// Nothing within the wait.
    Timeout,
    /// The producer's stream ended so.
    Ending(Kind),
}

/// Runs `ringfile-bridge out`.
pub fn run(args: &OutArgs, signals: &Signals) -> anyhow::Result<i32> {
    let runtime = crate::runtime()?;
    let servers = nats::servers(&args.nats);
    let counters = Arc::new(Counters::default());
    let js = runtime.block_on(nats::connect(&args.nats, PROGRAM))?;
    let Some(stream) = runtime.block_on(nats::stream(&js, &args.nats, PROGRAM, signals))? else {
        return Ok(Totals::default().finish(PROGRAM, "stopped by signal", args.nats.json));
    };
    let Some(ring) =
        args.ring
            .open_or_wait(&args.path, PROGRAM, args.nats.quiet, signals, &counters)?
    else {
        return Ok(Totals::default().finish(PROGRAM, "stopped by signal", args.nats.json));
    };
    let ring_id = crate::ring_id(&ring)?;
    let progress = Progress::start(PROGRAM, Arc::clone(&counters), args.nats.quiet);
    let mut totals = Totals::default();
    let mut out = Outbound {
        args,
        js: &js,
        runtime: &runtime,
        signals,
        counters: &counters,
        ring_id,
        totals: &mut totals,
    };
    let ended = loop {
        let Some(tip) = out.tip(&stream)? else {
            break "stopped by signal";
        };
        let mut consumer = attach(&ring, args)?;
        match out.session(&mut consumer, tip)? {
            Stop::Carried(what) => break what,
            Stop::Signal => break "stopped by signal",
            Stop::Resume(why) => {
                eprintln!("{PROGRAM}: {servers}: {why}; resuming after the stream's last message");
                // What the consumer kept goes back to the ring for the next session.
                drop(consumer);
                if runtime.block_on(nats::sleep_or_signal(signals, nats::RETRY)) {
                    break "stopped by signal";
                }
            }
        }
    };
    progress.finish();
    Ok(totals.finish(PROGRAM, ended, args.nats.json))
}

fn attach(ring: &Ring, args: &OutArgs) -> anyhow::Result<Consumer> {
    let mut options = ConsumerOptions::new();
    if let Some(name) = &args.name {
        options = options.name(name);
    }
    let mut consumer = ring.consumer_with(&options)?;
    if consumer.is_lossy() {
        anyhow::bail!(
            "{}: consumer {:?} is lossy: the producer may overtake it, so the bridge could not carry every message (register a lossless name)",
            ring.path().display(),
            consumer.name()
        );
    }
    consumer.set_keep_ends(true);
    Ok(consumer)
}

struct Outbound<'a> {
    args: &'a OutArgs,
    js: &'a jetstream::Context,
    runtime: &'a tokio::runtime::Runtime,
    signals: &'a Signals,
    counters: &'a Counters,
    ring_id: String,
    totals: &'a mut Totals,
}

/// A frame being packed.
struct Packing {
    payload: Vec<u8>,
    start: u64,
    count: u64,
    bytes: u64,
}

impl Outbound<'_> {
    /// The stream's last message, waiting while the server is away; `None` on a signal.
    fn tip(&self, stream: &stream::Stream) -> anyhow::Result<Option<Tip>> {
        let servers = nats::servers(&self.args.nats);
        let mut told = false;
        loop {
            match self.runtime.block_on(last_message(stream.clone())) {
                Ok(tip) => return Ok(Some(tip)),
                Err(e) => {
                    if !told {
                        eprintln!(
                            "{PROGRAM}: {servers}: stream {}: cannot read its last message ({e:#}); waiting for the server",
                            self.args.nats.stream
                        );
                        told = true;
                    }
                }
            }
            if self
                .runtime
                .block_on(nats::sleep_or_signal(self.signals, nats::RETRY))
            {
                return Ok(None);
            }
        }
    }

    /// The most payload one frame carries.
    fn frame_limit(&self) -> u64 {
        let max_payload = self.js.client().server_info().max_payload as u64;
        let server = if max_payload == 0 {
            u64::MAX
        } else {
            max_payload.saturating_sub(HEADER_ROOM)
        };
        self.args.batch_bytes.min(server).max(1)
    }

    fn session(&mut self, consumer: &mut Consumer, tip: Tip) -> anyhow::Result<Stop> {
        // What the stream already holds of this ring's stream: skipped, and released.
        let stored = tip
            .meta
            .filter(|m| m.place.ring == self.ring_id)
            .map(|m| (m.place.end, m.kind));
        let mut expected = tip.id;
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut packing: Option<Packing> = None;
        let limit = self.frame_limit();
        loop {
            if self.signals.requested() {
                return Ok(Stop::Signal);
            }
            if let Some(stop) = self.collect(consumer, &mut in_flight, false)? {
                return Ok(stop);
            }
            while in_flight.len() as u64 >= self.args.in_flight {
                if let Some(stop) = self.collect(consumer, &mut in_flight, true)? {
                    return Ok(stop);
                }
            }
            let before = consumer.read_mark();
            // Waits only when there is nothing to pack or to collect.
            let idle = packing.is_none() && in_flight.is_empty();
            // What was received, taken apart within this statement (a message borrows the
            // consumer until it is kept or given back).
            let step = match if idle {
                consumer.recv_timeout(SIGNAL_POLL)
            } else {
                consumer.try_recv()
            } {
                Ok(Some(msg)) => {
                    let len = msg.len() as u64;
                    // Already in the stream (a restart): released as soon as nothing before
                    // it waits.
                    if matches!(stored, Some((end, _)) if before.position() < end) {
                        msg.keep();
                        Step::Skipped
                    } else if len + frame::LEN_BYTES as u64 > limit {
                        // Given back unread: it stays in the ring for a bridge with a larger
                        // limit (dropped, it would count as received and be released).
                        msg.unread();
                        anyhow::bail!(
                            "{}: a message of {len} bytes at position {} is larger than a NATS message may be here ({limit} bytes, from --batch-bytes {} and the server's max_payload {}): raise them",
                            self.args.path.display(),
                            before.position(),
                            self.args.batch_bytes,
                            self.js.client().server_info().max_payload
                        );
                    } else {
                        let full = packing.as_ref().is_some_and(|p| {
                            p.payload.len() as u64 + frame::LEN_BYTES as u64 + len > limit
                                || p.count >= self.args.batch_messages
                        });
                        if full {
                            let p = packing.take().expect("a frame is being packed");
                            match self.publish_data(p, before, &mut expected, &mut in_flight) {
                                Ok(None) => {}
                                // Not packed: given back for the next session or bridge.
                                Ok(Some(stop)) => {
                                    msg.unread();
                                    return Ok(stop);
                                }
                                Err(e) => {
                                    msg.unread();
                                    return Err(e);
                                }
                            }
                        }
                        let p = packing.get_or_insert_with(|| Packing {
                            payload: Vec::with_capacity(limit.min(1 << 20) as usize),
                            start: before.position(),
                            count: 0,
                            bytes: 0,
                        });
                        frame::pack(&mut p.payload, &msg);
                        p.count += 1;
                        p.bytes += len;
                        msg.keep();
                        Step::Packed
                    }
                }
                Ok(None) => Step::Empty,
                Err(Error::Timeout) => Step::Timeout,
                Err(Error::StreamAborted { reason, .. }) => Step::Ending(Kind::Abort(reason)),
                Err(Error::ProducerDied { .. }) => Step::Ending(Kind::Died),
                Err(e) => return Err(e.into()),
            };
            let ending = match step {
                Step::Packed => continue,
                Step::Skipped => {
                    if packing.is_none() && in_flight.is_empty() {
                        consumer.release_to(consumer.read_mark());
                    }
                    continue;
                }
                Step::Empty if consumer.is_ended() => Kind::End,
                Step::Empty => {
                    // Nothing ready: send what is packed, or wait a little for acks.
                    if let Some(p) = packing.take() {
                        if let Some(stop) =
                            self.publish_data(p, before, &mut expected, &mut in_flight)?
                        {
                            return Ok(stop);
                        }
                    } else if let Some(stop) = self.collect(consumer, &mut in_flight, true)? {
                        return Ok(stop);
                    }
                    continue;
                }
                Step::Timeout => {
                    self.counters.set_waiting(Waiting::Messages);
                    continue;
                }
                Step::Ending(kind) => kind,
            };
            let ended_at = consumer.read_mark();
            // Nothing more to pack before an ending.
            if let Some(p) = packing.take() {
                if let Some(stop) = self.publish_data(p, before, &mut expected, &mut in_flight)? {
                    return Ok(stop);
                }
            }
            let place = Place {
                ring: self.ring_id.clone(),
                start: before.position(),
                end: ended_at.position(),
            };
            let already = match &stored {
                Some((end, kind)) => {
                    place.start < *end
                        || (ending == Kind::Died && *kind == Kind::Died && place.start == *end)
                }
                None => false,
            };
            let what = ending.ending();
            if !already {
                let meta = Meta {
                    place,
                    kind: ending,
                    count: 0,
                };
                if let Some(stop) = self.publish(
                    meta,
                    Bytes::new(),
                    ended_at,
                    0,
                    &mut expected,
                    &mut in_flight,
                )? {
                    return Ok(stop);
                }
            }
            // Everything acknowledged, the ending too: then it has crossed.
            while !in_flight.is_empty() {
                if let Some(stop) = self.collect(consumer, &mut in_flight, true)? {
                    return Ok(stop);
                }
            }
            consumer.release_to(ended_at);
            eprintln!(
                "{PROGRAM}: {}: {what} carried to stream {}",
                self.args.path.display(),
                self.args.nats.stream
            );
            if !self.args.follow {
                return Ok(Stop::Carried(what));
            }
        }
    }

    /// Publishes the frame being packed, which ends where `after` is.
    fn publish_data(
        &mut self,
        p: Packing,
        after: ReadMark,
        expected: &mut Option<String>,
        in_flight: &mut VecDeque<InFlight>,
    ) -> anyhow::Result<Option<Stop>> {
        let meta = Meta {
            place: Place {
                ring: self.ring_id.clone(),
                start: p.start,
                end: after.position(),
            },
            kind: Kind::Data,
            count: p.count,
        };
        self.publish(
            meta,
            Bytes::from(p.payload),
            after,
            p.bytes,
            expected,
            in_flight,
        )
    }

    fn publish(
        &mut self,
        meta: Meta,
        payload: Bytes,
        mark: ReadMark,
        bytes: u64,
        expected: &mut Option<String>,
        in_flight: &mut VecDeque<InFlight>,
    ) -> anyhow::Result<Option<Stop>> {
        let mut message = PublishMessage::build()
            .headers(frame::headers(&meta))
            .payload(match &meta.kind {
                Kind::Abort(reason) => Bytes::from(reason.clone().into_bytes()),
                _ => payload,
            });
        if let Some(id) = expected.as_deref() {
            message = message.expected_last_message_id(id);
        }
        let subject = self.args.nats.subject.clone();
        let sent: Result<PublishAckFuture, _> = self
            .runtime
            .block_on(self.js.send_publish(subject, message));
        let future = match sent {
            Ok(f) => f,
            Err(e) => return Ok(Some(Stop::Resume(format!("publishing: {e}")))),
        };
        *expected = Some(frame::message_id(&meta.place, &meta.kind));
        let ack = self.runtime.spawn(future.into_future());
        in_flight.push_back(InFlight {
            ack,
            mark,
            meta,
            bytes,
        });
        Ok(None)
    }

    /// Takes the acknowledgements that have come, in order, releasing what they cover; with
    /// `wait`, waits a little for the first one.
    fn collect(
        &mut self,
        consumer: &mut Consumer,
        in_flight: &mut VecDeque<InFlight>,
        wait: bool,
    ) -> anyhow::Result<Option<Stop>> {
        let mut released = None;
        let mut first = true;
        while let Some(front) = in_flight.front_mut() {
            let result = if front.ack.is_finished() {
                self.runtime.block_on(&mut front.ack)
            } else if wait && first {
                match self
                    .runtime
                    .block_on(async { tokio::time::timeout(ACK_POLL, &mut front.ack).await })
                {
                    Ok(result) => result,
                    Err(_) => break,
                }
            } else {
                break;
            };
            first = false;
            let front = in_flight.pop_front().expect("a frame in flight");
            let result = result.context("the acknowledgement task failed")?;
            match result {
                Ok(ack) if ack.duplicate => {
                    abort_all(in_flight);
                    if let Some(mark) = released {
                        consumer.release_to(mark);
                    }
                    return Ok(Some(Stop::Resume(format!(
                        "stream {} already held the frame at position {} (a duplicate)",
                        self.args.nats.stream, front.meta.place.start
                    ))));
                }
                Ok(_) => {
                    released = Some(front.mark);
                    if front.meta.kind == Kind::Data {
                        self.totals
                            .add(front.meta.count, front.bytes, self.counters);
                    }
                }
                Err(e) => {
                    abort_all(in_flight);
                    if let Some(mark) = released {
                        consumer.release_to(mark);
                    }
                    return match e.kind() {
                        PublishErrorKind::MaxPayloadExceeded => anyhow::bail!(
                            "{}: stream {}: the frame at position {} exceeds the server's max_payload: lower --batch-bytes",
                            nats::servers(&self.args.nats),
                            self.args.nats.stream,
                            front.meta.place.start
                        ),
                        PublishErrorKind::StreamNotFound => anyhow::bail!(
                            "{}: stream {} no longer exists (deleted while the bridge ran)",
                            nats::servers(&self.args.nats),
                            self.args.nats.stream
                        ),
                        PublishErrorKind::WrongLastMessageId => Ok(Some(Stop::Resume(format!(
                            "stream {}'s last message is not the frame before position {} (one was lost on the way, or the stream has another writer)",
                            self.args.nats.stream, front.meta.place.start
                        )))),
                        _ => Ok(Some(Stop::Resume(format!(
                            "no acknowledgement for the frame at position {} ({e})",
                            front.meta.place.start
                        )))),
                    };
                }
            }
        }
        if let Some(mark) = released {
            consumer.release_to(mark);
        }
        Ok(None)
    }
}

fn abort_all(in_flight: &mut VecDeque<InFlight>) {
    for f in in_flight.drain(..) {
        f.ack.abort();
    }
}

/// The stream's last message: its id and, if it is a ringfile frame, where it lies.
async fn last_message(mut stream: stream::Stream) -> anyhow::Result<Tip> {
    let last = stream.info().await?.state.last_sequence;
    if last == 0 {
        return Ok(Tip {
            id: None,
            meta: None,
        });
    }
    match stream.get_raw_message(last).await {
        Ok(message) => {
            let id = message
                .headers
                .get(frame::MSG_ID)
                .map(|v| v.as_str().to_string());
            let meta = frame::decode(Some(&message.headers), &message.payload).ok();
            Ok(Tip { id, meta })
        }
        // Removed (purged, a work-queue stream, a limit): nothing to expect; the far side's
        // own record of what it wrote still drops what is sent again. (Matched on the kind:
        // its text, "no message found", once slipped past a match on "not found", and `out`
        // waited for ever on a purged stream.)
        Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(Tip {
            id: None,
            meta: None,
        }),
        Err(e) => Err(e.into()),
    }
}
