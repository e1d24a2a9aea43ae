//! The summary each program prints at exit: text, or one JSON object with `--json`.

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    /// `producer` or `consumer`.
    pub program: &'static str,
    /// Messages sent or received.
    pub messages: u64,
    /// Payload bytes sent or received.
    pub bytes: u64,
    /// From the first message to the last (or the whole run if there were none).
    pub elapsed: Duration,
    /// How the run ended: `end of stream`, `producer died`, `count reached`, `signal`...
    pub ended: &'static str,
    /// Verification errors, under `--verify`.
    pub errors: Option<u64>,
    /// One-way latency histogram in ns, under `--latency`.
    pub latency: Option<Histogram<u64>>,
    /// Messages a lossy consumer missed (overtaken by the producer); `None` for a consumer
    /// that cannot miss any (and for the producer).
    pub missed: Option<u64>,
}

impl Summary {
    fn rates(&self) -> (f64, f64, f64) {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (
                secs,
                self.messages as f64 / secs,
                self.bytes as f64 / secs / 1e6,
            )
        } else {
            (secs, 0.0, 0.0)
        }
    }

    /// The summary as a JSON object.
    pub fn to_json(&self) -> Value {
        let (secs, rate, mbps) = self.rates();
        let mut obj = Map::new();
        obj.insert("program".into(), json!(self.program));
        obj.insert("messages".into(), json!(self.messages));
        obj.insert("bytes".into(), json!(self.bytes));
        obj.insert("seconds".into(), json!(secs));
        obj.insert("messages_per_sec".into(), json!(rate));
        obj.insert("mb_per_sec".into(), json!(mbps));
        obj.insert("ended".into(), json!(self.ended));
        if let Some(errors) = self.errors {
            obj.insert("errors".into(), json!(errors));
        }
        if let Some(missed) = self.missed {
            obj.insert("missed".into(), json!(missed));
        }
        if let Some(h) = &self.latency {
            obj.insert(
                "latency_ns".into(),
                json!({
                    "count": h.len(),
                    "min": h.min(),
                    "p50": h.value_at_quantile(0.50),
                    "p90": h.value_at_quantile(0.90),
                    "p99": h.value_at_quantile(0.99),
                    "p999": h.value_at_quantile(0.999),
                    "max": h.max(),
                }),
            );
        }
        Value::Object(obj)
    }

    /// The summary as human-readable lines.
    pub fn to_text(&self) -> String {
        let (secs, rate, mbps) = self.rates();
        let mut text = format!(
            "{}: {} messages, {} in {:.3} s: {:.0} messages/s, {:.1} MB/s ({})",
            self.program,
            self.messages,
            crate::size::Size(self.bytes),
            secs,
            rate,
            mbps,
            self.ended
        );
        if let Some(missed) = self.missed.filter(|&m| m > 0) {
            text.push_str(&format!(
                "\n{}: missed {missed} messages (overtaken by the producer)",
                self.program
            ));
        }
        if let Some(errors) = self.errors {
            text.push_str(&format!("\n{}: verify: {errors} errors", self.program));
        }
        if let Some(h) = &self.latency {
            if h.is_empty() {
                text.push_str(&format!("\n{}: latency: no samples", self.program));
            } else {
                let values = [
                    h.value_at_quantile(0.50),
                    h.value_at_quantile(0.90),
                    h.value_at_quantile(0.99),
                    h.value_at_quantile(0.999),
                    h.max(),
                ];
                let (unit, shown) = in_one_unit(&values);
                text.push_str(&format!(
                    "\n{}: latency (one-way, {unit}): p50 {} p90 {} p99 {} p99.9 {} max {}",
                    self.program, shown[0], shown[1], shown[2], shown[3], shown[4],
                ));
            }
        }
        text
    }

    /// Prints the summary to stderr, as JSON on the last line if `json`.
    pub fn print(&self, json: bool) {
        if json {
            eprintln!("{}", self.to_json());
        } else {
            eprintln!("{}", self.to_text());
        }
    }
}

/// Durations in ns, all in one unit (the most readable for the first, the median): the unit
/// and the numbers.
///
/// ```
/// use ringfile_cli::summary::in_one_unit;
/// assert_eq!(in_one_unit(&[850, 2_000, 1_500_000]), ("ns", vec!["850".into(), "2000".into(), "1500000".into()]));
/// assert_eq!(in_one_unit(&[12_300, 2_500_000]), ("µs", vec!["12.3".into(), "2500.0".into()]));
/// ```
pub fn in_one_unit(ns: &[u64]) -> (&'static str, Vec<String>) {
    let first = ns.first().copied().unwrap_or(0);
    let (unit, divisor) = match first {
        0..=9_999 => ("ns", 1.0),
        10_000..=9_999_999 => ("µs", 1e3),
        _ => ("ms", 1e6),
    };
    let shown = ns
        .iter()
        .map(|&v| {
            if divisor == 1.0 {
                v.to_string()
            } else {
                format!("{:.1}", v as f64 / divisor)
            }
        })
        .collect();
    (unit, shown)
}

/// A latency histogram: 1 ns to 1 hour, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_contract_keys() {
        let mut h = latency_histogram();
        h.record(1500).unwrap();
        let s = Summary {
            program: "consumer",
            messages: 3,
            bytes: 30,
            elapsed: Duration::from_millis(10),
            ended: "end of stream",
            errors: Some(0),
            latency: Some(h),
            missed: None,
        };
        let v = s.to_json();
        for key in ["messages", "bytes", "seconds", "errors"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        for key in ["p50", "p99", "p999", "max"] {
            assert!(v["latency_ns"].get(key).is_some(), "{key}");
        }
        assert!(!v.to_string().contains('\n'));
        assert!(s.to_text().contains("p99.9"));
    }
}
