//! Looking at a ring without taking part in it: how full it is, who is attached, whether the
//! stream is open, and the waiting messages themselves — for operators' tools.
//!
//! An [`Inspector`] opens the file read-only and maps it without write access: it takes no
//! role, writes nothing, and cannot disturb the producer or the consumer. What it reports is a
//! snapshot; the ring may change while (and after) it looks.

use crate::error::{Error, Result};
use crate::format::layout::{Header, CONSUMER_LOCK_BYTE, PRODUCER_LOCK_BYTE};
use crate::format::position::Position;
use crate::format::record::{decode, Decoded, Record};
use crate::store::file::{self, OpenFile};
use crate::store::region::Region;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};

/// A read-only view of a ring file, for operators' tools: it takes no role, writes nothing
/// (the file is opened and mapped read-only), and cannot disturb the producer or the
/// consumer. What it reports is a snapshot; the ring may change while (and after) it looks.
///
/// ```
/// # fn main() -> Result<(), ringfile::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("ring");
/// let ring = ringfile::Ring::create(&path, 4096)?;
/// let mut producer = ring.producer()?;
/// producer.send(b"one")?;
/// producer.send(b"two")?;
///
/// let inspector = ringfile::Inspector::open(&path)?;
/// let snapshot = inspector.snapshot()?;
/// assert_eq!((snapshot.messages, snapshot.payload_bytes), (2, 6));
/// assert!(snapshot.producer.live && !snapshot.consumer.live);
/// let mut seen = Vec::new();
/// inspector.peek(10, |item| {
///     if let ringfile::Peeked::Message { bytes, .. } = item {
///         seen.push(bytes.to_vec());
///     }
/// })?;
/// assert_eq!(seen, [b"one".to_vec(), b"two".to_vec()]);
/// // Nothing was consumed.
/// assert_eq!(&*ring.consumer()?.try_recv()?.unwrap(), b"one");
/// # Ok(()) }
/// ```
pub struct Inspector {
    file: File,
    region: Region,
    header: Header,
    name: PathBuf,
}

/// One role's holder, as the ring file and the role lock say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// The pid recorded by the last process that took the role (`None`: never taken). A
    /// process that can write the file can write any value here.
    pub pid: Option<u32>,
    /// Whether a live process holds the role now (from the role lock, not from the pid).
    pub live: bool,
}

/// The state of the stream in a ring.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamState {
    /// A live producer is attached.
    Open,
    /// The stream ended: its end marker is waiting to be read.
    Closed,
    /// The producer stopped on an error (its reason); the marker is waiting to be read.
    Aborted(String),
    /// The producer died (or left) without closing the stream.
    ProducerDied {
        /// Its pid, as recorded.
        pid: Option<u32>,
    },
    /// No producer is attached, and no end marker is waiting (a stream whose end was
    /// already read, a producer that detached without closing, or a ring never written).
    Idle,
}

/// What [`Inspector::snapshot`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Data capacity in bytes.
    pub capacity: u64,
    /// The largest message the ring carries.
    pub max_message_len: usize,
    /// The released head: the start of the first record not yet released by a consumer.
    pub head: u64,
    /// The published tail: the end of the last record the producer published.
    pub tail: u64,
    /// Messages published and not yet released (the consumer's lag, in messages).
    pub messages: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Messages published since the ring was created, by every producer (the file's counter:
    /// for rates, such as `ringfile watch`'s messages/s in; 0 for rings written by versions
    /// that did not count).
    pub published_messages: u64,
    /// The payload bytes of those messages (for rates: bytes/s in).
    pub published_bytes: u64,
    /// Messages released since the ring was created, by every consumer (for rates: messages/s
    /// out); on a ring with consumer slots, the messages below the gate (released by every
    /// name that holds the producer back): `published_messages` less those waiting.
    pub released_messages: u64,
    /// The payload bytes of those messages (for rates: bytes/s out): `published_bytes` less
    /// the payload waiting, exact while nothing moves (the file does not count them: see
    /// FORMAT.md, "Message counters").
    pub released_bytes: u64,
    /// The producer role.
    pub producer: Holder,
    /// The consumer role: on a ring with consumer slots, any of its consumers (live if one
    /// is; [`consumers`](Self::consumers) lists each).
    pub consumer: Holder,
    /// The stream.
    pub stream: StreamState,
    /// When the ring was created (ns since the Unix epoch; 0 if unknown).
    pub created_unix_ns: u64,
    /// The pid of the process that created it.
    pub creator_pid: u32,
    /// How many consumer slots the ring has (1: a ring of one consumer, format version 1).
    pub consumer_slots: u32,
    /// Every registered consumer, in slot order (for a ring of one consumer slot: the one
    /// consumer, `default`, always).
    pub consumers: Vec<ConsumerInfo>,
}

/// One registered consumer of a ring, as [`Inspector::snapshot`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerInfo {
    /// Its name (`default` for the unnamed consumer).
    pub name: String,
    /// Its holder: the pid its last holder recorded, and whether a live process holds it.
    pub holder: Holder,
    /// Whether it is lossy (never holds the producer back).
    pub lossy: bool,
    /// Whether the producer turned it lossy (its `max_lag` policy).
    pub turned_lossy: bool,
    /// Its released position: where it resumes.
    pub position: u64,
    /// Messages published after its position (its lag); `None` when its position is below
    /// the oldest message still in the ring (a lossy consumer the producer overtook).
    pub lag_messages: Option<u64>,
    /// Their payload bytes.
    pub lag_bytes: Option<u64>,
    /// The index of the message at its position: the messages published before it (for a
    /// ring of one consumer, the messages it released).
    pub released_messages: u64,
    /// Messages a lossy consumer was overtaken by (missed).
    pub missed: u64,
    /// When its last holder attached (ns since the Unix epoch; 0 for a ring of one slot).
    pub attached_unix_ns: u64,
    /// Its `retain` policy (ns; 0: none).
    pub retain_ns: u64,
    /// Its `max_lag` policy (bytes; 0: none).
    pub max_lag: u64,
}

impl Snapshot {
    /// Bytes of the ring in use (`tail - head`: records, padding and end marker included).
    #[must_use]
    pub fn used_bytes(&self) -> u64 {
        self.tail - self.head
    }

    /// How full the ring is, in percent of its capacity.
    #[must_use]
    pub fn fill_percent(&self) -> f64 {
        self.used_bytes() as f64 * 100.0 / self.capacity as f64
    }
}

/// One waiting record, as [`Inspector::peek`] hands it over.
#[derive(Debug)]
#[non_exhaustive]
pub enum Peeked<'a> {
    /// A message: its position in the stream, and a copy of its bytes, checked intact
    /// (the consumer had not released it when the copy was complete).
    Message {
        /// The record's position.
        position: u64,
        /// The message.
        bytes: &'a [u8],
    },
    /// The end marker of a closed stream.
    End,
    /// The end of a stream the producer stopped on an error, with its reason.
    Aborted(String),
}

/// What a [`Inspector::peek`] did besides handing messages over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeekSummary {
    /// Messages handed over.
    pub shown: usize,
    /// Messages released by the consumer while they were being copied, so possibly
    /// overwritten: skipped, never handed over torn.
    pub skipped: u64,
}

/// How many times a look restarts after the consumer moved under it, before giving up on
/// the walk (a consumer releasing faster than we can walk).
const RETRIES: usize = 100;

impl Inspector {
    /// Opens the ring at `path` read-only (read permission is enough) and checks its header.
    /// The same validation errors as [`Ring::open`](crate::Ring::open), except that a ring
    /// of another user is not refused: an inspector only reads.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if nothing is at `path` (or its directory does not exist),
    /// [`Error::PermissionDenied`] without read permission; a file that is not a valid ring:
    /// [`Error::NotRegularFile`], [`Error::TooShort`], [`Error::BadMagic`],
    /// [`Error::UnsupportedVersion`], [`Error::BadHeader`] (each naming what is wrong),
    /// [`Error::SizeMismatch`] (a file truncated or extended), [`Error::BadPositions`];
    /// [`Error::Io`] for any other failed system call, naming it.
    pub fn open(path: impl AsRef<Path>) -> Result<Inspector> {
        let path = path.as_ref();
        let OpenFile {
            file,
            region,
            header,
        } = file::open_read_only(path)?;
        Ok(Inspector {
            file,
            region,
            header,
            name: path.to_path_buf(),
        })
    }

    /// The file, for its metadata (owner, mode, file system).
    #[must_use]
    pub fn file(&self) -> &File {
        &self.file
    }

    /// What the ring holds and who is attached, now. Walks the waiting records to count
    /// them; [`Error::BadPositions`] or [`Error::Corrupt`] for a damaged ring.
    ///
    /// # Errors
    ///
    /// [`Error::BadPositions`] or [`Error::Corrupt`] for a damaged ring; [`Error::Overtaken`]
    /// if the consumer released records faster than they could be walked, several times over
    /// (try again); [`Error::Io`] if a role lock cannot be tested.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let (producer, consumer) = self.holders()?;
        let roles = &self.region.control().roles.0;
        let attached = crate::protocol::lifecycle::ProducerState::load(roles).attached();
        let views = crate::protocol::slots::views(&self.region);
        let mut walk = Walk {
            marks: if self.region.shape().fanout() {
                let mut marks: Vec<Mark> = views
                    .iter()
                    .map(|view| Mark {
                        at: view.released,
                        before: None,
                    })
                    .collect();
                marks.sort_by_key(|mark| mark.at);
                marks
            } else {
                Vec::new()
            },
            ..Walk::default()
        };
        let (head, tail) = self.walk(Copies::None, &mut walk, &mut |_| {})?;
        let control = self.region.control();
        let published = control.published.load();
        // Relaxed: statistics (written Relaxed, before the position they go with). With
        // consumer slots, what lies below the gate: published less what the walk counted.
        let released_messages = if self.region.shape().fanout() {
            published.messages.saturating_sub(walk.messages)
        } else {
            control.released_messages.load(Ordering::Relaxed)
        };
        let stream = if producer.live {
            StreamState::Open
        } else if attached {
            StreamState::ProducerDied { pid: producer.pid }
        } else {
            match walk.end.take() {
                Some(Ending::End) => StreamState::Closed,
                Some(Ending::Aborted(reason)) => StreamState::Aborted(reason),
                None => StreamState::Idle,
            }
        };
        Ok(Snapshot {
            capacity: self.header.capacity,
            max_message_len: self.header.max_message as usize,
            head: head.get(),
            tail: tail.get(),
            messages: walk.messages,
            payload_bytes: walk.payload_bytes,
            published_messages: published.messages,
            published_bytes: published.bytes,
            released_messages,
            released_bytes: published.bytes.saturating_sub(walk.payload_bytes),
            producer,
            consumer,
            stream,
            created_unix_ns: self.header.created_unix_ns,
            creator_pid: self.header.creator_pid,
            consumer_slots: self.region.shape().slots(),
            consumers: self.consumers(&views, &walk, head, consumer)?,
        })
    }

    /// The consumers of the snapshot: each slot's view with its lag, from the walk's marks.
    fn consumers(
        &self,
        views: &[crate::protocol::slots::SlotView],
        walk: &Walk,
        head: Position,
        consumer: Holder,
    ) -> Result<Vec<ConsumerInfo>> {
        if !self.region.shape().fanout() {
            return Ok(vec![ConsumerInfo {
                name: crate::protocol::slots::DEFAULT_NAME.to_string(),
                holder: consumer,
                lossy: false,
                turned_lossy: false,
                position: head.get(),
                lag_messages: Some(walk.messages),
                lag_bytes: Some(walk.payload_bytes),
                released_messages: self
                    .region
                    .control()
                    .released_messages
                    .load(Ordering::Relaxed),
                missed: 0,
                attached_unix_ns: 0,
                retain_ns: 0,
                max_lag: 0,
            }]);
        }
        views
            .iter()
            .map(|view| {
                let before = walk
                    .marks
                    .iter()
                    .find(|mark| mark.at == view.released)
                    .and_then(|mark| mark.before);
                let byte = crate::format::layout::slot_lock_byte(
                    crate::format::layout::FORMAT_VERSION,
                    view.index,
                );
                Ok(ConsumerInfo {
                    name: view.name.clone(),
                    holder: Holder {
                        pid: Some(view.pid).filter(|&pid| pid != 0),
                        live: self.is_locked(byte)?,
                    },
                    lossy: view.state.lossy(),
                    turned_lossy: view.state.demoted(),
                    position: view.released,
                    lag_messages: before.map(|(m, _)| walk.messages - m),
                    lag_bytes: before.map(|(_, b)| walk.payload_bytes - b),
                    released_messages: view.released_messages,
                    missed: view.missed,
                    attached_unix_ns: view.attached_unix_ns,
                    retain_ns: view.retain_ns,
                    max_lag: view.max_lag,
                })
            })
            .collect()
    }

    fn is_locked(&self, byte: u64) -> Result<bool> {
        crate::os::sys::ofd_is_locked(&self.file, byte).map_err(|error| Error::Io {
            path: self.name.clone(),
            op: "check a role lock",
            error,
        })
    }

    /// The producer and the consumer roles: who holds them (from the role locks, which this
    /// only tests, never takes) and the pids recorded.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a role lock cannot be tested (`fcntl` failed).
    pub fn holders(&self) -> Result<(Holder, Holder)> {
        let roles = &self.region.control().roles.0;
        let holder = |pid: &crate::os::sync::AtomicU32, byte| -> Result<Holder> {
            Ok(Holder {
                pid: match pid.load(Ordering::Acquire) {
                    0 => None,
                    pid => Some(pid),
                },
                live: self.is_locked(byte)?,
            })
        };
        let producer = holder(&roles.producer_pid, PRODUCER_LOCK_BYTE)?;
        if !self.region.shape().fanout() {
            return Ok((producer, holder(&roles.consumer_pid, CONSUMER_LOCK_BYTE)?));
        }
        // A ring with consumer slots: a consumer is attached if any slot's holder lives (the
        // first such; else the last holder of the first registered slot, for its pid).
        let mut consumer = Holder {
            pid: None,
            live: false,
        };
        for view in crate::protocol::slots::views(&self.region) {
            let byte = crate::format::layout::slot_lock_byte(
                crate::format::layout::FORMAT_VERSION,
                view.index,
            );
            let pid = Some(view.pid).filter(|&pid| pid != 0);
            if self.is_locked(byte)? {
                consumer = Holder { pid, live: true };
                break;
            }
            consumer.pid = consumer.pid.or(pid);
        }
        Ok((producer, consumer))
    }

    /// Hands up to `max` waiting messages to `f`, oldest first, without consuming them (and
    /// the end marker, if one is reached). Each is a copy, made with atomic loads and
    /// handed over only if the consumer had not released it when the copy was complete: a
    /// message the producer may have overwritten meanwhile is skipped (and counted), never
    /// handed over torn.
    ///
    /// # Errors
    ///
    /// As [`snapshot`](Self::snapshot).
    pub fn peek(&self, max: usize, mut f: impl FnMut(Peeked<'_>)) -> Result<PeekSummary> {
        let mut walk = Walk::default();
        self.walk(Copies::UpTo(max), &mut walk, &mut f)?;
        Ok(PeekSummary {
            shown: walk.messages as usize,
            skipped: walk.skipped,
        })
    }

    /// Walks the waiting records from the released head, counting them and handing copies to
    /// `f` as `copies` says. Restarts from the new head when the consumer releases records
    /// under the walk. Returns the head and tail walked.
    fn walk(
        &self,
        copies: Copies,
        walk: &mut Walk,
        f: &mut dyn FnMut(Peeked<'_>),
    ) -> Result<(Position, Position)> {
        let (copy, max) = match copies {
            Copies::None => (false, usize::MAX),
            Copies::UpTo(max) => (true, max),
        };
        let capacity = self.region.capacity();
        let mut buf = Vec::new();
        let head_now = || self.region.control().released_head.load(Ordering::Acquire);
        let (mut head, tail) = file::positions(&self.region, &self.name)?;
        let mut pos = head;
        let mut restarts = Restarts {
            name: &self.name,
            capacity: self.header.capacity,
            tail,
            done: 0,
        };
        while pos < tail && (walk.messages as usize) < max {
            walk.mark(pos.get());
            let word = self.region.read_word(pos);
            let decoded = decode(word, pos, tail, capacity, self.header.max_message);
            // A record is stable until the consumer releases it: if the head passed it, what
            // was read may be the producer's new bytes. Skip to the new head and go on.
            let moved = |at: Position| Some(head_now()).filter(|&h| h > at.get());
            match decoded {
                Ok(Decoded::Padding(next)) => pos = next,
                Ok(Decoded::Record(record, next)) => {
                    let ending = match record {
                        Record::Data {
                            payload_offset,
                            len,
                        } if copy => {
                            self.region.copy_out(payload_offset, len, &mut buf);
                            None
                        }
                        Record::Data { .. } => None,
                        Record::End => Some(Ending::End),
                        Record::Abort {
                            payload_offset,
                            len,
                        } => {
                            self.region.copy_out(payload_offset, len, &mut buf);
                            Some(Ending::Aborted(String::from_utf8_lossy(&buf).into_owned()))
                        }
                    };
                    // Orders the copy's loads before the head's: a head still at or below
                    // `pos` after the copy means the consumer had not released the record, so
                    // the producer had not begun to overwrite it (it writes only below a head
                    // it has seen).
                    fence(Ordering::Acquire);
                    if let Some(new_head) = moved(pos) {
                        walk.skipped += u64::from(matches!(record, Record::Data { .. }));
                        (head, pos) = restarts.at(new_head)?;
                        continue;
                    }
                    match (record, ending) {
                        (Record::Data { len, .. }, _) => {
                            walk.messages += 1;
                            walk.payload_bytes += len;
                            if copy {
                                f(Peeked::Message {
                                    position: pos.get(),
                                    bytes: &buf,
                                });
                            }
                        }
                        (_, Some(ending)) => {
                            if copy {
                                f(match &ending {
                                    Ending::End => Peeked::End,
                                    Ending::Aborted(reason) => Peeked::Aborted(reason.clone()),
                                });
                            }
                            walk.end = Some(ending);
                        }
                        (_, None) => {}
                    }
                    pos = next;
                }
                Err(reason) => match moved(pos) {
                    Some(new_head) => (head, pos) = restarts.at(new_head)?,
                    None => {
                        return Err(Error::Corrupt {
                            path: self.name.clone(),
                            position: pos.get(),
                            reason,
                        })
                    }
                },
            }
        }
        walk.mark(tail.get());
        Ok((head, tail))
    }
}

/// A consumer's position that a walk notes the counts at, for its lag.
#[derive(Debug)]
struct Mark {
    at: u64,
    /// Messages and payload bytes walked before `at`; `None` if the walk did not pass it.
    before: Option<(u64, u64)>,
}

/// A walk's restarts after the consumer released records under it.
struct Restarts<'a> {
    name: &'a Path,
    capacity: u64,
    /// The tail the walk first read: it goes no further.
    tail: Position,
    done: usize,
}

impl Restarts<'_> {
    /// Where the walk goes on, as (head, position): the new head (the records before it are
    /// gone), within the tail first read. [`Error::Overtaken`] after `RETRIES` restarts.
    fn at(&mut self, new_head: u64) -> Result<(Position, Position)> {
        if !new_head.is_multiple_of(8) {
            return Err(Error::BadPositions {
                path: self.name.to_path_buf(),
                head: new_head,
                tail: self.tail.get(),
                capacity: self.capacity,
            });
        }
        self.done += 1;
        if self.done > RETRIES {
            // A consumer releasing faster than we can walk: no snapshot.
            return Err(Error::Overtaken {
                path: self.name.to_path_buf(),
            });
        }
        // The lower of the new head and a position: a position.
        let at = Position::new(new_head.min(self.tail.get())).unwrap_or(self.tail);
        Ok((at, at))
    }
}

/// What a walk hands over.
#[derive(Clone, Copy, Debug)]
enum Copies {
    /// Nothing: it counts every waiting record.
    None,
    /// Copies of up to this many messages (and the end marker, if reached before).
    UpTo(usize),
}

/// How the waiting records end, if they do.
#[derive(Debug)]
enum Ending {
    End,
    Aborted(String),
}

/// What a walk counted.
#[derive(Debug, Default)]
struct Walk {
    messages: u64,
    payload_bytes: u64,
    skipped: u64,
    end: Option<Ending>,
    /// Consumers' positions, in order: the counts are noted as the walk reaches each.
    marks: Vec<Mark>,
    /// The first mark not reached yet.
    next_mark: usize,
}

impl Walk {
    /// The walk is at record position `pos` (or at its end): note the counts at every mark
    /// it has reached.
    fn mark(&mut self, pos: u64) {
        // Marks are sorted and the walk only goes forward: those below `pos` were passed
        // over (below the head, or between records: no lag to tell).
        while let Some(mark) = self.marks.get_mut(self.next_mark) {
            if mark.at > pos {
                break;
            }
            if mark.at == pos {
                mark.before = Some((self.messages, self.payload_bytes));
            }
            self.next_mark += 1;
        }
    }
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("path", &self.name)
            .field("capacity", &self.header.capacity)
            .finish()
    }
}
