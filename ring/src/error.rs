//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The two exclusive roles on a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The one process that writes messages.
    Producer,
    /// The one process that reads messages.
    Consumer,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        })
    }
}

fn holder(pid: Option<u32>, by_this_process: bool) -> String {
    match (pid, by_this_process) {
        (_, true) => "this process (another Consumer of the same name)".to_string(),
        (Some(pid), false) => format!("pid {pid}"),
        (None, false) => "another process".to_string(),
    }
}

/// Everything that can go wrong, one variant per failure a caller can act on.
///
/// Every message is one line that names the ring (its path) and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    ///
    /// The OS error is part of the message (it is not also returned by
    /// [`source`](std::error::Error::source), so a report that walks the chain shows it once);
    /// [`Error::io_error`] gives it to code that needs its kind.
    #[error("{}: {op}: {error}", path.display())]
    Io {
        /// The ring file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        error: io::Error,
    },
    /// This user may not read and write the ring file (its mode, its owner, or a read-only
    /// file system). Both roles need read and write access: the producer writes messages,
    /// the consumer writes the position it has read up to.
    #[error("{}: {error}: both the producer and the consumer need read and write access to a ring file; {advice}", path.display())]
    PermissionDenied {
        /// The path.
        path: PathBuf,
        /// The OS error (EACCES, EPERM, EROFS).
        error: io::Error,
        /// What to do about it.
        advice: &'static str,
    },
    /// [`Ring::open`](crate::Ring::open) found no file at the path.
    #[error("{}: no such ring file", path.display())]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },
    /// [`Ring::create`](crate::Ring::create) found a file at the path already.
    #[error("{}: a file already exists at this path", path.display())]
    AlreadyExists {
        /// The path that was created.
        path: PathBuf,
    },
    /// The path names something other than a regular file (a directory, a FIFO, a device...).
    #[error("{}: not a regular file (it is a {kind})", path.display())]
    NotRegularFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is shorter than a ring header.
    #[error("{}: not a ringfile ring file: only {len} bytes long, shorter than the {min}-byte header", path.display())]
    TooShort {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The smallest possible ring file.
        min: u64,
    },
    /// The file does not start with the ringfile magic.
    #[error("{}: not a ringfile ring file (bad magic {found:02x?})", path.display())]
    BadMagic {
        /// The path.
        path: PathBuf,
        /// The first eight bytes found.
        found: [u8; 8],
    },
    /// The file was written by an incompatible version of the format.
    #[error("{}: ring format version {found} is not supported (this build reads versions 1 to {supported})", path.display())]
    UnsupportedVersion {
        /// The path.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Version this crate reads.
        supported: u32,
    },
    /// A header field is inconsistent.
    #[error("{}: corrupt ring header: {reason}", path.display())]
    BadHeader {
        /// The path.
        path: PathBuf,
        /// Which field and why.
        reason: String,
    },
    /// A capacity that is not a power of two between the limits.
    #[error("capacity {capacity} is invalid: it must be a power of two from {min} to {max} bytes")]
    InvalidCapacity {
        /// The capacity asked for.
        capacity: u64,
        /// Smallest capacity.
        min: u64,
        /// Largest capacity.
        max: u64,
    },
    /// A number of consumer slots a ring cannot have.
    #[error("{consumers} consumer slots are invalid: a ring has 1 to {max}")]
    InvalidConsumers {
        /// The number asked for.
        consumers: u32,
        /// The most a ring may have.
        max: u32,
    },
    /// An existing ring has another number of consumer slots than the one explicitly asked
    /// for.
    #[error("{}: the existing ring has {actual} consumer slot{}, not the {requested} asked for: open it without asking for a number, or remove it to create a new one", path.display(), if *actual == 1 { "" } else { "s" })]
    ConsumersMismatch {
        /// The path.
        path: PathBuf,
        /// Slots asked for.
        requested: u32,
        /// Slots of the ring in the file.
        actual: u32,
    },
    /// A consumer's `max_lag` policy that cannot apply: 0, or not below the ring's capacity
    /// (a consumer never lags more than the capacity).
    #[error("{}: max lag {max_lag} bytes is invalid: it must be from 1 to less than the ring's capacity ({capacity} bytes)", path.display())]
    InvalidMaxLag {
        /// The path.
        path: PathBuf,
        /// The lag asked for.
        max_lag: u64,
        /// The ring's capacity.
        capacity: u64,
    },
    /// A consumer name that cannot be used: empty, longer than 64 bytes, or with a control
    /// character.
    #[error("consumer name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The name asked for.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A named consumer on a ring that has no slot for it: a ring with one consumer slot
    /// (format version 1) has only the consumer `default`, and a ring whose slots are all
    /// registered to other names has none free.
    #[error("{}: no consumer slot for {name:?}: {reason}", path.display())]
    NoSlot {
        /// The path.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// Why, and what to do.
        reason: String,
    },
    /// `evict` named a consumer that the ring has not registered.
    #[error("{}: no consumer named {name:?} is registered", path.display())]
    UnknownName {
        /// The path.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// A named consumer is held by a live process (another consumer of that name).
    #[error("{}: the consumer {name:?} is held by {}", path.display(), holder(*pid, *by_this_process))]
    NameTaken {
        /// The path.
        path: PathBuf,
        /// The name.
        name: String,
        /// Pid recorded by the holder, when known.
        pid: Option<u32>,
        /// Whether the holder is this process.
        by_this_process: bool,
    },
    /// The file's length does not match the sizes its header gives (for example, truncated).
    #[error("{}: file is {actual} bytes but its header describes {expected} bytes (truncated or extended?)", path.display())]
    SizeMismatch {
        /// The path.
        path: PathBuf,
        /// Header size plus capacity.
        expected: u64,
        /// Real file length.
        actual: u64,
    },
    /// An existing ring has another capacity than the one explicitly asked for.
    #[error("{}: the existing ring has a capacity of {}, not the {} asked for: open it without asking for a capacity, or remove it to create a new one", path.display(), crate::units::Size(*actual), crate::units::Size(*requested))]
    CapacityMismatch {
        /// The path.
        path: PathBuf,
        /// Capacity asked for.
        requested: u64,
        /// Capacity of the ring in the file.
        actual: u64,
    },
    /// The head and tail positions in the file contradict each other.
    #[error("{}: corrupt ring positions: head {head}, tail {tail}, capacity {capacity}", path.display())]
    BadPositions {
        /// The path.
        path: PathBuf,
        /// Released head found.
        head: u64,
        /// Published tail found.
        tail: u64,
        /// Capacity.
        capacity: u64,
    },
    /// The file system has no room for a ring of this size.
    ///
    /// The OS error is part of the message, not a [`source`](std::error::Error::source).
    #[error("{}: no space for a ring file of {}: {error}", path.display(), crate::units::Size(*needed))]
    NoSpace {
        /// The path.
        path: PathBuf,
        /// Bytes needed.
        needed: u64,
        /// The OS error (ENOSPC, EFBIG...).
        error: io::Error,
    },
    /// Another live holder has the role: another process, or this one (`by_this_process`:
    /// a second producer of one ring in one process, say).
    #[error("{}", role_taken(path, *role, *pid, *by_this_process))]
    RoleTaken {
        /// The path.
        path: PathBuf,
        /// The role asked for.
        role: Role,
        /// Pid recorded by the holder, when known.
        pid: Option<u32>,
        /// Whether the holder is this process (another `Producer` or `Consumer` of it).
        by_this_process: bool,
    },
    /// `try_send`/`try_claim`: no room for the message now. (An empty ring is no error:
    /// `try_recv` returns `Ok(None)`.)
    #[error("ring is full")]
    Full,
    /// A timed wait ran out.
    #[error("timed out")]
    Timeout,
    /// An inspection could not take a consistent look: the consumer released records
    /// faster than they could be walked. Trying again may succeed.
    #[error("{}: the ring changed faster than it could be inspected (a consumer releasing as it was walked); try again", path.display())]
    Overtaken {
        /// The path.
        path: PathBuf,
    },
    /// The message is longer than the ring's maximum.
    #[error("message of {len} bytes exceeds the ring's maximum message size of {max} bytes")]
    TooLarge {
        /// Length asked for.
        len: usize,
        /// [`Ring::max_message_len`](crate::Ring::max_message_len).
        max: usize,
    },
    /// A record in the data region is invalid; nothing past it can be trusted.
    #[error("{}: corrupt record at position {position}: {reason}", path.display())]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// Position of the bad record.
        position: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The producer stopped on an error ([`Producer::abort`](crate::Producer::abort)): the
    /// stream ended there, and every message before it has been received. Reported once;
    /// receiving again waits for the next producer.
    #[error("{}: the producer stopped on an error: {}", path.display(), shown_reason(reason))]
    StreamAborted {
        /// The path.
        path: PathBuf,
        /// The producer's reason, as much of it as fitted in the ring (empty if it gave none
        /// or the ring had no room for any of it; the error's text then says "no reason
        /// recorded"). Bytes that are not UTF-8 are replaced with U+FFFD.
        reason: String,
    },
    /// A file mode that would create a ring its creator cannot use.
    #[error("file mode {mode:04o} is invalid for a ring file: the owner needs read and write permission (0600), and only permission bits (at most 0777) are allowed")]
    InvalidMode {
        /// The mode asked for.
        mode: u32,
    },
    /// This producer or consumer was inherited through `fork`: only the process that took a
    /// role may use it (a forked child must take its own on another ring, or exec).
    #[error("{}: this {role} was inherited through fork; only the process that took the role may use it", path.display())]
    Inherited {
        /// The path.
        path: PathBuf,
        /// The role.
        role: Role,
    },
    /// The ring file belongs to another user. In a shared directory such as `/dev/shm`,
    /// another local user could have created the path first to read or alter the stream, so
    /// such a ring is refused unless allowed explicitly
    /// ([`RingOptions::allow_other_owner`](crate::RingOptions::allow_other_owner)).
    #[error("{}: the ring file belongs to uid {owner}, not to this user (uid {uid}); another user may have created it to read or alter the stream: remove it, or allow other owners explicitly (allow_other_owner, --allow-other-owner)", path.display())]
    OtherOwner {
        /// The path.
        path: PathBuf,
        /// The file's owner.
        owner: u32,
        /// This process's effective uid.
        uid: u32,
    },
    /// A typed view ([`Message::value`](crate::Message::value) and the like) of a message whose
    /// length does not fit the type.
    #[error("{method}: message of {len} bytes is not {}", expected_what(type_name, *size, *slice))]
    WrongLength {
        /// The call that asked for the type, such as `Message::value` or
        /// `TypedConsumer::recv`.
        method: &'static str,
        /// The message's length.
        len: usize,
        /// The type asked for.
        type_name: &'static str,
        /// `size_of` that type.
        size: usize,
        /// Whether a slice of the type was asked for (any multiple of `size` fits).
        slice: bool,
    },
    /// [`Ring::from_env`](crate::Ring::from_env) found no ring handed over in the variable.
    #[error("{var}: {reason}")]
    BadHandoff {
        /// The environment variable.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The producer died (its role lock was released) without closing the stream; every message
    /// it published has been received. Reported once per dead producer: receiving again waits
    /// for the next producer.
    #[error("{}: the producer{} died without closing the stream", path.display(), pid_suffix(*pid))]
    ProducerDied {
        /// The path.
        path: PathBuf,
        /// Pid of the dead producer, when known.
        pid: Option<u32>,
    },
}

fn expected_what(type_name: &str, size: usize, slice: bool) -> String {
    if slice {
        format!("a whole number of {type_name} ({size} bytes each)")
    } else {
        format!("a {type_name} ({size} bytes)")
    }
}

impl Error {
    /// The operating-system error behind this error, if there is one ([`Error::Io`],
    /// [`Error::NoSpace`], [`Error::PermissionDenied`]).
    #[must_use]
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { error, .. }
            | Error::NoSpace { error, .. }
            | Error::PermissionDenied { error, .. } => Some(error),
            _ => None,
        }
    }
}

fn role_taken(path: &std::path::Path, role: Role, pid: Option<u32>, here: bool) -> String {
    if here {
        format!(
            "{}: the {role} role is already held by this process (one {role} per ring at a time: use or drop that one)",
            path.display()
        )
    } else {
        format!(
            "{}: the {role} role is held by another live process{}",
            path.display(),
            pid_suffix(pid)
        )
    }
}

fn pid_suffix(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How an abort's reason reads in a message: never empty.
pub(crate) fn shown_reason(reason: &str) -> &str {
    if reason.is_empty() {
        "no reason recorded"
    } else {
        reason
    }
}
