//! A live progress line on a terminal, driven from a background thread so the hot loop
//! only bumps two counters.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
}

impl Counters {
    /// Adds to the counters.
    #[inline]
    pub fn add(&self, messages: u64, bytes: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The progress display; shown only when stderr is a terminal and `--quiet` is not given.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts displaying `counters` for `program`, if stderr is a terminal and not `quiet`.
    pub fn start(program: &'static str, counters: Arc<Counters>, quiet: bool) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { stop, thread: None };
        }
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
            let start = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                let messages = counters.messages.load(Ordering::Relaxed);
                let bytes = counters.bytes.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "{program}: {messages} messages, {:.1} MB, {:.0} messages/s",
                    bytes as f64 / 1e6,
                    messages as f64 / secs
                ));
                bar.tick();
                std::thread::sleep(Duration::from_millis(200));
            }
            bar.finish_and_clear();
        });
        Progress {
            stop,
            thread: Some(thread),
        }
    }

    /// Removes the progress line (before the summary is printed).
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
