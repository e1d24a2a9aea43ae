//! `ringfile._ringfile`: the Python classes over the Rust library (never a second
//! implementation of the protocol). The package `ringfile` (python/ringfile) re-exports them
//! with the exceptions and the type stubs.
//!
//! Waiting: every blocking call releases the GIL (`Python::detach`) and waits in slices of
//! [`SLICE`], re-taking the GIL between slices only to run Python's signal handlers, so
//! Ctrl-C raises `KeyboardInterrupt` within a slice. Threads: each side lives in a mutex
//! that is only ever locked with the GIL released, so two Python threads using one side
//! take turns (and never deadlock against the GIL); a call made while another thread waits
//! on the same side waits its turn.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyMemoryView};
use ringfile::units::Size;
use std::ffi::c_int;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a wait runs with the GIL released before it looks for a signal.
const SLICE: Duration = Duration::from_millis(50);

/// Raises the package's exception for a library error (see `ringfile/_errors.py`: one class
/// per failure a caller can act on, all under `RingfileError`), with the library's one-line
/// message and, where the error has them, `path`, `pid` and `reason` attributes.
fn raise(py: Python<'_>, error: ringfile::Error) -> PyErr {
    use ringfile::Error as E;
    let (class, path, pid, reason): (&str, Option<&PathBuf>, Option<u32>, Option<&str>) =
        match &error {
            E::Full => ("RingFull", None, None, None),
            E::Timeout => ("Timeout", None, None, None),
            E::ProducerDied { path, pid } => ("ProducerDied", Some(path), *pid, None),
            E::StreamAborted { path, reason } => {
                ("StreamAborted", Some(path), None, Some(reason.as_str()))
            }
            E::RoleTaken { path, pid, .. } | E::NameTaken { path, pid, .. } => {
                ("RoleHeld", Some(path), *pid, None)
            }
            E::NotFound { path } => ("RingNotFound", Some(path), None, None),
            E::AlreadyExists { path } => ("RingExists", Some(path), None, None),
            E::PermissionDenied { path, .. } | E::OtherOwner { path, .. } => {
                ("PermissionDenied", Some(path), None, None)
            }
            E::TooShort { path, .. }
            | E::NotRegularFile { path, .. }
            | E::BadMagic { path, .. }
            | E::UnsupportedVersion { path, .. }
            | E::BadHeader { path, .. }
            | E::SizeMismatch { path, .. }
            | E::CapacityMismatch { path, .. }
            | E::ConsumersMismatch { path, .. }
            | E::BadPositions { path, .. }
            | E::Corrupt { path, .. } => ("BadRingFile", Some(path), None, None),
            E::InvalidCapacity { .. }
            | E::InvalidConsumers { .. }
            | E::InvalidMaxLag { .. }
            | E::InvalidName { .. }
            | E::InvalidMode { .. }
            | E::TooLarge { .. }
            | E::WrongLength { .. } => ("InvalidArgument", None, None, None),
            E::NoSlot { path, .. } | E::UnknownName { path, .. } => {
                ("NoSuchConsumer", Some(path), None, None)
            }
            E::Inherited { path, .. } => ("Inherited", Some(path), None, None),
            _ => ("RingfileError", None, None, None),
        };
    let build = || -> PyResult<PyErr> {
        let value = exception(py, class, error.to_string())?;
        if let Some(path) = path {
            value.setattr("path", path.to_string_lossy().into_owned())?;
        }
        if let Some(pid) = pid {
            value.setattr("pid", pid)?;
        }
        if let Some(reason) = reason {
            value.setattr("reason", reason)?;
        }
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|e| e)
}

/// A new instance of the package's exception `class` (in `ringfile/_errors.py`) saying
/// `message`.
fn exception<'py>(py: Python<'py>, class: &str, message: String) -> PyResult<Bound<'py, PyAny>> {
    py.import("ringfile._errors")?
        .getattr(class)?
        .call1((message,))
}

/// The error that raises the package's exception `class` saying `message` (or, should the
/// package itself be broken, the error that says so).
fn error(py: Python<'_>, class: &str, message: String) -> PyErr {
    exception(py, class, message).map_or_else(|e| e, PyErr::from_value)
}

/// A capacity given as an int or as text such as `"16MiB"`.
fn capacity_of(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(bytes) = value.extract::<u64>() {
        return Ok(bytes);
    }
    let text: String = value.extract().map_err(|_| {
        PyValueError::new_err("capacity: expected an int (bytes) or a size such as \"16MiB\"")
    })?;
    text.parse::<Size>()
        .map(|size| size.0)
        .map_err(|e| PyValueError::new_err(format!("capacity {text:?}: {e}")))
}

/// Locks `mutex` with the GIL released (so that a thread holding it and waiting for the GIL
/// cannot deadlock against us). A poisoned lock (a panic inside a call) is taken anyway: the
/// sides keep their state consistent across every error return.
fn lock<T: Send>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A producer or a consumer: what `with_side` checks before every call.
trait Held {
    const ROLE: ringfile::Role;
    /// Whether this process inherited the side through `fork` (and must not use it).
    fn is_inherited(&self) -> bool;
}

impl Held for ringfile::Producer {
    const ROLE: ringfile::Role = ringfile::Role::Producer;
    fn is_inherited(&self) -> bool {
        ringfile::Producer::is_inherited(self)
    }
}

impl Held for Side {
    const ROLE: ringfile::Role = ringfile::Role::Consumer;
    fn is_inherited(&self) -> bool {
        self.consumer.is_inherited()
    }
}

/// Runs `f` on the side in `side` (the GIL released, the side locked), or raises `Closed`
/// if it was closed or detached, `Inherited` in a child forked after it was taken (the
/// library checks that only where it must, in `close` and `abort`; a Python call costs
/// far more than the check, so every call makes it).
fn with_side<S: Held + Send, T: Send>(
    py: Python<'_>,
    side: &Mutex<Option<S>>,
    what: &str,
    path: &str,
    f: impl FnOnce(&mut S) -> PyResult<T> + Send,
) -> PyResult<T> {
    py.detach(|| match lock(side).as_mut() {
        Some(side) if side.is_inherited() => Err(inherited(path, S::ROLE)),
        Some(side) => f(side),
        None => Err(closed(what, path)),
    })
}

/// Waits with `attempt` in slices (each given the time left in the slice), the GIL released,
/// running Python's signal handlers between slices; `None` timeout waits for good.
/// `attempt` returns `Err(Timeout)` when its slice passed without result.
fn wait_sliced<T>(
    timeout: Option<f64>,
    mut attempt: impl FnMut(Duration) -> ringfile::Result<T>,
) -> PyResult<T> {
    let deadline = match timeout {
        None => None,
        Some(t) if t.is_finite() && t >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(PyValueError::new_err(format!(
                "timeout {t}: expected seconds >= 0"
            )))
        }
    };
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(at) => at.saturating_duration_since(Instant::now()).min(SLICE),
        };
        match attempt(slice) {
            Ok(value) => return Ok(value),
            Err(ringfile::Error::Timeout) if deadline.is_none_or(|at| Instant::now() < at) => {
                Python::attach(|py| py.check_signals())?;
            }
            Err(error) => return Err(Python::attach(|py| raise(py, error))),
        }
    }
}

/// A ring file: open or create one, then take its producer or a consumer.
#[pyclass(module = "ringfile", frozen)]
struct Ring {
    ring: ringfile::Ring,
}

impl Ring {
    /// The ring `make` opens or creates, the GIL released while it does.
    fn made(
        py: Python<'_>,
        make: impl FnOnce() -> ringfile::Result<ringfile::Ring> + Send,
    ) -> PyResult<Ring> {
        py.detach(make)
            .map(|ring| Ring { ring })
            .map_err(|e| raise(py, e))
    }
}

#[pymethods]
impl Ring {
    /// Opens the ring file at `path`.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Ring> {
        Ring::made(py, || ringfile::Ring::open(&path))
    }

    /// Creates a ring file at `path` (nothing may exist there): `capacity` bytes of data
    /// (a power of two; an int or a size such as "16MiB"), `consumers` slots (1: one
    /// consumer; 2 to 256: that many named consumers, each reading every message), `mode`
    /// the exact permission bits.
    #[staticmethod]
    #[pyo3(signature = (path, capacity = None, consumers = 1, mode = 0o600))]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        capacity: Option<&Bound<'_, PyAny>>,
        consumers: u32,
        mode: u32,
    ) -> PyResult<Ring> {
        let options = options(capacity, consumers, mode)?;
        Ring::made(py, || options.create(&path))
    }

    /// Opens the ring at `path`, or creates it as `create` does if nothing is there. An
    /// existing ring must have the capacity and consumer slots asked for.
    #[staticmethod]
    #[pyo3(signature = (path, capacity = None, consumers = 1, mode = 0o600))]
    fn open_or_create(
        py: Python<'_>,
        path: PathBuf,
        capacity: Option<&Bound<'_, PyAny>>,
        consumers: u32,
        mode: u32,
    ) -> PyResult<Ring> {
        let options = options(capacity, consumers, mode)?;
        Ring::made(py, || options.open_or_create(&path))
    }

    /// Takes the producer role (one live producer per ring).
    fn producer(&self, py: Python<'_>) -> PyResult<Producer> {
        let producer = self.ring.producer().map_err(|e| raise(py, e))?;
        Ok(Producer {
            side: Mutex::new(Some(producer)),
            path: self.path(),
        })
    }

    /// Takes a consumer: the ring's one consumer, or on a ring with consumer slots the
    /// consumer `name` (default "default"), which resumes where that name last released.
    /// `start="latest"` starts a new name at the next message instead of the oldest held;
    /// `lossy=True` never holds the producer back (it counts what it misses, `missed`).
    #[pyo3(signature = (name = None, *, lossy = false, start = "oldest"))]
    fn consumer(
        &self,
        py: Python<'_>,
        name: Option<&str>,
        lossy: bool,
        start: &str,
    ) -> PyResult<Consumer> {
        let start = match start {
            "oldest" => ringfile::Start::Oldest,
            "latest" => ringfile::Start::Latest,
            other => {
                return Err(PyValueError::new_err(format!(
                    "start {other:?}: expected \"oldest\" or \"latest\""
                )))
            }
        };
        let mut options = ringfile::ConsumerOptions::new().lossy(lossy).start(start);
        if let Some(name) = name {
            options = options.name(name);
        }
        let consumer = py
            .detach(|| self.ring.consumer_with(&options))
            .map_err(|e| raise(py, e))?;
        Ok(Consumer {
            side: Mutex::new(Some(Side {
                consumer,
                pending: None,
                view: None,
            })),
            path: self.path(),
            wake: std::sync::OnceLock::new(),
            awaiting: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The data capacity in bytes.
    #[getter]
    fn capacity(&self) -> u64 {
        self.ring.capacity()
    }

    /// The number of consumer slots.
    #[getter]
    fn consumers(&self) -> u32 {
        self.ring.consumers()
    }

    /// The longest message the ring carries, in bytes.
    #[getter]
    fn max_message_len(&self) -> usize {
        self.ring.max_message_len()
    }

    /// The ring file's path.
    #[getter]
    fn path(&self) -> String {
        self.ring.path().to_string_lossy().into_owned()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "<ringfile.Ring {:?} capacity={} consumers={}>",
            self.path(),
            self.ring.capacity(),
            self.ring.consumers()
        )
    }
}

fn options(
    capacity: Option<&Bound<'_, PyAny>>,
    consumers: u32,
    mode: u32,
) -> PyResult<ringfile::RingOptions> {
    let capacity = capacity
        .map(capacity_of)
        .transpose()?
        .unwrap_or(ringfile::DEFAULT_CAPACITY);
    Ok(ringfile::Ring::options()
        .capacity(capacity)
        .consumers(consumers)
        .mode(mode))
}

/// The message's bytes of a bytes-like object: one C-contiguous buffer of bytes.
fn bytes_of(data: &Bound<'_, PyAny>) -> PyResult<PyBuffer<u8>> {
    let buffer = PyBuffer::<u8>::get(data).or_else(|_| {
        // A typed buffer (a NumPy array of floats, say): its bytes, as `bytes(view)` gives.
        let view = PyMemoryView::from(data)?;
        PyBuffer::<u8>::get(&view.call_method1("cast", ("B",))?)
    })?;
    if !buffer.is_c_contiguous() {
        return Err(PyValueError::new_err(
            "message: expected a C-contiguous bytes-like object",
        ));
    }
    Ok(buffer)
}

/// Copies the buffer's bytes into `dst` (exactly its length).
fn copy_buffer(buffer: &PyBuffer<u8>, dst: &mut [u8]) {
    debug_assert_eq!(dst.len(), buffer.len_bytes());
    // SAFETY: the buffer is C-contiguous (checked in `bytes_of`) and exported for as long as
    // `buffer` lives, so `len_bytes` bytes from `buf_ptr` stay allocated; `dst` is ours and
    // does not overlap it (it lies in the ring's mapping). Another Python thread could write
    // the object while we copy (we may run with the GIL released): the copy may then mix
    // old and new bytes, as `bytes(obj)` racing the same writer would.
    unsafe {
        std::ptr::copy_nonoverlapping(buffer.buf_ptr().cast::<u8>(), dst.as_mut_ptr(), dst.len());
    }
}

/// The producer of a ring: `send` bytes-like objects, then `close` (or `abort`).
#[pyclass(module = "ringfile", frozen)]
struct Producer {
    side: Mutex<Option<ringfile::Producer>>,
    path: String,
}

impl Producer {
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut ringfile::Producer) -> PyResult<T> + Send,
    ) -> PyResult<T> {
        with_side(py, &self.side, "producer", &self.path, f)
    }

    fn take(&self, py: Python<'_>) -> PyResult<ringfile::Producer> {
        py.detach(|| lock(&self.side).take())
            .ok_or_else(|| closed("producer", &self.path))
    }
}

/// The library's `Inherited` error for `role` of the ring at `path`, raised.
fn inherited(path: &str, role: ringfile::Role) -> PyErr {
    Python::attach(|py| {
        raise(
            py,
            ringfile::Error::Inherited {
                path: path.into(),
                role,
            },
        )
    })
}

fn closed(side: &str, path: &str) -> PyErr {
    Python::attach(|py| {
        error(
            py,
            "Closed",
            format!("{path}: this {side} was closed or detached"),
        )
    })
}

#[pymethods]
impl Producer {
    /// Sends one message (any bytes-like object: bytes, bytearray, memoryview, a NumPy
    /// array), copied once, into the ring; waits for room (`timeout` seconds at most, then
    /// `Timeout`; None: for good).
    #[pyo3(signature = (data, timeout = None))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let buffer = bytes_of(data)?;
        let len = buffer.len_bytes();
        self.with(py, |producer| {
            wait_sliced(timeout, |slice| {
                let mut claim = producer.claim_timeout(len, slice)?;
                copy_buffer(&buffer, &mut claim);
                claim.commit();
                Ok(())
            })
        })
    }

    /// Sends one message if there is room now; raises `RingFull` otherwise.
    fn try_send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let buffer = bytes_of(data)?;
        let len = buffer.len_bytes();
        self.with(py, |producer| {
            let mut claim = producer
                .try_claim(len)
                .map_err(|e| Python::attach(|py| raise(py, e)))?;
            copy_buffer(&buffer, &mut claim);
            claim.commit();
            Ok(())
        })
    }

    /// Sends every message of `messages` (an iterable of bytes-like objects) and makes them
    /// visible to the consumers together: one publish for the lot.
    fn send_batch(&self, py: Python<'_>, messages: &Bound<'_, PyAny>) -> PyResult<usize> {
        let buffers: Vec<PyBuffer<u8>> = messages
            .try_iter()?
            .map(|m| bytes_of(&m?))
            .collect::<PyResult<_>>()?;
        self.with(py, |producer| {
            let mut batch = producer.batch();
            for buffer in &buffers {
                let len = buffer.len_bytes();
                wait_sliced(None, |slice| {
                    let mut claim = batch.claim_timeout(len, slice)?;
                    copy_buffer(buffer, &mut claim);
                    claim.commit();
                    Ok(())
                })?;
            }
            Ok(buffers.len())
        })
    }

    /// Ends the stream: every consumer receives what was sent, then the end (`recv`
    /// returns None). Releases the role.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let producer = self.take(py)?;
        py.detach(|| producer.close()).map_err(|e| raise(py, e))
    }

    /// Ends the stream with an error: consumers raise `StreamAborted` with `reason` once
    /// they have received what was sent before.
    fn abort(&self, py: Python<'_>, reason: &str) -> PyResult<()> {
        let producer = self.take(py)?;
        py.detach(|| producer.abort(reason))
            .map_err(|e| raise(py, e))
    }

    /// Lets go of the role without ending the stream: another producer may attach and go
    /// on, and consumers keep waiting.
    fn detach(&self, py: Python<'_>) -> PyResult<()> {
        self.take(py)?.detach();
        Ok(())
    }

    /// The longest message this ring carries, in bytes.
    #[getter]
    fn max_message_len(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |p| Ok(p.max_message_len()))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaving a `with` block closes the stream, or aborts it (with the exception as the
    /// reason) if the block raised; a producer already closed is left alone.
    #[pyo3(signature = (exc_type = None, exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let Some(producer) = py.detach(|| lock(&self.side).take()) else {
            return Ok(false);
        };
        let result = match (exc_type, exc) {
            (Some(kind), Some(exc)) if !kind.is_none() => {
                let reason = format!("{}: {}", kind.getattr("__name__")?.str()?, exc.str()?);
                py.detach(|| producer.abort(&reason))
            }
            _ => py.detach(|| producer.close()),
        };
        result.map_err(|e| raise(py, e))?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<ringfile.Producer of {:?}>", self.path)
    }
}

/// A consumer of a ring: `recv` messages (or iterate) until the end of the stream.
///
/// What a receive returns is released — its space given back to the producer, the
/// consumer's place moved past it — when this consumer receives again or closes: a process
/// killed while handling a message (or a batch) leaves it to the next consumer of its name,
/// which receives it again. Nothing handed to Python is lost; at most what was in hand
/// comes twice. (A lossy consumer releases at once: the producer does not wait for it.)
#[pyclass(module = "ringfile", frozen)]
struct Consumer {
    side: Mutex<Option<Side>>,
    path: String,
    /// The eventfd that `recv_async`'s event loop watches (made at its first use): the
    /// library's watcher thread wakes the task by writing to it, so no thread per ring and
    /// no GIL on the watcher's side.
    wake: std::sync::OnceLock<Arc<WakeFd>>,
    /// A task is inside `recv_async`/`recv_batch_async` (one at a time: the event loop
    /// watches the eventfd for one).
    awaiting: std::sync::atomic::AtomicBool,
}

/// A consumer and what it owes its caller.
struct Side {
    consumer: ringfile::Consumer,
    /// What a `recv_batch` found after the messages it returned (the end of the stream, an
    /// abort): reported by the next call, so that no message read is lost to it.
    pending: Option<Pending>,
    /// The message a `recv_view` handed out, left unreleased at the head of the ring until
    /// its view is released; while it is open, receiving again is refused.
    view: Option<Arc<ViewState>>,
}

impl Drop for Side {
    fn drop(&mut self) {
        // What the last receive handed to Python is done with: the consumer is going away.
        let mark = self.consumer.read_mark();
        self.consumer.release_to(mark);
    }
}

enum Pending {
    End,
    Failed(ringfile::Error),
}

impl Side {
    /// Releases what the last receive returned, then gives the end or error a batch left to
    /// report, if any: `Ok(true)` for the end. Refuses
    /// (`ViewOpen`) while a view of a message is open: messages are received in order, and
    /// the one in view is not yet released.
    fn take_pending(&mut self) -> PyResult<bool> {
        if self.view.is_some() {
            return Err(view_open());
        }
        // A receive says the caller is done with what the last one returned: release it now,
        // before waiting (kept messages would hold a full ring's producer back for good).
        let mark = self.consumer.read_mark();
        self.consumer.release_to(mark);
        match self.pending.take() {
            None => Ok(false),
            Some(Pending::End) => Ok(true),
            Some(Pending::Failed(e)) => Err(Python::attach(|py| raise(py, e))),
        }
    }
}

impl Consumer {
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Side) -> PyResult<T> + Send,
    ) -> PyResult<T> {
        with_side(py, &self.side, "consumer", &self.path, f)
    }
}

/// The bytes of a message, made with the GIL taken back. The message is kept, not released:
/// its space goes back to the producer when this consumer receives again (or closes), so a
/// process killed while handling it leaves it to the next consumer of its name.
fn to_bytes(message: ringfile::Message<'_>) -> Py<PyBytes> {
    let bytes = Python::attach(|py| PyBytes::new(py, &message).unbind());
    message.keep();
    bytes
}

#[pymethods]
impl Consumer {
    /// Receives the next message as bytes, waiting for it (`timeout` seconds at most, then
    /// `Timeout`; None: for good); None at the end of the stream. Raises `ProducerDied` if
    /// the producer died without ending its stream, `StreamAborted` if it aborted it.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyBytes>>> {
        self.with(py, |side| {
            if side.take_pending()? {
                return Ok(None);
            }
            let consumer = &mut side.consumer;
            wait_sliced(timeout, |slice| {
                Ok(consumer.recv_timeout(slice)?.map(to_bytes))
            })
        })
    }

    /// Receives the next message if one is waiting: bytes; None at the end of the stream;
    /// raises `RingEmpty` if nothing is there yet.
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        self.with(py, |side| {
            if side.take_pending()? {
                return Ok(None);
            }
            let consumer = &mut side.consumer;
            let got = consumer.try_recv().map(|m| m.map(to_bytes));
            match got {
                Ok(Some(bytes)) => Ok(Some(bytes)),
                // The library's two `None`s told apart: the end, or nothing yet.
                Ok(None) if consumer.is_ended() => Ok(None),
                Ok(None) => Err(Python::attach(empty)),
                Err(e) => Err(Python::attach(|py| raise(py, e))),
            }
        })
    }

    /// Receives up to `max` messages at once (at least one, waiting as `recv` does): a list
    /// of bytes, one release for the lot; an empty list at the end of the stream.
    #[pyo3(signature = (max = 1024, timeout = None))]
    fn recv_batch(&self, py: Python<'_>, max: usize, timeout: Option<f64>) -> PyResult<Py<PyList>> {
        if max == 0 {
            return Err(PyValueError::new_err("max: expected at least 1"));
        }
        self.with(py, |side| {
            if side.take_pending()? {
                return Ok(Python::attach(|py| PyList::empty(py).unbind()));
            }
            let Side {
                consumer, pending, ..
            } = side;
            wait_sliced(timeout, |slice| {
                batch_list(consumer.recv_batch_timeout(slice)?, max, pending)
            })
        })
    }

    /// `await consumer.recv_async(timeout=None)`: `recv` for asyncio. The event loop waits
    /// on an eventfd that the library's watcher thread (one per process, whatever the number
    /// of rings) signals when the producer publishes; a message already there is returned
    /// without waiting. One task at a time per consumer (another raises `RuntimeError`).
    #[pyo3(signature = (timeout = None))]
    fn recv_async<'py>(
        slf: &Bound<'py, Self>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        aio_receive(slf, None, timeout)
    }

    /// `await consumer.recv_batch_async(max=1024, timeout=None)`: `recv_batch` for asyncio,
    /// waiting as `recv_async` does.
    #[pyo3(signature = (max = 1024, timeout = None))]
    fn recv_batch_async<'py>(
        slf: &Bound<'py, Self>,
        max: usize,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if max == 0 {
            return Err(PyValueError::new_err("max: expected at least 1"));
        }
        aio_receive(slf, Some(max), timeout)
    }

    /// For `ringfile._aio`: the eventfd the event loop watches.
    fn _wake_fd(&self) -> PyResult<i32> {
        Ok(self.wake_fd()?.0.as_raw_fd())
    }

    /// For `ringfile._aio`: marks a task inside `recv_async` (`true`), or gone (`false`).
    fn _awaiting(&self, entering: bool) -> PyResult<()> {
        if !entering {
            self.awaiting.store(false, Ordering::Release);
            return Ok(());
        }
        self.awaiting
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(|_| {
                pyo3::exceptions::PyRuntimeError::new_err(
                    "another task is already awaiting a receive on this consumer: \
                     one task at a time (or one consumer per task)",
                )
            })
    }

    /// For `ringfile._aio`: one poll of the library's async receive, the GIL released:
    /// `(True, result)` if it is done (`result` as `recv` or `recv_batch` returns it),
    /// `(False, None)` if the task waits; the eventfd is then signalled when to poll again.
    fn _poll(&self, py: Python<'_>, max: Option<usize>) -> PyResult<(bool, Option<Py<PyAny>>)> {
        let waker = std::task::Waker::from(self.wake_fd()?);
        self.with(py, |side| {
            if side.take_pending()? {
                let end = max.map(|_| Python::attach(|py| PyList::empty(py).into_any().unbind()));
                return Ok((true, end));
            }
            let mut cx = std::task::Context::from_waker(&waker);
            let Side {
                consumer, pending, ..
            } = side;
            let outcome = match max {
                None => poll_once(consumer.recv_async(), &mut cx)
                    .map(|got| got.map(|m| m.map(|msg| to_bytes(msg).into_any()))),
                Some(max) => poll_once(consumer.recv_batch_async(), &mut cx).map(|got| {
                    got.and_then(|batch| batch_list(batch, max, pending))
                        .map(|list| Some(list.into_any()))
                }),
            };
            match outcome {
                None => Ok((false, None)),
                Some(Ok(value)) => Ok((true, value)),
                Some(Err(e)) => Err(Python::attach(|py| raise(py, e))),
            }
        })
    }

    /// Messages the producer overtook this (lossy) consumer by, so far.
    #[getter]
    fn missed(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |s| Ok(s.consumer.missed()))
    }

    /// This consumer's name (`default` for a ring's one consumer).
    #[getter]
    fn name(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |s| Ok(s.consumer.name()))
    }

    /// Whether the last message received was the end of the stream.
    #[getter]
    fn ended(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |s| Ok(s.consumer.is_ended() && s.pending.is_none()))
    }

    /// Lets go of the consumer role (a named consumer's position stays: the name resumes
    /// there), releasing what the last receive returned. Using it afterwards raises `Closed`. A message still in an open view is left
    /// unreleased (the next consumer of this name receives it again) and the view is
    /// invalidated; while a buffer of that view is still exported (a memoryview, a NumPy
    /// array), closing raises `BufferError` instead, since the ring's memory must outlive it.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            let mut side = lock(&self.side);
            if let Some(view) = side.as_ref().and_then(|s| s.view.as_ref()) {
                view.invalidate()?;
            }
            Ok::<_, PyErr>(side.take())
        })
        .map(drop)
    }

    /// Receives the next message without copying it: a `View` of its bytes in the ring's
    /// own memory (None at the end of the stream), waiting as `recv` does. Use it as a
    /// context manager, which gives a read-only memoryview (`numpy.frombuffer` reads it in
    /// place) and releases the message on leaving the block:
    ///
    ///     with consumer.recv_view() as data:
    ///         frame = numpy.frombuffer(data, dtype=numpy.uint8)
    ///         ...
    ///
    /// Until the view is released the message is not (the producer cannot reuse its space)
    /// and this consumer receives nothing else (`ViewOpen`); a view released, or dropped,
    /// cannot be read again (its memoryview raises `ValueError`). Not for a lossy consumer,
    /// whose messages may be overwritten while held.
    #[pyo3(signature = (timeout = None))]
    fn recv_view(slf: Py<Self>, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<View>> {
        let state = slf.get().with(py, |side| {
            if side.take_pending()? {
                return Ok(None);
            }
            if side.consumer.is_lossy() {
                return Err(Python::attach(|py| {
                    error(
                        py,
                        "InvalidArgument",
                        "recv_view: a lossy consumer's messages may be overwritten while \
                         viewed; use recv or recv_batch (they copy)"
                            .to_string(),
                    )
                }));
            }
            let consumer = &mut side.consumer;
            let found = wait_sliced(timeout, |slice| {
                Ok(consumer.recv_timeout(slice)?.map(|msg| {
                    let (address, len) = (msg.as_ptr() as usize, msg.len());
                    // Left at the head of the ring, unreleased, until the view is released.
                    msg.unread();
                    (address, len)
                }))
            })?;
            Ok(found.map(|(address, len)| {
                let state = Arc::new(ViewState {
                    address,
                    len,
                    exports: AtomicUsize::new(0),
                });
                side.view = Some(Arc::clone(&state));
                state
            }))
        })?;
        Ok(state.map(|state| View {
            consumer: slf,
            state,
            memoryview: Mutex::new(None),
        }))
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        // None ends the iteration (pyo3 raises StopIteration for it).
        self.recv(py, None)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<ringfile.Consumer of {:?}>", self.path)
    }
}

/// The coroutine of `ringfile._aio` that awaits a receive of `consumer` (one message, or a
/// batch of up to `max`).
fn aio_receive<'py>(
    consumer: &Bound<'py, Consumer>,
    max: Option<usize>,
    timeout: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    consumer
        .py()
        .import("ringfile._aio")?
        .getattr("receive")?
        .call1((consumer, max, timeout))
}

/// Polls `future` once: its output if it is ready, `None` if it waits (its waker, `cx`'s,
/// is then registered with the library's watcher). The future is dropped either way; the
/// library's receives are cancellation-safe and keep the registration in the consumer.
fn poll_once<F: Future>(future: F, cx: &mut std::task::Context<'_>) -> Option<F::Output> {
    match std::pin::pin!(future).poll(cx) {
        std::task::Poll::Pending => None,
        std::task::Poll::Ready(output) => Some(output),
    }
}

impl Consumer {
    fn wake_fd(&self) -> PyResult<Arc<WakeFd>> {
        if let Some(fd) = self.wake.get() {
            return Ok(Arc::clone(fd));
        }
        let made = WakeFd::new()?;
        Ok(Arc::clone(self.wake.get_or_init(|| made)))
    }
}

/// An eventfd that wakes an asyncio task: the library's watcher thread calls `wake`, which
/// writes to it (no GIL needed); the event loop, watching it with `add_reader`, reads it and
/// polls again.
struct WakeFd(std::os::fd::OwnedFd);

impl WakeFd {
    fn new() -> PyResult<Arc<WakeFd>> {
        // SAFETY: eventfd takes no pointers; a result >= 0 is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(PyErr::from(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Ok(Arc::new(WakeFd(unsafe {
            std::os::fd::FromRawFd::from_raw_fd(fd)
        })))
    }
}

impl std::task::Wake for WakeFd {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one` to our own open eventfd. A full counter
        // (EAGAIN) already means "readable"; nothing else can fail here.
        unsafe {
            libc::write(
                self.0.as_raw_fd(),
                std::ptr::from_ref(&one).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }
}

/// Up to `max` messages of `batch` as a list of bytes, the GIL taken for it; an end or an
/// error found after some messages is left in `pending` for the next call, so that no
/// message read is lost to it. What was read is kept (released by the next receive).
fn batch_list(
    mut batch: ringfile::RecvBatch<'_>,
    max: usize,
    pending: &mut Option<Pending>,
) -> ringfile::Result<Py<PyList>> {
    Python::attach(|py| {
        let list = PyList::empty(py);
        while list.len() < max {
            match batch.next() {
                Ok(Some(msg)) => list
                    .append(PyBytes::new(py, msg))
                    .expect("appending to a new list"),
                Ok(None) => break,
                // Reported now if nothing came before it, else next time.
                Err(e) if list.is_empty() => return Err(e),
                Err(e) => {
                    *pending = Some(Pending::Failed(e));
                    break;
                }
            }
        }
        if batch.is_end() && !list.is_empty() && pending.is_none() {
            *pending = Some(Pending::End);
        }
        // Released when this consumer receives again, as `to_bytes` says.
        batch.keep();
        Ok(list.unbind())
    })
}

fn view_open() -> PyErr {
    Python::attach(|py| {
        error(
            py,
            "ViewOpen",
            "a view of the last message is still open: release it (leave its with block) \
             before receiving again"
                .to_string(),
        )
    })
}

/// What a [`View`] and its consumer share: where the message lies in the mapping, and how
/// many buffers of it are exported (or [`RELEASED`]).
struct ViewState {
    address: usize,
    len: usize,
    /// Buffers exported (memoryviews, NumPy arrays over them), or `RELEASED` once the view
    /// was released or invalidated: one word, so that exporting and releasing cannot both
    /// win. Relaxed would do for the count itself; AcqRel orders the release after every
    /// reader's `__releasebuffer__` (a reader on another thread), before the space goes back.
    exports: AtomicUsize,
}

/// `ViewState::exports` once the view can no longer be read.
const RELEASED: usize = usize::MAX;

impl ViewState {
    /// Counts one more exported buffer, unless the view was released.
    fn export(&self) -> PyResult<()> {
        self.exports
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != RELEASED).then_some(n + 1)
            })
            .map(drop)
            .map_err(|_| PyBufferError::new_err("this view was released: its message is gone"))
    }

    fn unexport(&self) {
        let _ = self
            .exports
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != RELEASED && n > 0).then(|| n - 1)
            });
    }

    /// Marks the view unreadable, unless a buffer of it is still exported. `Ok(false)` if it
    /// already was.
    fn invalidate(&self) -> PyResult<bool> {
        match self
            .exports
            .compare_exchange(0, RELEASED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(true),
            Err(RELEASED) => Ok(false),
            Err(n) => Err(PyBufferError::new_err(format!(
                "the view is still in use by {n} buffer(s) (a memoryview or NumPy array made \
                 from it): delete them before releasing it"
            ))),
        }
    }
}

/// A message received by `Consumer.recv_view`, read in place in the ring's memory (the
/// buffer protocol: `memoryview(view)`, `numpy.frombuffer(view)`), read-only. `with view
/// as data:` gives a memoryview and releases the message on leaving; `release()` does so
/// explicitly. Once released it cannot be read: a memoryview of it raises `ValueError`,
/// and making a new one raises `BufferError`.
#[pyclass(module = "ringfile", frozen)]
struct View {
    /// Keeps the consumer, and with it the ring's mapping, alive while the view is.
    consumer: Py<Consumer>,
    state: Arc<ViewState>,
    /// The memoryview `__enter__` handed out, released by `__exit__`.
    memoryview: Mutex<Option<Py<PyAny>>>,
}

impl View {
    /// Releases the message to the producer (once; later calls do nothing).
    fn release_message(&self, py: Python<'_>) -> PyResult<()> {
        if !self.state.invalidate()? {
            return Ok(());
        }
        let consumer = self.consumer.get();
        py.detach(|| {
            let mut guard = lock(&consumer.side);
            // Closed since: the message was left to the next consumer of the name.
            let Some(side) = guard.as_mut() else {
                return Ok(());
            };
            if side.is_inherited() {
                // A child forked with the view open: the message is the parent's to release.
                return Err(inherited(&consumer.path, Side::ROLE));
            }
            match &side.view {
                Some(open) if Arc::ptr_eq(open, &self.state) => side.view = None,
                _ => return Ok(()),
            }
            // The message `recv_view` left unread is the one at the head: receive it again
            // and drop it, which releases it.
            let outcome = match side.consumer.try_recv() {
                Ok(Some(msg))
                    if msg.as_ptr() as usize == self.state.address
                        && msg.len() == self.state.len =>
                {
                    drop(msg);
                    Ok(())
                }
                Ok(Some(msg)) => {
                    msg.unread();
                    Err(Python::attach(|py| {
                        error(
                            py,
                            "BadRingFile",
                            format!(
                                "{}: the message in view changed place in the ring while \
                                 viewed (another process wrote the file); left unreleased",
                                consumer.path
                            ),
                        )
                    }))
                }
                Ok(None) => Ok(()),
                Err(e) => Err(Python::attach(|py| raise(py, e))),
            };
            outcome
        })
    }
}

#[pymethods]
impl View {
    /// Exports the message's bytes, read-only, in place.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let state = &slf.get().state;
        state.export()?;
        // SAFETY: `view` is the Py_buffer CPython handed us to fill. The bytes lie in the
        // ring's mapping at `address`, `len` long, and stay there, unchanged by the
        // producer, while this buffer is exported: the message is not released while
        // `exports` is above zero (`invalidate` refuses), the consumer (which owns the
        // mapping) lives as long as this view does, and `PyBuffer_FillInfo` makes the
        // buffer hold a reference to this view. Read-only (`readonly = 1`): a writable
        // request fails in `PyBuffer_FillInfo` with BufferError.
        let filled = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                state.address as *mut std::ffi::c_void,
                state.len as ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if filled != 0 {
            state.unexport();
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.state.unexport();
    }

    /// The message's length in bytes.
    fn __len__(&self) -> usize {
        self.state.len
    }

    /// The message's address in this process (it lies in the ring file's mapping).
    #[getter]
    fn address(&self) -> usize {
        self.state.address
    }

    /// Whether the view was released (or its consumer closed).
    #[getter]
    fn released(&self) -> bool {
        self.state.exports.load(Ordering::Acquire) == RELEASED
    }

    /// A copy of the message's bytes.
    fn tobytes<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyBytes>> {
        let view = PyMemoryView::from(slf.as_any())?;
        let bytes = view.call_method0("tobytes")?.cast_into::<PyBytes>()?;
        view.call_method0("release")?;
        Ok(bytes)
    }

    /// Releases the message to the producer; the view cannot be read afterwards. Raises
    /// `BufferError` while a buffer made from it (other than the `with` block's
    /// memoryview) is still alive.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let memoryview = lock(&self.memoryview).take();
        if let Some(memoryview) = memoryview {
            if let Err(e) = memoryview.call_method0(py, "release") {
                // A NumPy array still holds the memoryview: keep it for the next try.
                *lock(&self.memoryview) = Some(memoryview);
                return Err(e);
            }
        }
        self.release_message(py)
    }

    /// A read-only memoryview of the message, released with the view on leaving the block.
    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let memoryview = PyMemoryView::from(slf.as_any())?.into_any().unbind();
        *lock(&slf.get().memoryview) = Some(memoryview.clone_ref(slf.py()));
        Ok(memoryview)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.release(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.released() { "released" } else { "open" };
        format!("<ringfile.View of {} bytes, {state}>", self.state.len)
    }
}

impl Drop for View {
    /// A view dropped unreleased releases its message (as dropping a Rust `Message` does).
    /// No buffer can be exported then: each holds a reference to the view.
    fn drop(&mut self) {
        Python::attach(|py| {
            if let Err(e) = self.release_message(py) {
                e.write_unraisable(py, None);
            }
        });
    }
}

fn empty(py: Python<'_>) -> PyErr {
    error(py, "RingEmpty", "no message waiting".to_string())
}

/// The Rust half of the `ringfile` package.
#[pymodule]
fn _ringfile(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Ring>()?;
    m.add_class::<Producer>()?;
    m.add_class::<Consumer>()?;
    m.add_class::<View>()?;
    m.add("DEFAULT_CAPACITY", ringfile::DEFAULT_CAPACITY)?;
    Ok(())
}
