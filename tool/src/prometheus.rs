//! `ringfile stat --prometheus`: rings as metrics in the Prometheus text exposition format
//! (version 0.0.4), for node_exporter's textfile collector or any scraper.
//!
//! Every sample carries the label `ring` (the path). The samples of one metric are written
//! together, under one `# HELP` and `# TYPE`, as the format asks, whatever the number of
//! rings. Bytes are payload bytes, as everywhere in the tool.

use crate::describe::Described;
use ringfile::StreamState;
use std::fmt::Write as _;

/// One ring as a scrape sees it: its description, or why it could not be read.
pub enum Scraped {
    /// Read: its figures.
    Ring(Box<Described>),
    /// Damaged or unreadable: only `ringfile_readable 0` is written for it.
    Unreadable(String),
}

impl Scraped {
    fn path(&self) -> &str {
        match self {
            Scraped::Ring(d) => &d.path,
            Scraped::Unreadable(path) => path,
        }
    }
}

/// The stream states, as the `state` label of `ringfile_stream_state`.
const STATES: [&str; 5] = ["open", "closed", "aborted", "producer_died", "idle"];

fn state(s: &StreamState) -> &'static str {
    match s {
        StreamState::Open => "open",
        StreamState::Closed => "closed",
        StreamState::Aborted(_) => "aborted",
        StreamState::ProducerDied { .. } => "producer_died",
        _ => "idle",
    }
}

/// A label value, escaped as the format asks (backslash, double quote, line feed).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics with one sample per readable ring: name, type, help, and the value.
type Gauge = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Described) -> f64,
);

const PER_RING: [Gauge; 10] = [
    (
        "ringfile_capacity_bytes",
        "gauge",
        "Data capacity of the ring.",
        |d| d.snapshot.capacity as f64,
    ),
    (
        "ringfile_waiting_messages",
        "gauge",
        "Messages published and not yet released: the consumer's lag.",
        |d| d.snapshot.messages as f64,
    ),
    (
        "ringfile_waiting_bytes",
        "gauge",
        "Payload bytes of the waiting messages.",
        |d| d.snapshot.payload_bytes as f64,
    ),
    (
        "ringfile_fill_ratio",
        "gauge",
        "Fraction of the data region the waiting records take (0 to 1).",
        |d| d.snapshot.fill_percent() / 100.0,
    ),
    (
        "ringfile_published_messages_total",
        "counter",
        "Messages published by every producer since the ring was created.",
        |d| d.snapshot.published_messages as f64,
    ),
    (
        "ringfile_released_messages_total",
        "counter",
        "Messages released by every consumer since the ring was created.",
        |d| d.snapshot.released_messages as f64,
    ),
    (
        "ringfile_published_bytes_total",
        "counter",
        "Payload bytes of the messages published since the ring was created.",
        |d| d.snapshot.published_bytes as f64,
    ),
    (
        "ringfile_released_bytes_total",
        "counter",
        "Payload bytes of the messages released since the ring was created.",
        |d| d.snapshot.released_bytes as f64,
    ),
    (
        "ringfile_producer_attached",
        "gauge",
        "1 while a live producer holds the ring.",
        |d| f64::from(u8::from(d.snapshot.producer.live)),
    ),
    (
        "ringfile_consumer_attached",
        "gauge",
        "1 while a live consumer holds the ring.",
        |d| f64::from(u8::from(d.snapshot.consumer.live)),
    ),
];

/// A metric's `# HELP` and `# TYPE` lines, written once before its samples.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    writeln!(out, "# HELP {name} {help}").unwrap();
    writeln!(out, "# TYPE {name} {kind}").unwrap();
}

/// The exposition of `rings`.
pub fn exposition(rings: &[Scraped]) -> String {
    let mut out = String::new();
    let readable = || {
        rings.iter().filter_map(|ring| match ring {
            Scraped::Ring(d) => Some(d),
            Scraped::Unreadable(_) => None,
        })
    };
    for (name, kind, help, value) in PER_RING {
        header(&mut out, name, kind, help);
        for d in readable() {
            writeln!(out, "{name}{{ring=\"{}\"}} {}", label(&d.path), value(d)).unwrap();
        }
    }
    header(
        &mut out,
        "ringfile_stream_state",
        "gauge",
        "The stream's state: 1 for the current one.",
    );
    for d in readable() {
        let now = state(&d.snapshot.stream);
        for s in STATES {
            writeln!(
                out,
                "ringfile_stream_state{{ring=\"{}\",state=\"{s}\"}} {}",
                label(&d.path),
                u8::from(s == now)
            )
            .unwrap();
        }
    }
    header(
        &mut out,
        "ringfile_readable",
        "gauge",
        "1 if the ring could be read, 0 if it is damaged or this user may not read it.",
    );
    for ring in rings {
        let up = u8::from(matches!(ring, Scraped::Ring(_)));
        writeln!(
            out,
            "ringfile_readable{{ring=\"{}\"}} {up}",
            label(ring.path())
        )
        .unwrap();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
