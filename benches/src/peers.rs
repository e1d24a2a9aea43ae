//! The two peers users weigh ringfile against most, as cross-process transports: iceoryx2
//! (zero-copy shared-memory publish-subscribe) and ipc-channel (Servo's channels over Unix
//! sockets), for throughput and for the round trip.
//!
//! Both are set up to be lossless, as ringfile is. iceoryx2: `ipc::Service`
//! publish-subscribe of `[u8]`, safe overflow off, a publisher that retries until delivered
//! (`BackpressureStrategy::RetryUntilDelivered`), and a subscriber buffer holding as many
//! messages as a ringfile ring of the same capacity. Every message carries its sequence
//! number in its first 8 bytes, and the receiver checks each one's length and number: a lost,
//! duplicated or reordered message fails the run. An empty message ends the stream.

use crate::Stop;
use iceoryx2::prelude::*;
use ipc_channel::ipc::{
    bytes_channel, channel, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcReceiver,
    IpcSender,
};
use std::time::Instant;

/// The subscriber buffer that holds as many `size`-byte messages as a ringfile ring of
/// `capacity` bytes (8-byte record header, payload padded to 8).
pub fn iceoryx2_buffer(size: usize, capacity: u64) -> usize {
    (capacity / (8 + size.next_multiple_of(8)) as u64).max(1) as usize
}

/// Stamps message `seq`.
fn stamp(msg: &mut [u8], seq: u64) {
    msg[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Checks that `msg` is message `seq` of `size` bytes.
fn check(msg: &[u8], size: usize, seq: u64) {
    assert_eq!(msg.len(), size, "message {seq}: wrong length");
    let got = u64::from_le_bytes(msg[..8].try_into().unwrap());
    assert_eq!(got, seq, "lost, duplicated or reordered message");
}

pub(crate) type IoxPublisher = iceoryx2::port::publisher::Publisher<ipc::Service, [u8], ()>;
pub(crate) type IoxSubscriber = iceoryx2::port::subscriber::Subscriber<ipc::Service, [u8], ()>;
type IoxService =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;

/// An iceoryx2 node, for one process.
pub struct Iceoryx2 {
    node: Node<ipc::Service>,
}

impl Iceoryx2 {
    /// A node of this process.
    pub fn node() -> Iceoryx2 {
        // Its defaults (no config file) are what we measure; say nothing about them.
        set_log_level(LogLevel::Error);
        Iceoryx2 {
            node: NodeBuilder::new()
                .create::<ipc::Service>()
                .expect("create an iceoryx2 node"),
        }
    }

    /// Creates (`create`) or opens the lossless service `name` carrying up to `size`-byte
    /// messages, `buffer` of them in flight, for up to `subscribers` subscribers.
    fn service(&self, name: &str, buffer: usize, subscribers: usize, create: bool) -> IoxService {
        let name: ServiceName = name.try_into().expect("a valid iceoryx2 service name");
        let builder = self
            .node
            .service_builder(&name)
            .publish_subscribe::<[u8]>()
            .enable_safe_overflow(false)
            .subscriber_max_buffer_size(buffer)
            .history_size(0)
            .max_publishers(1)
            .max_subscribers(subscribers);
        if create {
            builder.create().expect("create the iceoryx2 service")
        } else {
            builder.open().expect("open the iceoryx2 service")
        }
    }

    /// A lossless publisher of up to `size`-byte messages on `name` (creating the service,
    /// for one subscriber).
    pub fn publisher(&self, name: &str, size: usize, buffer: usize, create: bool) -> IoxPublisher {
        self.publisher_for(name, size, buffer, 1, create)
    }

    /// [`publisher`](Self::publisher) on a service for up to `subscribers` subscribers.
    pub fn publisher_for(
        &self,
        name: &str,
        size: usize,
        buffer: usize,
        subscribers: usize,
        create: bool,
    ) -> IoxPublisher {
        self.service(name, buffer, subscribers, create)
            .publisher_builder()
            .initial_max_slice_len(size)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .expect("create an iceoryx2 publisher")
    }

    /// A subscriber on `name` with a buffer of `buffer` messages (a service for one).
    pub fn subscriber(&self, name: &str, buffer: usize, create: bool) -> IoxSubscriber {
        self.subscriber_for(name, buffer, 1, create)
    }

    /// [`subscriber`](Self::subscriber) on a service for up to `subscribers` subscribers.
    pub fn subscriber_for(
        &self,
        name: &str,
        buffer: usize,
        subscribers: usize,
        create: bool,
    ) -> IoxSubscriber {
        self.service(name, buffer, subscribers, create)
            .subscriber_builder()
            .buffer_size(buffer)
            .create()
            .expect("create an iceoryx2 subscriber")
    }
}

/// Sends `msg` (stamped with `seq`) through an iceoryx2 publisher.
pub fn iceoryx2_publish(publisher: &IoxPublisher, msg: &[u8]) {
    let sample = publisher
        .loan_slice_uninit(msg.len())
        .expect("loan an iceoryx2 sample");
    sample
        .write_from_slice(msg)
        .send()
        .expect("send an iceoryx2 sample");
}

/// Busy-polls `subscriber` for the next message and hands it to `f`.
pub fn iceoryx2_take<T>(subscriber: &IoxSubscriber, f: impl FnOnce(&[u8]) -> T) -> T {
    loop {
        if let Some(sample) = subscriber.receive().expect("receive an iceoryx2 sample") {
            return f(sample.payload());
        }
        std::hint::spin_loop();
    }
}

/// The sending side of a throughput run: stamped messages until `stop`, then the end.
/// Returns how many were sent.
pub fn iceoryx2_send(publisher: &IoxPublisher, size: usize, stop: Stop) -> u64 {
    let mut msg = vec![0x5au8; size];
    let (mut sent, start) = (0u64, Instant::now());
    while stop.more(sent, start) {
        stamp(&mut msg, sent);
        iceoryx2_publish(publisher, &msg);
        sent += 1;
    }
    iceoryx2_publish(publisher, &[]);
    sent
}

/// The receiving side of a throughput run: returns the count and when the first arrived.
pub fn iceoryx2_receive(subscriber: &IoxSubscriber, size: usize) -> (u64, Option<Instant>) {
    let (mut messages, mut first) = (0u64, None);
    loop {
        let more = iceoryx2_take(subscriber, |msg| {
            if msg.is_empty() {
                return false;
            }
            first.get_or_insert_with(Instant::now);
            check(msg, size, messages);
            true
        });
        if !more {
            return (messages, first);
        }
        messages += 1;
    }
}

/// ipc-channel, sending side: a one-shot server the receiving process connects to, handing
/// over the sender of its byte channel (and one for a reply channel, for round trips).
pub struct IpcChannelServer {
    server: IpcOneShotServer<(IpcBytesSender, IpcSender<IpcBytesSender>)>,
    /// The name the receiving process connects to.
    pub name: String,
}

impl IpcChannelServer {
    /// A new server.
    pub fn new() -> IpcChannelServer {
        let (server, name) = IpcOneShotServer::new().expect("create an ipc-channel server");
        IpcChannelServer { server, name }
    }

    /// Waits for the receiving process: the sender of its channel, and one through which to
    /// give it a channel back.
    pub fn accept(self) -> (IpcBytesSender, IpcSender<IpcBytesSender>) {
        self.server.accept().expect("accept the ipc-channel peer").1
    }
}

impl Default for IpcChannelServer {
    fn default() -> Self {
        IpcChannelServer::new()
    }
}

/// ipc-channel, receiving side: connects to the server `name` and hands it a channel to
/// send to. Returns that channel's receiver, and the receiver of the channel back.
pub fn ipc_channel_connect(name: &str) -> (IpcBytesReceiver, IpcReceiver<IpcBytesSender>) {
    let (tx, rx) = bytes_channel().expect("create an ipc-channel byte channel");
    let (back_tx, back_rx) = channel().expect("create an ipc-channel channel");
    IpcSender::connect(name.to_string())
        .expect("connect to the ipc-channel server")
        .send((tx, back_tx))
        .expect("hand over the ipc-channel sender");
    (rx, back_rx)
}

/// The sending side of an ipc-channel throughput run. Returns how many were sent.
pub fn ipc_channel_send(tx: &IpcBytesSender, size: usize, stop: Stop) -> u64 {
    let mut msg = vec![0x5au8; size];
    let (mut sent, start) = (0u64, Instant::now());
    while stop.more(sent, start) {
        stamp(&mut msg, sent);
        tx.send(&msg).expect("ipc-channel send");
        sent += 1;
    }
    tx.send(&[]).expect("ipc-channel send");
    sent
}

/// The receiving side of an ipc-channel throughput run.
pub fn ipc_channel_receive(rx: &IpcBytesReceiver, size: usize) -> (u64, Option<Instant>) {
    let (mut messages, mut first) = (0u64, None);
    loop {
        let msg = rx.recv().expect("ipc-channel receive");
        if msg.is_empty() {
            return (messages, first);
        }
        first.get_or_insert_with(Instant::now);
        check(&msg, size, messages);
        messages += 1;
    }
}
