//! A ring's state in words and in JSON: what `stat` prints, and what `ls` and `watch` take
//! from it.

use ringfile::{Holder, Snapshot, StreamState};
use ringfile_cli::size::Size;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Everything `stat` reports about one ring.
pub struct Described {
    pub path: String,
    pub snapshot: Snapshot,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `tmpfs` (memory) or `disk`.
    pub storage: &'static str,
}

impl Described {
    /// Inspects the ring at `path` now.
    pub fn of(path: &Path) -> ringfile::Result<Described> {
        let inspector = ringfile::Inspector::open(path)?;
        let snapshot = inspector.snapshot()?;
        let meta = inspector
            .file()
            .metadata()
            .map_err(|error| ringfile::Error::Io {
                path: path.to_path_buf(),
                op: "stat",
                error,
            })?;
        Ok(Described {
            path: path.display().to_string(),
            snapshot,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            storage: storage(inspector.file()),
        })
    }

    /// The multi-line report of `stat`.
    pub fn to_text(&self) -> String {
        let s = &self.snapshot;
        format!(
            "{path}\n  \
             capacity:  {capacity:#} (largest message {max} bytes)\n  \
             waiting:   {messages} messages, {payload} of payload; {used} used, {fill:.1}% full\n  \
             positions: head {head}, tail {tail}\n  \
             totals:    {published} messages ({published_bytes:#}) published, {released} ({released_bytes:#}) released since creation\n  \
             producer:  {producer}\n  \
             {consumer}\n  \
             stream:    {stream}\n  \
             created:   {created} by pid {creator}\n  \
             file:      mode {mode:04o}, owner uid {uid} gid {gid}, {storage}",
            path = self.path,
            capacity = Size(s.capacity),
            max = s.max_message_len,
            messages = s.messages,
            payload = Size(s.payload_bytes),
            used = Size(s.used_bytes()),
            fill = s.fill_percent(),
            head = s.head,
            tail = s.tail,
            published = s.published_messages,
            published_bytes = Size(s.published_bytes),
            released = s.released_messages,
            released_bytes = Size(s.released_bytes),
            producer = holder(&s.producer),
            consumer = consumers_text(s),
            stream = stream(&s.stream),
            created = utc(s.created_unix_ns),
            creator = s.creator_pid,
            mode = self.mode,
            uid = self.uid,
            gid = self.gid,
            storage = match self.storage {
                "tmpfs" => "tmpfs (memory)",
                _ => "on disk",
            },
        )
    }

    /// The columns of the ring's line in `ls`.
    pub fn to_fields(&self) -> Vec<String> {
        let s = &self.snapshot;
        vec![
            self.path.clone(),
            format!("{:#}", Size(s.capacity)),
            format!(
                "{} waiting ({}), {:.0}% full",
                s.messages,
                Size(s.payload_bytes),
                s.fill_percent()
            ),
            format!("producer {}", short_holder(&s.producer)),
            if s.consumer_slots > 1 {
                consumers_brief(s)
            } else {
                format!("consumer {}", short_holder(&s.consumer))
            },
            stream(&s.stream),
        ]
    }

    /// The JSON object of `stat --json` (and of each `ls --json` entry).
    pub fn to_json(&self) -> Value {
        let s = &self.snapshot;
        let holder = |h: &Holder| json!({"pid": h.pid, "live": h.live});
        let (state, detail) = match &s.stream {
            StreamState::Open => ("open", None),
            StreamState::Closed => ("closed", None),
            StreamState::Aborted(reason) => ("aborted", Some(reason.clone())),
            StreamState::ProducerDied { .. } => ("producer died", None),
            StreamState::Idle => ("idle", None),
            _ => ("unknown", None),
        };
        json!({
            "path": self.path,
            "capacity": s.capacity,
            "max_message_len": s.max_message_len,
            "messages": s.messages,
            "payload_bytes": s.payload_bytes,
            "used_bytes": s.used_bytes(),
            "fill_percent": s.fill_percent(),
            "head": s.head,
            "tail": s.tail,
            "published_messages": s.published_messages,
            "published_bytes": s.published_bytes,
            "released_messages": s.released_messages,
            "released_bytes": s.released_bytes,
            "producer": holder(&s.producer),
            "consumer": holder(&s.consumer),
            "consumer_slots": s.consumer_slots,
            "consumers": s.consumers.iter().map(|c| json!({
                "name": c.name,
                "pid": c.holder.pid,
                "live": c.holder.live,
                "lossy": c.lossy,
                "turned_lossy": c.turned_lossy,
                "missed": c.missed,
                "retain_ns": c.retain_ns,
                "max_lag": c.max_lag,
                "position": c.position,
                "lag_messages": c.lag_messages,
                "lag_bytes": c.lag_bytes,
                "released_messages": c.released_messages,
            })).collect::<Vec<_>>(),
            "stream": state,
            "abort_reason": detail,
            "created_unix_ns": s.created_unix_ns,
            "creator_pid": s.creator_pid,
            "mode": format!("{:04o}", self.mode),
            "uid": self.uid,
            "gid": self.gid,
            "storage": self.storage,
        })
    }
}

/// The `consumer:` line of a ring of one consumer, or the `consumers:` block of a ring with
/// consumer slots: one line per registered name (its holder, mode, position and lag).
fn consumers_text(s: &Snapshot) -> String {
    if s.consumer_slots <= 1 {
        return format!("consumer:  {}", holder(&s.consumer));
    }
    let mut text = format!(
        "consumers: {} registered of {} slots",
        s.consumers.len(),
        s.consumer_slots
    );
    for c in &s.consumers {
        let kept = if c.lossy {
            String::new()
        } else if c.retain_ns != 0 {
            format!(
                ": holds the producer back until evicted (it retains the name {} after its holder is gone)",
                ringfile_cli::size::Duration(std::time::Duration::from_nanos(c.retain_ns))
            )
        } else {
            ": holds the producer back until `ringfile evict`".to_string()
        };
        let who = match (c.holder.live, c.holder.pid) {
            (true, Some(pid)) => format!("pid {pid}, attached"),
            (true, None) => "attached".to_string(),
            (false, Some(pid)) => format!("dead (the last holder was pid {pid}){kept}"),
            (false, None) => "never attached".to_string(),
        };
        let lag = match (c.lag_messages, c.lag_bytes) {
            (Some(m), Some(b)) => format!("lag {m} messages ({})", Size(b)),
            _ => "lag unknown (behind the oldest message held)".to_string(),
        };
        let mode = match (c.lossy, c.turned_lossy) {
            (true, true) => "lossy (turned lossy: it lagged more than its max lag)".to_string(),
            (true, false) => "lossy".to_string(),
            (false, _) if c.max_lag != 0 => format!("lossless up to a lag of {}", Size(c.max_lag)),
            (false, _) => "lossless".to_string(),
        };
        let missed = if c.lossy || c.missed != 0 {
            format!(", missed {}", c.missed)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "\n    {:?}: {who}; {mode}, position {}, {lag}{missed}",
            c.name, c.position
        ));
    }
    text
}

/// Every registered consumer of a ring with consumer slots, in one field: what `ls` and
/// `watch` show (name, pid or dead, lossless or lossy, position, lag in messages and bytes).
pub fn consumers_brief(s: &Snapshot) -> String {
    if s.consumers.is_empty() {
        return format!("consumers: none of {} slots", s.consumer_slots);
    }
    let each: Vec<String> = s
        .consumers
        .iter()
        .map(|c| {
            let who = match (c.holder.live, c.holder.pid) {
                (true, Some(pid)) => format!("pid {pid}"),
                (true, None) => "attached".to_string(),
                (false, _) => "dead".to_string(),
            };
            let mode = if c.lossy { "lossy" } else { "lossless" };
            let lag = match (c.lag_messages, c.lag_bytes) {
                (Some(m), Some(b)) => format!("lag {m} ({})", Size(b)),
                _ => "lag unknown".to_string(),
            };
            format!("{} {who} {mode} at {} {lag}", c.name, c.position)
        })
        .collect();
    format!("consumers: {}", each.join(", "))
}

fn holder(h: &Holder) -> String {
    match (h.live, h.pid) {
        (true, Some(pid)) => format!("pid {pid}, attached"),
        (true, None) => "attached".to_string(),
        (false, Some(pid)) => format!("none attached (the last was pid {pid})"),
        (false, None) => "none attached, ever".to_string(),
    }
}

fn short_holder(h: &Holder) -> String {
    match (h.live, h.pid) {
        (true, Some(pid)) => pid.to_string(),
        (true, None) => "attached".to_string(),
        (false, _) => "-".to_string(),
    }
}

/// An abort's reason as it reads in a line: never empty (a full ring may have kept none).
pub fn reason_text(reason: &str) -> &str {
    if reason.is_empty() {
        "no reason recorded"
    } else {
        reason
    }
}

/// The stream state in words.
pub fn stream(state: &StreamState) -> String {
    match state {
        StreamState::Open => "open".to_string(),
        StreamState::Closed => "closed (end of stream not yet read)".to_string(),
        StreamState::Aborted(reason) => format!("failed: {} (not yet read)", reason_text(reason)),
        StreamState::ProducerDied { pid: Some(pid) } => {
            format!("producer (pid {pid}) died without closing it")
        }
        StreamState::ProducerDied { pid: None } => "producer died without closing it".to_string(),
        StreamState::Idle => "idle (no producer attached)".to_string(),
        _ => "unknown".to_string(),
    }
}

/// `tmpfs` if the file lives in memory (tmpfs, or a memfd), else `disk`.
fn storage(file: &std::fs::File) -> &'static str {
    use std::os::fd::AsRawFd;
    // SAFETY: fstatfs writes one statfs struct, which outlives the call.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the descriptor is open for the duration of the call.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) };
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    if rc == 0 && fs.f_type as i64 == TMPFS_MAGIC {
        "tmpfs"
    } else {
        "disk"
    }
}

/// A time in ns since the Unix epoch, as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(unix_ns: u64) -> String {
    if unix_ns == 0 {
        return "unknown".to_string();
    }
    let secs = unix_ns / 1_000_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (Howard Hinnant's algorithm), for dates after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(1), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000_000_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_521_600_000_000_000), "2026-11-24 12:00:00 UTC");
    }
}
