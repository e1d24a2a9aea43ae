//! What the `producer` and `consumer` programs share: the options both take, opening the
//! ring, the generated-message format, the summary, progress display and signal handling.
//! All ring logic lives in the `ringfile` crate; this crate is only the command-line layer.

#![deny(missing_docs)]

pub mod commands;
pub mod framing;
pub mod generated;
pub mod options;
pub mod program;
pub mod progress;
pub mod signals;
pub mod size;
pub mod summary;
pub mod usage;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a runtime failure (bad ring file, verification errors, producer died, I/O).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for a usage error.
pub const EXIT_USAGE: i32 = 2;

/// How often a program that waits (for room, data, input or a due time) looks for signals.
pub const SIGNAL_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Prints `program: error` as one line (the whole cause chain, no backtrace) and exits with
/// `code`. With `json`, a JSON object `{"program", "error", "exit"}` follows on the last line.
pub fn fail(program: &str, error: &anyhow::Error, code: i32, json: bool) -> ! {
    eprintln!("{program}: {error:#}");
    if json {
        eprintln!(
            "{}",
            serde_json::json!({"program": program, "error": format!("{error:#}"), "exit": code})
        );
    }
    std::process::exit(code)
}
