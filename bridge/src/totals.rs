//! What a bridge carried, for the progress line and the final summary both directions print.

use ringfile_cli::progress::{Counters, Waiting};
use ringfile_cli::summary::Summary;
use std::time::{Duration, Instant};

/// Messages and payload bytes carried, and when the first and last were.
#[derive(Default)]
pub struct Totals {
    messages: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Totals {
    /// Counts `messages` more (`bytes` of payload), for the summary and the progress line.
    pub fn add(&mut self, messages: u64, bytes: u64, counters: &Counters) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.messages += messages;
        self.bytes += bytes;
        counters.add(messages, bytes);
        counters.set_waiting(Waiting::Nothing);
    }

    /// Prints the summary of `program`'s run, which `ended` so; the exit status.
    pub fn finish(&self, program: &'static str, ended: &'static str, json: bool) -> i32 {
        let elapsed = match (self.first, self.last) {
            (Some(f), Some(l)) => l.duration_since(f),
            _ => Duration::ZERO,
        };
        Summary {
            program,
            messages: self.messages,
            bytes: self.bytes,
            elapsed,
            ended,
            errors: None,
            latency: None,
            missed: None,
        }
        .print(json);
        ringfile_cli::EXIT_OK
    }
}
