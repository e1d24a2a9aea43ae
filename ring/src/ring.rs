//! [`Ring`]: an open ring file, and [`RingOptions`] to open or create one.

use crate::error::{Error, Result};
use crate::side::consumer::Consumer;
use crate::side::producer::Producer;
use crate::side::typed_sides::{TypedConsumer, TypedProducer};
use crate::store::file;
use crate::store::shared::Shared;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Data capacity of a ring created without an explicit one: 1 MiB.
pub const DEFAULT_CAPACITY: u64 = 1 << 20;
/// File mode of a new ring file unless [`RingOptions::mode`] says otherwise.
pub const DEFAULT_MODE: u32 = 0o600;

/// An open ring: a file (or memfd) mapped into this process.
///
/// A `Ring` hands out the two roles: one [`Producer`] and one [`Consumer`] across all
/// processes at any time. Both may live in the same process, in different threads.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), ringfile::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// let ring = ringfile::Ring::create(dir.path().join("ring"), 64 * 1024)?;
/// let mut producer = ring.producer()?;
/// let mut consumer = ring.consumer()?;
/// producer.try_send(b"hello")?;
/// assert_eq!(&*consumer.try_recv()?.unwrap(), b"hello");
/// # Ok(()) }
/// ```
///
/// `Send` and `Sync`: share one `Ring` between threads (in an `Arc`, say) or open the path
/// again; either way the roles are exclusive across all of them.
pub struct Ring {
    shared: Arc<Shared>,
}

impl Ring {
    /// Creates a new ring file at `path` with `capacity` bytes of data (a power of two from
    /// 64 bytes to 4 GiB), mode 0600. Fails with [`Error::AlreadyExists`] if anything exists
    /// at `path`. Use [`RingOptions`] to open or create, or to set the mode.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCapacity`] for a capacity that is not a power of two from 64 bytes to
    /// 4 GiB; [`Error::AlreadyExists`] if anything is at `path`; [`Error::NotFound`] if its
    /// directory does not exist; [`Error::PermissionDenied`] where this user may not create a
    /// file there; [`Error::NoSpace`] when the file system has no room for the ring (nothing
    /// is left behind); [`Error::Io`] for any other failed system call, naming it.
    pub fn create(path: impl AsRef<Path>, capacity: u64) -> Result<Ring> {
        RingOptions::new().capacity(capacity).create(path)
    }

    /// Opens and validates an existing ring file. A file that belongs to another user is
    /// refused ([`Error::OtherOwner`]; see [`RingOptions::allow_other_owner`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if nothing is at `path` (or its directory does not exist),
    /// [`Error::PermissionDenied`] without read and write permission; a file that is not a
    /// valid ring: [`Error::NotRegularFile`], [`Error::TooShort`], [`Error::BadMagic`],
    /// [`Error::UnsupportedVersion`], [`Error::BadHeader`] (each naming what is wrong),
    /// [`Error::SizeMismatch`] (a file truncated or extended), [`Error::BadPositions`];
    /// [`Error::OtherOwner`] for a file of another user; [`Error::Io`] for any other failed
    /// system call, naming it.
    pub fn open(path: impl AsRef<Path>) -> Result<Ring> {
        RingOptions::new().open(path)
    }

    /// Options to open or create a ring (the open-or-create builder).
    #[must_use]
    pub fn options() -> RingOptions {
        RingOptions::new()
    }

    /// Creates a ring in anonymous shared memory (`memfd_create`, mapped `MAP_SHARED`).
    ///
    /// It has no path: share it with a forked child (which inherits the mapping, so the
    /// `Ring` works there as is), or pass it to a program you start with
    /// [`Ring::pass_to`]. Its descriptor is close-on-exec, as every ring's is: no program
    /// started otherwise inherits it.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let mut producer = ring.producer()?;
    /// producer.try_send(b"in memory")?;
    /// assert_eq!(&*ring.consumer()?.try_recv()?.unwrap(), b"in memory");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCapacity`] for a capacity that is not a power of two from 64 bytes to
    /// 4 GiB; [`Error::NoSpace`] when memory for it cannot be had; [`Error::Io`] for any other
    /// failed system call, naming it.
    pub fn memfd(capacity: u64) -> Result<Ring> {
        RingOptions::new().capacity(capacity).memfd()
    }

    fn memfd_of(shape: crate::format::shape::Shape) -> Result<Ring> {
        let name = PathBuf::from("memfd:ringfile");
        let file = crate::os::sys::memfd("ringfile").map_err(|error| Error::Io {
            path: name.clone(),
            op: "memfd_create",
            error,
        })?;
        let opened = file::initialise(file, shape, &name)?;
        // Sealed at its size: no process can ever truncate it under a mapping (no SIGBUS).
        crate::os::sys::seal_size(&opened.file).map_err(|error| Error::Io {
            path: name.clone(),
            op: "seal the memfd's size",
            error,
        })?;
        Ok(Ring::from_shared(Shared::from_open(opened, name)))
    }

    /// Opens a ring from a descriptor (a memfd or ring file handed over by another process),
    /// validating it as [`Ring::open`] does — except for its owner: a descriptor is handed
    /// over on purpose, so whoever owns the file is trusted.
    ///
    /// # Errors
    ///
    /// [`Error::NotRegularFile`], [`Error::TooShort`], [`Error::BadMagic`],
    /// [`Error::UnsupportedVersion`], [`Error::BadHeader`], [`Error::SizeMismatch`] or
    /// [`Error::BadPositions`] for a descriptor that is not a valid ring; [`Error::Io`] for a
    /// failed system call, naming it (mapping one not open for reading and writing fails so).
    pub fn from_fd(fd: OwnedFd) -> Result<Ring> {
        use std::os::fd::AsRawFd;
        let name = PathBuf::from(format!("fd {}", fd.as_raw_fd()));
        let opened = file::validate(File::from(fd), &name)?;
        Ok(Ring::from_shared(Shared::from_open(opened, name)))
    }

    /// Lets the program `command` starts open this ring: its descriptor is inherited by that
    /// program only (ring descriptors are otherwise close-on-exec, so no other program this
    /// process starts gets it), and `var` is set in its environment to the descriptor's
    /// number. The program opens it with [`Ring::from_env`]`(var)`. Several rings can be
    /// passed to one command under different variables. Works for every ring, and is how a
    /// [`Ring::memfd`] ring, which has no path, reaches another program.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ring = ringfile::Ring::memfd(1 << 20)?;
    /// let mut child = std::process::Command::new("my-consumer");
    /// ring.pass_to(&mut child, "MY_RING")?;      // the child calls Ring::from_env("MY_RING")
    /// let mut child = child.spawn()?;
    /// let mut producer = ring.producer()?;
    /// producer.send(b"hello, child")?;
    /// producer.close()?;
    /// child.wait()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::BadHandoff`] for a ring without a descriptor; [`Error::Io`] if the descriptor
    /// cannot be duplicated for the child.
    #[cfg(not(loom))]
    pub fn pass_to(&self, command: &mut std::process::Command, var: &str) -> Result<()> {
        let file = self.shared.file.as_ref().ok_or_else(|| Error::BadHandoff {
            var: var.to_string(),
            reason: "this ring has no descriptor".to_string(),
        })?;
        crate::os::handoff::pass(file, command, var).map_err(|error| Error::Io {
            path: self.shared.name.clone(),
            op: "duplicate the descriptor for a child",
            error,
        })
    }

    /// Opens the ring a parent process passed to this program with [`Ring::pass_to`]: takes
    /// the descriptor whose number is in the environment variable `var`, and validates the
    /// ring as [`Ring::from_fd`] does. [`Error::BadHandoff`] if `var` is unset or names no
    /// open descriptor, or if the descriptor was already opened by this process.
    ///
    /// # Errors
    ///
    /// [`Error::BadHandoff`] if `var` is unset, not a descriptor number above 2, names a
    /// descriptor that is not open, or one this process already opened as a ring; then as
    /// [`Ring::from_fd`].
    #[cfg(not(loom))]
    pub fn from_env(var: &str) -> Result<Ring> {
        Ring::from_fd(crate::os::handoff::take(var)?)
    }

    /// Removes, from directory `dir`, the temporary files of ring creators that died before
    /// finishing (only on file systems without `O_TMPFILE`, where creation uses a temporary
    /// name; elsewhere there are none). A file is removed only once its creator is proven
    /// gone (its lock is free) and it is old enough. Returns the paths removed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `dir` cannot be listed or a leftover cannot be removed, naming it.
    pub fn remove_leftovers(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        file::remove_leftovers(dir).map_err(|error| Error::Io {
            path: dir.to_path_buf(),
            op: "remove leftover temporary files",
            error,
        })
    }

    /// A ring in heap memory with no file, for in-process model checking.
    #[cfg(all(test, loom))]
    pub(crate) fn heap(capacity: u64, slots: u32, barrier: crate::os::model::LoomConfig) -> Ring {
        let capacity =
            crate::format::position::Capacity::new(capacity).expect("a model's capacity");
        let shape = crate::format::shape::Shape::new(capacity, slots).expect("a model's slots");
        Ring::from_shared(Shared::new(
            crate::store::region::Region::heap(shape, barrier),
            None,
            PathBuf::from("heap"),
        ))
    }

    fn from_shared(shared: Arc<Shared>) -> Ring {
        Ring { shared }
    }

    /// Takes the producer role. Fails with [`Error::RoleTaken`] (naming the holder's pid)
    /// while another live producer holds it; a holder that died has released it.
    ///
    /// # Errors
    ///
    /// [`Error::RoleTaken`] while another producer holds the role (naming its pid, or saying it
    /// is this process); [`Error::BadPositions`] if the ring's positions are corrupt;
    /// [`Error::SizeMismatch`] if the file was truncated; [`Error::Io`] for any other failed
    /// system call, naming it.
    pub fn producer(&self) -> Result<Producer> {
        Producer::attach(Arc::clone(&self.shared))
    }

    /// Takes the consumer role. Fails with [`Error::RoleTaken`] (naming the holder's pid)
    /// while another live consumer holds it; a holder that died has released it.
    ///
    /// # Errors
    ///
    /// [`Error::RoleTaken`] while another consumer holds the role (naming its pid, or saying it
    /// is this process); [`Error::BadPositions`] if the ring's positions are corrupt;
    /// [`Error::SizeMismatch`] if the file was truncated; [`Error::Io`] for any other failed
    /// system call, naming it.
    pub fn consumer(&self) -> Result<Consumer> {
        self.consumer_with(&ConsumerOptions::new())
    }

    /// Takes the consumer slot of `name` on a ring with several consumer slots
    /// ([`RingOptions::consumers`]): every named consumer reads every message. A name is
    /// registered in the ring the first time it attaches, and its position is kept there:
    /// a consumer of that name killed and restarted resumes where it last released. A new
    /// name starts at the oldest message still in the ring (see
    /// [`ConsumerOptions::start`]). While registered, a name holds the producer back, even
    /// when no process holds it, until [`evict`](Self::evict)ed. `consumer_named("default")`
    /// is [`consumer`](Self::consumer).
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::options().capacity(4096).consumers(2).memfd()?;
    /// let mut archive = ring.consumer_named("archive")?;
    /// let mut live = ring.consumer_named("live")?;
    /// let mut producer = ring.producer()?;
    /// producer.send(b"tick")?;
    /// assert_eq!(&*archive.recv()?.unwrap(), b"tick");
    /// assert_eq!(&*live.recv()?.unwrap(), b"tick");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for a name that is empty, longer than 64 bytes or holds a control
    /// character; [`Error::NameTaken`] while a live consumer holds the name (naming its pid);
    /// [`Error::NoSlot`] on a ring of one consumer slot (only `default` there) or when every
    /// slot is registered to another name; otherwise as [`consumer`](Self::consumer).
    pub fn consumer_named(&self, name: &str) -> Result<Consumer> {
        self.consumer_with(&ConsumerOptions::new().name(name))
    }

    /// Takes a consumer slot as `options` say (its name, where a new name starts).
    ///
    /// # Errors
    ///
    /// As [`consumer_named`](Self::consumer_named).
    pub fn consumer_with(&self, options: &ConsumerOptions) -> Result<Consumer> {
        let join = crate::protocol::slots::Join {
            name: options
                .name
                .as_deref()
                .unwrap_or(crate::protocol::slots::DEFAULT_NAME),
            start: options.start,
            lossy: options.lossy,
            retain_ns: options.retain.map_or(0, |d| {
                u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
            }),
            max_lag: options.max_lag.unwrap_or(0),
        };
        if let Some(max_lag) = options.max_lag {
            let capacity = self.capacity();
            if max_lag == 0 || max_lag >= capacity {
                return Err(Error::InvalidMaxLag {
                    path: self.shared.name.clone(),
                    max_lag,
                    capacity,
                });
            }
        }
        Consumer::attach(Arc::clone(&self.shared), &join)
    }

    /// Removes the registration of the consumer `name` from a ring with consumer slots: its
    /// position stops holding the producer back, and its slot is free for another name. For
    /// a consumer that is gone for good (a registered name keeps its place, dead or not).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] if no consumer of that name is registered; [`Error::NameTaken`]
    /// while a live process holds it; [`Error::Io`] for a failed system call, naming it.
    pub fn evict(&self, name: &str) -> Result<()> {
        crate::protocol::slots::evict(&self.shared, name)
    }

    /// Takes the producer role for messages of one type `T`: each send is one `T`. Fails as
    /// [`producer`](Self::producer) does, and with [`Error::TooLarge`] if a `T` does not fit
    /// in one message of this ring. See [`TypedProducer`](crate::TypedProducer).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if a `T` is larger than the ring's largest message; otherwise as
    /// [`producer`](Self::producer).
    pub fn producer_of<T: bytemuck::NoUninit>(&self) -> Result<TypedProducer<T>> {
        TypedProducer::new(self.producer()?)
    }

    /// Takes the consumer role for messages of one type `T`, each read in place. Fails as
    /// [`consumer`](Self::consumer) does, and with [`Error::TooLarge`] if a `T` does not fit
    /// in one message of this ring. See [`TypedConsumer`](crate::TypedConsumer).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if a `T` is larger than the ring's largest message; otherwise as
    /// [`consumer`](Self::consumer).
    pub fn consumer_of<T: bytemuck::AnyBitPattern>(&self) -> Result<TypedConsumer<T>> {
        TypedConsumer::new(self.consumer()?)
    }

    /// Data capacity in bytes.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.shared.region.capacity().bytes()
    }

    /// The largest message this ring carries: `capacity / 2 - 8` bytes.
    #[must_use]
    pub fn max_message_len(&self) -> usize {
        self.shared.region.capacity().max_message() as usize
    }

    /// Total size of the ring file: the header plus the capacity.
    #[must_use]
    pub fn file_len(&self) -> u64 {
        self.shared.region.shape().file_len()
    }

    /// How many consumer slots the ring has: 1 for a ring of one consumer (format version
    /// 1), else the number it was created with (see [`RingOptions::consumers`]).
    #[must_use]
    pub fn consumers(&self) -> u32 {
        self.shared.region.shape().slots()
    }

    /// The path the ring was opened by (or a description, such as `memfd:ringfile`).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.shared.name
    }

    /// Flushes the whole ring to storage (`msync`), so that what was published survives a
    /// machine crash when the file is on a real disk. Needless for `/dev/shm`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `msync` fails (an I/O error of the file system holding the ring).
    pub fn sync(&self) -> Result<()> {
        self.shared.sync()
    }
}

impl AsFd for Ring {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.shared.file.as_ref().expect("file-backed ring").as_fd()
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("path", &self.shared.name)
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// How a consumer attaches to a ring with consumer slots: see [`Ring::consumer_with`].
///
/// ```
/// # fn main() -> Result<(), ringfile::Error> {
/// use ringfile::{ConsumerOptions, Start};
/// let ring = ringfile::Ring::options().capacity(4096).consumers(2).memfd()?;
/// let mut producer = ring.producer()?;
/// producer.send(b"old")?;
/// let mut late = ring.consumer_with(&ConsumerOptions::new().name("late").start(Start::Latest))?;
/// producer.send(b"new")?;
/// assert_eq!(&*late.recv()?.unwrap(), b"new");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ConsumerOptions {
    name: Option<String>,
    start: crate::protocol::slots::Start,
    lossy: bool,
    retain: Option<Duration>,
    max_lag: Option<u64>,
}

impl ConsumerOptions {
    /// The default consumer (`default`), lossless, starting at the oldest message.
    #[must_use]
    pub fn new() -> ConsumerOptions {
        ConsumerOptions::default()
    }

    /// The name to attach under (1 to 64 bytes of UTF-8, no control characters).
    #[must_use = "the options are returned, not changed in place"]
    pub fn name(mut self, name: &str) -> ConsumerOptions {
        self.name = Some(name.to_string());
        self
    }

    /// Where a name that is not registered yet starts: at the oldest message still in the
    /// ring ([`Start::Oldest`](crate::Start::Oldest), the default) or at the next one published. A registered name
    /// always resumes where it released.
    #[must_use = "the options are returned, not changed in place"]
    pub fn start(mut self, start: crate::protocol::slots::Start) -> ConsumerOptions {
        self.start = start;
        self
    }

    /// A lossy consumer never holds the producer back: when the producer overwrites what it
    /// had not read yet, it goes on from the oldest message still whole and counts what it
    /// missed ([`Consumer::missed`]). It receives copies, checked whole after the copy
    /// (never a torn or overwritten message). Default: lossless.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::options().capacity(4096).consumers(2).memfd()?;
    /// let mut producer = ring.producer()?;
    /// let options = ringfile::ConsumerOptions::new().name("dashboard").lossy(true);
    /// let mut dashboard = ring.consumer_with(&options)?;
    /// for n in 0u64..1000 {
    ///     producer.send_value(&n)?; // never waits for the dashboard
    /// }
    /// let first: u64 = dashboard.recv()?.expect("open").read_value()?;
    /// assert_eq!(first, dashboard.missed()); // what it missed, it knows
    /// # Ok(()) }
    /// ```
    #[must_use = "the options are returned, not changed in place"]
    pub fn lossy(mut self, lossy: bool) -> ConsumerOptions {
        self.lossy = lossy;
        self
    }

    /// The name's place is kept for `retain` after its holder is gone (died, or detached):
    /// then the producer evicts it, and it holds the producer back no more. Measured from
    /// when the producer first finds the name without a live holder, as it looks at the
    /// consumers (when its cached view says the ring is full, and while it waits for room).
    /// Default: kept until `ringfile evict`.
    #[must_use = "the options are returned, not changed in place"]
    pub fn retain(mut self, retain: Duration) -> ConsumerOptions {
        self.retain = Some(retain);
        self
    }

    /// A lossless consumer that falls more than `bytes` behind the published tail is turned
    /// lossy by the producer, which then stops waiting for it: from then on it behaves as a
    /// [`lossy`](Self::lossy) one ([`Consumer::is_lossy`] says so, [`Consumer::missed`]
    /// counts). Because the producer may overtake it at any moment, such a consumer receives
    /// copies, as a lossy one does. Between 1 and the capacity (exclusive).
    #[must_use = "the options are returned, not changed in place"]
    pub fn max_lag(mut self, bytes: u64) -> ConsumerOptions {
        self.max_lag = Some(bytes);
        self
    }
}

/// How to open or create a ring: the open-or-create builder.
///
/// ```
/// # fn main() -> Result<(), ringfile::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("ring");
/// // Either side may run first: whoever comes first creates the ring.
/// let a = ringfile::Ring::options().capacity(1 << 16).open_or_create(&path)?;
/// let b = ringfile::Ring::options().open_or_create(&path)?;
/// assert_eq!(b.capacity(), 1 << 16);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RingOptions {
    capacity: Option<u64>,
    consumers: Option<u32>,
    mode: u32,
    allow_other_owner: bool,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions::new()
    }
}

impl RingOptions {
    /// Defaults: capacity [`DEFAULT_CAPACITY`] when creating (any when opening), mode 0600.
    #[must_use]
    pub fn new() -> RingOptions {
        RingOptions {
            capacity: None,
            consumers: None,
            mode: DEFAULT_MODE,
            allow_other_owner: false,
        }
    }

    /// The data capacity: used when creating, and required of an existing ring when opening
    /// ([`Error::CapacityMismatch`] otherwise).
    #[must_use = "the options are returned, not changed in place"]
    pub fn capacity(mut self, capacity: u64) -> RingOptions {
        self.capacity = Some(capacity);
        self
    }

    /// How many consumer slots a new ring has (default 1): each slot lets one more consumer,
    /// under a name of its own, read every message (see
    /// [`Ring::consumer_named`]). Required of an existing ring when opening, like the
    /// capacity ([`Error::ConsumersMismatch`] otherwise). A ring with one slot is the
    /// single-consumer ring of format version 1; with 2 to 256 slots, format version 2.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::options().capacity(4096).consumers(3).memfd()?;
    /// assert_eq!(ring.consumers(), 3);
    /// # Ok(()) }
    /// ```
    #[must_use = "the options are returned, not changed in place"]
    pub fn consumers(mut self, consumers: u32) -> RingOptions {
        self.consumers = Some(consumers);
        self
    }

    /// The permission bits of a new file, exactly (the umask does not apply: they are set
    /// with `fchmod` before the file gets its name); default 0600. Read and write permission
    /// both let a process attach (either role needs both); 0660 lets the file's group attach,
    /// 0666 everyone. They must include 0600 (the creator needs read and write access to use
    /// the ring): creating fails with [`Error::InvalidMode`] otherwise.
    #[must_use = "the options are returned, not changed in place"]
    pub fn mode(mut self, mode: u32) -> RingOptions {
        self.mode = mode;
        self
    }

    /// Whether [`open`](Self::open) accepts a ring file that belongs to another user;
    /// default `false`: such a file is refused with [`Error::OtherOwner`].
    ///
    /// In a directory every user can write, such as `/dev/shm`, another local user can
    /// create a ring's path before its producer or consumer does (with mode 0666, say) and
    /// then read every message sent, or change them. Allow other owners only for rings
    /// shared between users on purpose (a ring created by a service account, read by an
    /// operator), ideally in a directory only those users can write.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("ring");
    /// # ringfile::Ring::create(&path, 4096)?;
    /// let ring = ringfile::Ring::options().allow_other_owner(true).open(&path)?;
    /// # Ok(()) }
    /// ```
    #[must_use = "the options are returned, not changed in place"]
    pub fn allow_other_owner(mut self, allow: bool) -> RingOptions {
        self.allow_other_owner = allow;
        self
    }

    /// Creates a new ring; fails with [`Error::AlreadyExists`] if the path exists.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCapacity`] for a capacity that is not a power of two from 64 bytes to
    /// 4 GiB; [`Error::InvalidMode`] for a mode without owner read and write, or with bits beyond
    /// 0777; [`Error::AlreadyExists`] if anything is at `path`; [`Error::NotFound`] if its
    /// directory does not exist; [`Error::PermissionDenied`] where this user may not create a
    /// file there; [`Error::NoSpace`] when the file system has no room for the ring (nothing is
    /// left behind); [`Error::Io`] for any other failed system call, naming it.
    pub fn create(&self, path: impl AsRef<Path>) -> Result<Ring> {
        let path = path.as_ref();
        let capacity = self.capacity.unwrap_or(DEFAULT_CAPACITY);
        let opened = file::create(path, capacity, self.consumers.unwrap_or(1), self.mode)?;
        Ok(Ring::from_shared(Shared::from_open(
            opened,
            path.to_path_buf(),
        )))
    }

    /// Opens an existing ring, checking its capacity if one was given, and that it belongs
    /// to this process's user (unless [`allow_other_owner`](Self::allow_other_owner)).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if nothing is at `path` (or its directory does not exist),
    /// [`Error::PermissionDenied`] without read and write permission; a file that is not a
    /// valid ring: [`Error::NotRegularFile`], [`Error::TooShort`], [`Error::BadMagic`],
    /// [`Error::UnsupportedVersion`], [`Error::BadHeader`] (each naming what is wrong),
    /// [`Error::SizeMismatch`] (a file truncated or extended), [`Error::BadPositions`];
    /// [`Error::OtherOwner`] for a file of another user, unless allowed;
    /// [`Error::CapacityMismatch`] if a capacity was asked for and the ring has another;
    /// [`Error::Io`] for any other failed system call, naming it.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Ring> {
        let path = path.as_ref();
        if let Some(capacity) = self.capacity {
            let capacity = file::check_capacity(capacity)?;
            if let Some(consumers) = self.consumers {
                file::check_shape(capacity, consumers)?;
            }
        }
        let opened = file::open(path, self.allow_other_owner)?;
        if let Some(requested) = self.capacity {
            if requested != opened.header.capacity {
                return Err(Error::CapacityMismatch {
                    path: path.to_path_buf(),
                    requested,
                    actual: opened.header.capacity,
                });
            }
        }
        if let Some(requested) = self.consumers {
            if requested != opened.header.slots() {
                return Err(Error::ConsumersMismatch {
                    path: path.to_path_buf(),
                    requested,
                    actual: opened.header.slots(),
                });
            }
        }
        Ok(Ring::from_shared(Shared::from_open(
            opened,
            path.to_path_buf(),
        )))
    }

    /// Creates a ring in an anonymous memory file (a memfd) with these options, as
    /// [`Ring::memfd`] does.
    ///
    /// # Errors
    ///
    /// As [`Ring::memfd`]; [`Error::InvalidConsumers`] for a number of consumer slots
    /// outside 1 ..= 256.
    pub fn memfd(&self) -> Result<Ring> {
        let capacity = file::check_capacity(self.capacity.unwrap_or(DEFAULT_CAPACITY))?;
        Ring::memfd_of(file::check_shape(capacity, self.consumers.unwrap_or(1))?)
    }

    /// Opens the ring at `path`, creating it first if there is none. When several processes
    /// race to create it, one wins and all end up on the same, fully initialised ring.
    ///
    /// If the path keeps vanishing between the two steps (another process deleting it as
    /// fast as it is created), this gives up after a bounded number of rounds with
    /// [`Error::AlreadyExists`] rather than spinning forever.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open); [`Error::CapacityMismatch`] if the
    /// ring that exists has another capacity than the one asked for.
    pub fn open_or_create(&self, path: impl AsRef<Path>) -> Result<Ring> {
        /// Each lost round needs another process to delete the file in between: a few
        /// rounds already mean a pathological race.
        const ROUNDS: usize = 64;
        let path = path.as_ref();
        for _ in 0..ROUNDS {
            match self.open(path) {
                Err(Error::NotFound { .. }) => {}
                other => return other,
            }
            match self.create(path) {
                // Lost a race (or the file came back): open what the winner made.
                Err(Error::AlreadyExists { .. }) => {}
                other => return other,
            }
        }
        Err(Error::AlreadyExists {
            path: path.to_path_buf(),
        })
    }
}
