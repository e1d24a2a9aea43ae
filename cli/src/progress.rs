//! A live progress line on a terminal, driven from a background thread so the hot loop
//! only bumps two counters.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters the work loop updates (Relaxed: they are statistics, read only for display).
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages so far.
    pub messages: AtomicU64,
    /// Bytes so far.
    pub bytes: AtomicU64,
    /// What the program is waiting for: a [`Waiting`] value.
    waiting: AtomicU8,
}

/// What a program waits for, shown in its progress line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Waiting {
    /// Working (or waiting too briefly to say).
    Nothing,
    /// Producer: room in a full ring, with a consumer attached.
    Room,
    /// Producer: room in a full ring, with no consumer attached.
    RoomNoConsumer,
    /// Producer: input.
    Input,
    /// Consumer: messages.
    Messages,
    /// Consumer: a producer to create the ring.
    Ring,
}

impl Waiting {
    fn from_u8(value: u8) -> Waiting {
        [
            Waiting::Nothing,
            Waiting::Room,
            Waiting::RoomNoConsumer,
            Waiting::Input,
            Waiting::Messages,
            Waiting::Ring,
        ]
        .get(usize::from(value))
        .copied()
        .unwrap_or(Waiting::Nothing)
    }

    fn describe(self) -> &'static str {
        match self {
            Waiting::Nothing => "",
            Waiting::Room => " - waiting for the consumer to make room",
            Waiting::RoomNoConsumer => " - ring full, waiting for a consumer to attach",
            Waiting::Input => " - waiting for input",
            Waiting::Messages => " - waiting for messages",
            Waiting::Ring => " - waiting for a producer to create the ring",
        }
    }
}

impl Counters {
    /// Adds to the counters.
    #[inline]
    pub fn add(&self, messages: u64, bytes: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Says what the program waits for now (`Waiting::Nothing` when it works again). Cheap
    /// when nothing changes: a load, and a store only on a change.
    #[inline]
    pub fn set_waiting(&self, waiting: Waiting) {
        if self.waiting.load(Ordering::Relaxed) != waiting as u8 {
            self.waiting.store(waiting as u8, Ordering::Relaxed);
        }
    }

    /// What the program waits for.
    pub fn waiting(&self) -> Waiting {
        Waiting::from_u8(self.waiting.load(Ordering::Relaxed))
    }
}

/// The progress display, shown only when stderr is a terminal and `--quiet` is not given;
/// and, always, a watch for conditions worth one warning (futexes unavailable).
pub struct Progress {
    program: &'static str,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    warned: Arc<AtomicBool>,
}

/// Prints, once per process, that waiting fell back to naps because futexes failed.
fn warn_futex_fallback(program: &str, warned: &AtomicBool) {
    if let Some(err) = ringfile::diagnostics::futex_fallback() {
        if !warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "{program}: warning: futexes are unavailable ({err}; a seccomp filter?): waiting falls back to short naps, adding up to 1 ms of latency per wake-up"
            );
        }
    }
}

/// How often the progress line is redrawn.
const REFRESH: Duration = Duration::from_millis(200);

impl Progress {
    /// Starts displaying `counters` for `program` (if stderr is a terminal and not `quiet`).
    pub fn start(program: &'static str, counters: Arc<Counters>, quiet: bool) -> Progress {
        Self::start_every(program, counters, quiet, REFRESH)
    }

    /// [`start`](Self::start), refreshing the line every `interval`.
    fn start_every(
        program: &'static str,
        counters: Arc<Counters>,
        quiet: bool,
        interval: Duration,
    ) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let warned = Arc::new(AtomicBool::new(false));
        let show = !quiet && std::io::stderr().is_terminal();
        let (stop2, warned2) = (Arc::clone(&stop), Arc::clone(&warned));
        let thread = std::thread::spawn(move || {
            let bar = show.then(|| {
                let bar = ProgressBar::new_spinner();
                bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
                bar
            });
            let start = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                if ringfile::diagnostics::futex_fallback().is_some()
                    && !warned2.load(Ordering::Relaxed)
                {
                    match &bar {
                        Some(bar) => bar.suspend(|| warn_futex_fallback(program, &warned2)),
                        None => warn_futex_fallback(program, &warned2),
                    }
                }
                if let Some(bar) = &bar {
                    let messages = counters.messages.load(Ordering::Relaxed);
                    let bytes = counters.bytes.load(Ordering::Relaxed);
                    let secs = start.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(format!(
                        "{program}: {messages} messages, {:#}, {:.0} messages/s{}",
                        crate::size::Size(bytes),
                        messages as f64 / secs,
                        counters.waiting().describe()
                    ));
                    bar.tick();
                }
                // Parked, not asleep: `finish` unparks us, so a program exits as soon as
                // its work is done instead of up to one interval later.
                std::thread::park_timeout(interval);
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        Progress {
            program,
            stop,
            thread: Some(thread),
            warned,
        }
    }

    /// Removes the progress line (before the summary is printed).
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The flag is set before the unpark, so the thread sees it when it wakes (an
            // unpark before it parks makes that park return at once).
            thread.thread().unpark();
            let _ = thread.join();
        }
        // A run shorter than one display interval still says it.
        warn_futex_fallback(self.program, &self.warned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finishing_does_not_wait_out_the_refresh_interval() {
        // An hour between refreshes: finish must wake the thread, not wait for it (a
        // producer used to take up to 200 ms to exit at the end of its input).
        let progress =
            Progress::start_every("test", Arc::default(), true, Duration::from_secs(3600));
        std::thread::sleep(Duration::from_millis(20)); // let the thread park
        let finisher = std::thread::spawn(move || progress.finish());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !finisher.is_finished() {
            assert!(
                Instant::now() < deadline,
                "finish waited for the next refresh"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
