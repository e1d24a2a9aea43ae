//! Parsing the command line: clap's usage errors made short (one error line, then the usage
//! line), with the JSON failure object under `--json`, and checks of options that would do
//! nothing.

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::EXIT_USAGE;

/// Whether `--json` is among the arguments, before they are parsed (a usage error must
/// honour it too).
pub fn json_requested() -> bool {
    std::env::args_os().skip(1).any(|arg| arg == "--json")
}

/// Parses the command line into `C`, or exits: with clap's output for `--help` and
/// `--version`, else with a short usage error (status 2).
pub fn parse<C: CommandFactory + FromArgMatches>(program: &'static str) -> (C, ArgMatches) {
    let parsed = C::command()
        .try_get_matches()
        .and_then(|matches| C::from_arg_matches(&matches).map(|cli| (cli, matches)));
    match parsed {
        Ok(parsed) => parsed,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => exit_usage::<C>(program, &one_line(&e.to_string()), json_requested()),
        },
    }
}

/// Prints a usage error as `program: message` and the usage line (and the JSON failure
/// object under `--json`), then exits with status 2.
pub fn exit_usage<C: CommandFactory>(program: &str, message: &str, json: bool) -> ! {
    let usage = C::command().render_usage().to_string();
    eprintln!("{program}: {message}");
    eprintln!("{} (see {program} --help)", usage.trim_end());
    if json {
        eprintln!(
            "{}",
            serde_json::json!({"program": program, "error": message, "exit": EXIT_USAGE})
        );
    }
    std::process::exit(EXIT_USAGE)
}

/// clap's error text as one line: its first paragraph without the `error:` prefix, with a
/// tip in parentheses, and without the usage and "for more information" lines.
fn one_line(rendered: &str) -> String {
    let mut message = String::new();
    let mut tip = String::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if let Some(rest) = line.strip_prefix("tip:") {
            tip = rest.trim().to_string();
        } else if !line.is_empty() {
            if !message.is_empty() {
                message.push(' ');
            }
            message.push_str(line.strip_prefix("error:").unwrap_or(line).trim());
        }
    }
    if !tip.is_empty() {
        message.push_str(&format!(" ({tip})"));
    }
    message
}

/// Whether the option with this id was given on the command line (not a default).
pub fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(matches.value_source(id), Some(ValueSource::CommandLine))
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\nUsage: producer [OPTIONS] <PATH>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "unexpected argument '--bogus' found (to pass '--bogus' as a value, use '-- --bogus')"
        );
        let rendered = "error: the following required arguments were not provided:\n  <PATH>\n\nUsage: consumer <PATH>\n";
        assert_eq!(
            one_line(rendered),
            "the following required arguments were not provided: <PATH>"
        );
    }
}
