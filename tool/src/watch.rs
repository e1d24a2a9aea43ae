//! `ringfile watch`: `stat`, refreshed, with the rates between two refreshes.

use crate::describe::{self, Described};
use ringfile::Snapshot;
use ringfile_cli::signals::Signals;
use ringfile_cli::size::Size;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Shows the ring at `path` every `interval` until `count` refreshes or a signal: one line
/// rewritten in place on a terminal (cut to its width), else a line or a JSON object each.
pub fn watch(
    path: &Path,
    interval: Duration,
    count: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let signals = Signals::install("ringfile", "exiting at once", json)?;
    let live = !json && std::io::stdout().is_terminal();
    let mut previous: Option<(Instant, Snapshot)> = None;
    let mut shown = 0u64;
    let mut out = std::io::stdout().lock();
    loop {
        let described = Described::of(path)?;
        let s = &described.snapshot;
        let now = Instant::now();
        let rates = previous
            .as_ref()
            .map(|(at, before)| Rates::between(before, s, now.duration_since(*at)))
            .unwrap_or_default();
        if json {
            let mut object = described.to_json();
            object["messages_in_per_sec"] = rates.messages_in.into();
            object["messages_out_per_sec"] = rates.messages_out.into();
            object["bytes_in_per_sec"] = rates.bytes_in.into();
            object["bytes_out_per_sec"] = rates.bytes_out.into();
            writeln!(out, "{object}")?;
        } else {
            let fields = fields(&described, &rates);
            if live {
                // One line, rewritten in place; the terminal's width is asked each time, so
                // a resized window gets a line that fits it.
                let width = console::Term::stdout()
                    .size_checked()
                    .map_or(80, |(_rows, columns)| usize::from(columns));
                write!(out, "\r\x1b[K{}", fit(&fields, width))?;
            } else {
                writeln!(out, "{}", fit(&fields, usize::MAX))?;
            }
        }
        out.flush()?;
        previous = Some((now, described.snapshot));
        shown += 1;
        if count.is_some_and(|n| shown >= n) {
            break;
        }
        let due = now + interval;
        while Instant::now() < due {
            if signals.requested() {
                break;
            }
            std::thread::sleep((due - Instant::now()).min(Duration::from_millis(50)));
        }
        if signals.requested() {
            break;
        }
    }
    if live {
        writeln!(out)?;
    }
    Ok(())
}

/// The parts of a refresh's line, most important first: what flows in and out, the lag, how
/// full, the stream, the sides, and the ring's path (known to whoever started the watch).
fn fields(described: &Described, rates: &Rates) -> Vec<String> {
    let s = &described.snapshot;
    let attached = |live: bool| if live { "attached" } else { "none" };
    vec![
        format!(
            "in {} msg/s {}/s",
            per_sec(rates.messages_in),
            rate_in_bytes(rates.bytes_in)
        ),
        format!(
            "out {} msg/s {}/s",
            per_sec(rates.messages_out),
            rate_in_bytes(rates.bytes_out)
        ),
        format!("lag {} messages ({:#})", s.messages, Size(s.payload_bytes)),
        format!("{:.0}% full", s.fill_percent()),
        format!("stream: {}", describe::stream(&s.stream)),
        format!("producer: {}", attached(s.producer.live)),
        if s.consumer_slots > 1 {
            describe::consumers_brief(s)
        } else {
            format!("consumer: {}", attached(s.consumer.live))
        },
        described.path.clone(),
    ]
}

/// The fields joined by two spaces, leaving out the least important ones (from the end)
/// until the line is shorter than `width` columns (a line that fills the last column makes
/// some terminals wrap); the first is cut if even it alone does not fit.
fn fit(fields: &[String], width: usize) -> String {
    let room = width.saturating_sub(1);
    let (mut line, mut columns) = (String::new(), 0);
    for field in fields {
        let separator = if line.is_empty() { "" } else { "  " };
        let added = separator.len() + field.chars().count();
        if columns + added > room {
            break;
        }
        line.push_str(separator);
        line.push_str(field);
        columns += added;
    }
    if line.is_empty() {
        if let Some(first) = fields.first() {
            line = first.chars().take(room).collect();
        }
    }
    line
}

/// Traffic between two snapshots of one ring, per second.
#[derive(Debug, Default, Clone, Copy)]
struct Rates {
    /// Messages published.
    messages_in: f64,
    /// Messages released by the consumer.
    messages_out: f64,
    /// Payload bytes published (as everywhere else: record headers and padding not counted).
    bytes_in: f64,
    /// Payload bytes released.
    bytes_out: f64,
}

impl Rates {
    /// The rates from `before` to `after`, `elapsed` apart. A counter that went backwards
    /// (the ring was replaced, or its file rewritten) counts as no traffic.
    fn between(before: &Snapshot, after: &Snapshot, elapsed: Duration) -> Rates {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let rate = |from: u64, to: u64| to.saturating_sub(from) as f64 / secs;
        Rates {
            messages_in: rate(before.published_messages, after.published_messages),
            messages_out: rate(before.released_messages, after.released_messages),
            bytes_in: rate(before.published_bytes, after.published_bytes),
            bytes_out: rate(before.released_bytes, after.released_bytes),
        }
    }
}

/// A rate in messages per second, short: `950`, `12.5k`, `3.20M`.
fn per_sec(rate: f64) -> String {
    match rate {
        r if r >= 1e6 => format!("{:.2}M", r / 1e6),
        r if r >= 1e4 => format!("{:.1}k", r / 1e3),
        r => format!("{r:.0}"),
    }
}

/// A rate in bytes per second, short (`610.4 MiB`): the caller adds the `/s`.
fn rate_in_bytes(rate: f64) -> String {
    format!("{:#}", Size(rate as u64))
}

#[cfg(test)]
mod tests {
    use super::fit;

    fn fields() -> Vec<String> {
        [
            "in 3.20M msg/s 195.3 MiB/s",
            "out 3.20M msg/s 195.3 MiB/s",
            "lag 12 messages",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn a_line_keeps_the_fields_that_fit_in_order() {
        assert_eq!(
            fit(&fields(), 200),
            "in 3.20M msg/s 195.3 MiB/s  out 3.20M msg/s 195.3 MiB/s  lag 12 messages"
        );
        // 26 + 2 + 27 = 55 columns: the third field would make 72, past a width of 60.
        assert_eq!(
            fit(&fields(), 60),
            "in 3.20M msg/s 195.3 MiB/s  out 3.20M msg/s 195.3 MiB/s"
        );
        // Shorter than the width: 55 fits in 56 columns, not in 55 (the last column stays
        // empty).
        assert_eq!(fit(&fields(), 56).len(), 55);
        assert_eq!(fit(&fields(), 55), "in 3.20M msg/s 195.3 MiB/s");
    }

    #[test]
    fn the_first_field_is_cut_when_nothing_else_fits() {
        assert_eq!(fit(&fields(), 11), "in 3.20M m");
        assert_eq!(fit(&fields(), 0), "");
        assert_eq!(fit(&[], 80), "");
    }
}
