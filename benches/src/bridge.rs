//! The NATS JetStream bridge's throughput against a plain async-nats publisher, on a
//! `nats-server -js` this module starts on a free loopback port with a temporary store.
//!
//! Four measurements of `count` messages of one size, each on a stream of its own:
//!
//! - **publisher**: the baseline. One task packs the messages (already in memory) into NATS
//!   messages with the bridge's framing and batching (each message as a 4-byte length and its
//!   bytes, up to `BATCH_BYTES` or `BATCH_MESSAGES` a frame), publishes each with a
//!   `Nats-Msg-Id`, `IN_FLIGHT` frames in flight, and waits for every acknowledgement.
//! - **out**: `ringfile-bridge out` reading a ring already holding the messages (written by
//!   `producer --gen`, closed) and publishing them, until JetStream acknowledged the end.
//! - **ring → NATS → ring**: the same ring, `ringfile-bridge out` and `ringfile-bridge in`
//!   running together, and `consumer --verify` on the far ring checking every byte of every
//!   message.
//! - **publisher + reader**: the publisher with a durable pull consumer on a connection of
//!   its own reading the stream meanwhile: what NATS itself carries end to end.
//!
//! Rates are from the first acknowledgement (publisher, out: their summaries count from it)
//! or the first message read (the far consumer) to the last, so that the processes' start and
//! connection fall outside all three alike.

use crate::programs::summary;
use crate::Measured;
use async_nats::jetstream;
use bytes::{BufMut, BytesMut};
use std::collections::VecDeque;
use std::future::IntoFuture as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../bridge/tests/support/nats_server.rs"]
mod nats_server;

/// The bridge's defaults (`ringfile-bridge out --help`), which both sides use.
pub const BATCH_BYTES: usize = 256 << 10;
/// The most messages one frame holds.
pub const BATCH_MESSAGES: usize = 16384;
/// Frames published and not yet acknowledged.
pub const IN_FLIGHT: usize = 64;
/// Room the bridge leaves in a NATS message for its headers.
const HEADER_ROOM: usize = 512;

/// A `nats-server -js` on a free loopback port, its store in a temporary directory; killed
/// and its store removed on drop.
pub struct Server {
    child: Child,
    port: u16,
    store: PathBuf,
    runtime: tokio::runtime::Runtime,
    js: jetstream::Context,
    streams: u64,
}

impl Server {
    /// Starts one and connects to it; `Err` says why not (no `nats-server` on PATH...).
    pub fn start() -> Result<Server, String> {
        let port = nats_server::free_port()?;
        let store =
            std::env::temp_dir().join(format!("ringfile-bench-nats-{}", std::process::id()));
        let child = nats_server::start(port, &store)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("no tokio runtime: {e}"))?;
        let server = Server {
            child,
            port,
            store,
            js: runtime.block_on(async {
                async_nats::connect(format!("127.0.0.1:{port}"))
                    .await
                    .map(jetstream::new)
                    .map_err(|e| format!("cannot connect to nats-server: {e}"))
            })?,
            runtime,
            streams: 0,
        };
        Ok(server)
    }

    /// The server's address, as `--server` takes it.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A stream name and subject not used before in this run.
    fn fresh_stream(&mut self) -> (String, String) {
        self.streams += 1;
        (
            format!("BENCH{}", self.streams),
            format!("bench.{}", self.streams),
        )
    }

    /// Deletes a stream (its store goes with it), so that the runs do not fill the disk.
    fn delete(&self, stream: &str) {
        let _ = self.runtime.block_on(self.js.delete_stream(stream));
    }

    /// The baseline: `count` messages of `size` bytes published as described in the module
    /// documentation, on a new file-storage stream like the one `--create-stream` makes.
    /// With `reader`, a durable pull consumer in the same process reads them meanwhile (as
    /// `ringfile-bridge in` pulls: explicit acknowledgements, 64 frames a pull, each frame's
    /// messages counted from their lengths) and the figures are the reader's, from the first
    /// message it read to the last.
    pub fn publisher(&mut self, size: usize, count: u64, reader: bool) -> Measured {
        let (stream, subject) = self.fresh_stream();
        let name = stream.clone();
        let js = self.js.clone();
        let url = self.url();
        let measured = self.runtime.block_on(async move {
            js.create_stream(jetstream::stream::Config {
                name: stream.clone(),
                subjects: vec![subject.clone()],
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .expect("create the baseline's stream");
            let reading = match reader {
                // A connection of its own, as a reader on another host would have.
                true => {
                    let js = jetstream::new(
                        async_nats::connect(&url).await.expect("connect the reader"),
                    );
                    let stream = stream.clone();
                    Some(tokio::spawn(async move { read(&js, &stream, count).await }))
                }
                false => None,
            };
            let message = vec![crate::FILL; size];
            let per_frame = ((BATCH_BYTES - HEADER_ROOM) / (size + 4)).clamp(1, BATCH_MESSAGES);
            let mut in_flight = VecDeque::new();
            let mut first_ack = None;
            let mut sent = 0u64;
            while sent < count || !in_flight.is_empty() {
                if sent < count && in_flight.len() < IN_FLIGHT {
                    let n = per_frame.min((count - sent) as usize);
                    let mut frame = BytesMut::with_capacity(n * (size + 4));
                    for _ in 0..n {
                        frame.put_u32_le(size as u32);
                        frame.put_slice(&message);
                    }
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Nats-Msg-Id", format!("bench:{sent}").as_str());
                    let ack = js
                        .publish_with_headers(subject.clone(), headers, frame.freeze())
                        .await
                        .expect("publish");
                    in_flight.push_back(tokio::spawn(ack.into_future()));
                    sent += n as u64;
                    continue;
                }
                let ack = in_flight.pop_front().expect("a frame in flight");
                ack.await
                    .expect("the ack task")
                    .expect("an acknowledgement");
                first_ack.get_or_insert_with(Instant::now);
            }
            let elapsed = match reading {
                Some(task) => task.await.expect("the reading task"),
                None => first_ack.expect("acknowledged").elapsed(),
            };
            Measured {
                messages: count,
                bytes: count * size as u64,
                elapsed,
            }
        });
        self.delete(&name);
        measured
    }

    /// `ringfile-bridge out` publishing a ring that holds `count` messages of `size` bytes;
    /// with `far_capacity`, `ringfile-bridge in` and `consumer --verify` on a far ring of
    /// that capacity run with it (ring → NATS → ring), and the far consumer's figures are
    /// the result. `None` if the programs are not built beside this executable.
    pub fn bridge(
        &mut self,
        size: usize,
        count: u64,
        far_capacity: Option<u64>,
    ) -> Option<Measured> {
        let programs = Programs::find()?;
        let (stream, subject) = self.fresh_stream();
        let dir = PathBuf::from(format!(
            "/dev/shm/ringfile-bench-bridge-{}-{}",
            std::process::id(),
            self.streams
        ));
        std::fs::create_dir_all(&dir).expect("a directory in /dev/shm");
        let near = dir.join("near");
        let far = dir.join("far");
        // The near ring holds every message: the bridge, not the producer, is measured.
        let capacity = (crate::record_size(size) as u64 * count + (1 << 16))
            .next_power_of_two()
            .max(1 << 16);
        let status = Command::new(&programs.producer)
            .args(["--quiet", "--capacity", &capacity.to_string()])
            .args(["--size", &size.to_string(), "--gen", &count.to_string()])
            .arg(&near)
            .stderr(Stdio::null())
            .status()
            .expect("run the producer program");
        assert!(status.success(), "producer --gen failed");
        let nats = |direction: &str, ring: &Path| {
            let mut c = Command::new(&programs.bridge);
            c.arg(direction)
                .arg(ring)
                .args([
                    "--server",
                    &self.url(),
                    "--stream",
                    &stream,
                    "--subject",
                    &subject,
                ])
                .args(["--create-stream", "--quiet", "--json"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c
        };
        let far_side = far_capacity.map(|far_capacity| {
            let verifier = Command::new(&programs.consumer)
                .args(["--verify", "--quiet", "--json"])
                .arg(&far)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the consumer program");
            let inbound = nats("in", &far)
                .args(["--capacity", &far_capacity.to_string()])
                .spawn()
                .expect("start ringfile-bridge in");
            (verifier, inbound)
        });
        let out = nats("out", &near)
            .output()
            .expect("run ringfile-bridge out");
        let out_summary = summary("ringfile-bridge out", &out, false);
        let measured = match far_side {
            None => out_summary,
            Some((verifier, inbound)) => {
                let inbound = inbound
                    .wait_with_output()
                    .expect("wait for ringfile-bridge in");
                summary("ringfile-bridge in", &inbound, false);
                let verified = verifier.wait_with_output().expect("wait for the consumer");
                let m = summary("consumer --verify", &verified, true);
                assert_eq!(
                    m.messages, count,
                    "the far consumer did not get every message"
                );
                m
            }
        };
        let _ = std::fs::remove_dir_all(&dir);
        self.delete(&stream);
        Some(measured)
    }
}

/// Reads `count` messages from `stream` with a durable pull consumer: the time from the
/// first to the last.
async fn read(js: &jetstream::Context, stream: &str, count: u64) -> Duration {
    use futures_util::StreamExt as _;
    let consumer = js
        .get_stream(stream)
        .await
        .expect("the baseline's stream")
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("reader".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: 256,
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("create the baseline's reader");
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(64)
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .expect("pull from the baseline's stream");
    let (mut seen, mut first) = (0u64, None);
    while seen < count {
        let message = messages
            .next()
            .await
            .expect("the pull stream ended")
            .expect("a message");
        first.get_or_insert_with(Instant::now);
        let mut frame = &message.payload[..];
        while frame.len() >= 4 {
            let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
            frame = &frame[4 + len..];
            seen += 1;
        }
        tokio::spawn(async move { message.ack().await });
    }
    first.expect("read").elapsed()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// The programs, beside this executable (`target/release/`) if they were built.
struct Programs {
    producer: PathBuf,
    consumer: PathBuf,
    bridge: PathBuf,
}

impl Programs {
    fn find() -> Option<Programs> {
        Some(Programs {
            producer: crate::programs::program("producer")?,
            consumer: crate::programs::program("consumer")?,
            bridge: crate::programs::program("ringfile-bridge")?,
        })
    }
}
