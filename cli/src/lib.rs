//! What the `producer` and `consumer` programs share: the options both take, opening the
//! ring, the generated-message format, the summary, progress display and signal handling.
//! All ring logic lives in the `ringfile` crate; this crate is only the command-line layer.

#![deny(missing_docs)]

pub mod generated;
pub mod options;
pub mod progress;
pub mod signals;
pub mod size;
pub mod summary;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a runtime failure (bad ring file, verification errors, producer died, I/O).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for a usage error.
pub const EXIT_USAGE: i32 = 2;

/// Prints `program: error` as one line (the whole cause chain, no backtrace) and exits with
/// `code`.
pub fn fail(program: &str, error: &anyhow::Error, code: i32) -> ! {
    eprintln!("{program}: {error:#}");
    std::process::exit(code)
}
