//! The skeleton every program's `main` shares: parse the command line (a short usage error
//! otherwise), install the SIGBUS handler, and exit with the status and the last line the
//! programs document — one line naming the program and the error, and under `--json` the
//! JSON failure object after it.

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::signals::Signals;
use crate::{fail, usage, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// A problem with the options, found after parsing (for example once the ring is open and
/// its maximum message size is known): the program exits with the usage status, 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// One run of a program: its name and whether it was asked for JSON.
#[derive(Clone, Copy, Debug)]
pub struct Program {
    name: &'static str,
    json: bool,
}

/// For a program whose standard output is only a report (the `ringfile` tool): a reader that
/// goes away (`ringfile ls | head -1`) ends the program quietly, by SIGPIPE, as it ends `ls`
/// or `cat`, instead of a panic in `println!` or an error about a broken pipe. Call it first.
/// Not for `consumer`: its output is the stream, and a failed write must be reported (and
/// leaves the messages unreleased).
pub fn end_quietly_when_stdout_closes() {
    // SAFETY: signal(2) with SIG_DFL installs no handler (no code runs at the signal); Rust's
    // runtime set SIGPIPE to ignored, and restoring the default touches nothing else.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

impl Program {
    /// Parses the command line into `C` (exiting with clap's output for `--help` and
    /// `--version`, or a usage error) and installs the SIGBUS handler, so that a ring file
    /// truncated under the program is a one-line error too.
    pub fn start<C: CommandFactory + FromArgMatches>(
        name: &'static str,
    ) -> (Program, C, ArgMatches) {
        let (cli, matches) = usage::parse::<C>(name);
        let program = Program {
            name,
            json: usage::json_requested(),
        };
        let handler = ringfile::SigbusHandler::new()
            .program(name)
            .json_line(program.json);
        if let Err(e) = handler.install() {
            program.fail(&anyhow::Error::from(e), EXIT_FAILURE);
        }
        (program, cli, matches)
    }

    /// Whether the summary and errors are to be JSON too.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Exits with a usage error: `problem`, then `C`'s usage line.
    pub fn usage_error<C: CommandFactory>(&self, problem: &str) -> ! {
        usage::exit_usage::<C>(self.name, problem, self.json)
    }

    /// Installs the handlers of SIGINT, SIGTERM and SIGHUP (see [`Signals::install`]), or
    /// exits if that fails.
    pub fn signals(&self, consequence: &str) -> Signals {
        Signals::install(self.name, consequence, self.json)
            .unwrap_or_else(|e| self.fail(&anyhow::Error::from(e), EXIT_FAILURE))
    }

    /// Exits with `result`: its status, or the error's one line (status 2 for a
    /// [`UsageError`], 1 for anything else).
    pub fn exit(&self, result: anyhow::Result<i32>) -> ! {
        match result {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                let code = if e.is::<UsageError>() {
                    EXIT_USAGE
                } else {
                    EXIT_FAILURE
                };
                self.fail(&e, code)
            }
        }
    }

    /// As [`exit`](Self::exit) for a run with no status of its own: 0 if it succeeded.
    pub fn exit_with(&self, result: anyhow::Result<()>) -> ! {
        self.exit(result.map(|()| EXIT_OK))
    }

    /// Prints `error` as the program's last line(s) and exits with `code`.
    pub fn fail(&self, error: &anyhow::Error, code: i32) -> ! {
        fail(self.name, error, code, self.json)
    }
}
