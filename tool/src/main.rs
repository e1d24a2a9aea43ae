//! `ringfile`: the operator's tool. Inspects rings without taking part in them (`stat`,
//! `watch`, `ls`, `peek`), creates them ahead of time (`create`) and removes them (`rm`).

mod describe;
mod prometheus;
mod watch;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use describe::Described;
use ringfile::{Error, Inspector, Peeked, Ring};
use ringfile_cli::framing::Framing;
use ringfile_cli::program::Program;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  ringfile stat /dev/shm/demo             how full, who is attached, the stream's state
  ringfile watch /dev/shm/demo            the same, live: rates in and out, consumer lag
  ringfile ls                             every ring in /dev/shm
  ringfile peek -n 5 /dev/shm/demo        the next 5 messages, without consuming them
  ringfile create --capacity 16MiB /dev/shm/demo
  ringfile rm /dev/shm/demo               refused while a producer or consumer is attached

stat, watch, ls and peek take no role and write nothing to a ring: they cannot disturb a
running stream. create makes a new ring; rm removes one (not one in use, unless --force).
Exit status: 0 success, 1 failure (a damaged ring, a ring in use for rm), 2 usage error.";

/// Inspect, watch, list, peek at, create and remove ringfile rings.
#[derive(Parser, Debug)]
#[command(name = "ringfile", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Capacity, messages and bytes waiting, fill, positions, producer and consumer (pid,
    /// attached or not), stream state, creation, file mode and owner, memory or disk.
    Stat {
        /// The ring file (with --prometheus, also a directory: every ring in it).
        path: PathBuf,
        /// One JSON object on stdout.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Metrics in the Prometheus text exposition format, for node_exporter's textfile
        /// collector or a scraper: capacity, waiting messages and payload bytes, fill,
        /// published and released totals, attached sides, stream state, readable.
        #[arg(long)]
        prometheus: bool,
    },
    /// `stat`, refreshed: messages/s and payload bytes/s in (published) and out (released),
    /// and the consumer's lag. On a terminal, one line rewritten in place and cut to the
    /// terminal's width (the least important fields go first); otherwise one line (or JSON
    /// object) per interval. Bytes are payload bytes, as in `stat`: record headers and
    /// padding are not counted. Stops on SIGINT/SIGTERM.
    Watch {
        /// The ring file.
        path: PathBuf,
        /// Seconds between refreshes.
        #[arg(long, default_value = "1", value_parser = parse_interval)]
        interval: f64,
        /// Stop after this many refreshes.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// One JSON object per interval on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Every ring file in DIR (by its magic), one line each; other files are skipped,
    /// damaged rings listed as such.
    Ls {
        /// The directory [default: /dev/shm].
        dir: Option<PathBuf>,
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Prints up to N waiting messages without consuming them, in the consumer's framing.
    Peek {
        /// The ring file.
        path: PathBuf,
        /// How many messages at most.
        #[arg(short = 'n', long = "count", default_value = "10", value_name = "N")]
        count: usize,
        /// Output framing, as the consumer's (when the output is not a terminal, or the
        /// message is text).
        #[arg(long, value_enum, default_value = "lines")]
        framing: Framing,
        /// Show every message as a hex dump (offset, bytes, printable characters). On a
        /// terminal, messages that are not text are shown so anyway, and an empty ring
        /// says "(empty)".
        #[arg(long)]
        hex: bool,
    },
    /// Removes rings no process is attached to (and leftover temporary files of creators
    /// that died). Refuses a ring in use, naming the pid, unless --force.
    Rm {
        /// The ring files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Remove rings in use, and damaged rings, too (the processes attached keep their
        /// mapping; new ones create a new ring).
        #[arg(long)]
        force: bool,
    },
    /// Creates a ring ahead of time (e.g. from a service manager), so that neither side
    /// needs to name the capacity.
    Create {
        /// The ring file (must not exist).
        path: PathBuf,
        /// Data capacity: a power of two such as 64KiB, 16MiB, 1GiB.
        #[arg(long, value_name = "SIZE", value_parser = ringfile_cli::size::parse_capacity)]
        capacity: u64,
        /// Permission bits (octal), applied exactly (the umask does not apply). Attaching
        /// needs read and write: 0600 the owner only, 0660 the file's group too, 0666
        /// everyone; read alone (0640) lets `stat`/`peek` look.
        #[arg(long, value_name = "OCTAL", default_value = "0600", value_parser = ringfile_cli::options::parse_mode)]
        mode: u32,
        /// Consumer slots: each lets one more consumer (`consumer --name NAME`) read every
        /// message, 1 to 256 (1: one consumer, format version 1).
        #[arg(long, value_name = "N", default_value = "1")]
        consumers: u32,
    },
    /// Removes the consumer NAME from a ring with consumer slots: its position stops holding
    /// the producer back and its slot is free for another name. For a consumer gone for good
    /// (a registered name keeps its place when its process dies). Refused while a live
    /// process holds the name.
    Evict {
        /// The ring file.
        path: PathBuf,
        /// The consumer's name.
        name: String,
    },
    /// Prints a shell completion script for `ringfile`, `producer` or `consumer` (e.g.
    /// `ringfile completions bash producer > /etc/bash_completion.d/producer`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        /// The program to complete.
        #[arg(value_enum, default_value = "ringfile")]
        program: ProgramName,
    },
    /// Prints the manual page of `ringfile`, `producer` or `consumer` (roff; e.g. `ringfile
    /// man producer | man -l -`).
    Man {
        /// The program it describes.
        #[arg(value_enum, default_value = "ringfile")]
        program: ProgramName,
    },
}

/// The programs whose options `completions` and `man` describe.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ProgramName {
    /// This tool.
    Ringfile,
    /// The `producer` program.
    Producer,
    /// The `consumer` program.
    Consumer,
}

impl ProgramName {
    /// The program's clap definition and its name.
    fn command(self) -> (clap::Command, &'static str) {
        use clap::CommandFactory;
        match self {
            ProgramName::Ringfile => (Cli::command(), "ringfile"),
            ProgramName::Producer => (ringfile_cli::commands::producer::Cli::command(), "producer"),
            ProgramName::Consumer => (ringfile_cli::commands::consumer::Cli::command(), "consumer"),
        }
    }
}

fn parse_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if (0.01..=86_400.0).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "'{text}' is not a number of seconds from 0.01 to 86400"
        )),
    }
}

fn main() {
    ringfile_cli::program::end_quietly_when_stdout_closes();
    let (program, cli, _) = Program::start::<Cli>("ringfile");
    let result = match cli.command {
        Command::Stat {
            path,
            json,
            prometheus,
        } => {
            if prometheus {
                stat_prometheus(&path)
            } else {
                stat(&path, json)
            }
        }
        Command::Watch {
            path,
            interval,
            count,
            json,
        } => watch::watch(&path, Duration::from_secs_f64(interval), count, json),
        Command::Ls { dir, json } => ls(dir.as_deref().unwrap_or(Path::new("/dev/shm")), json),
        Command::Peek {
            path,
            count,
            framing,
            hex,
        } => peek(&path, count, framing, hex),
        Command::Rm { paths, force } => rm(&paths, force),
        Command::Create {
            path,
            capacity,
            mode,
            consumers,
        } => Ring::options()
            .capacity(capacity)
            .mode(mode)
            .consumers(consumers)
            .create(&path)
            .map(drop)
            .map_err(anyhow::Error::from),
        Command::Evict { path, name } => Ring::open(&path)
            .and_then(|ring| ring.evict(&name))
            .map_err(anyhow::Error::from),
        Command::Completions { shell, program } => {
            let (mut command, name) = program.command();
            clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
            Ok(())
        }
        Command::Man { program } => {
            let (command, _) = program.command();
            clap_mangen::Man::new(command)
                .render(&mut std::io::stdout())
                .context("writing standard output")
        }
    };
    program.exit_with(result)
}

fn stat(path: &Path, json: bool) -> anyhow::Result<()> {
    let described = Described::of(path)?;
    if json {
        println!("{}", described.to_json());
    } else {
        println!("{}", described.to_text());
    }
    Ok(())
}

/// `stat --prometheus`: one ring, or every ring of a directory (damaged and unreadable ones
/// as `ringfile_readable 0`).
fn stat_prometheus(path: &Path) -> anyhow::Result<()> {
    use prometheus::Scraped;
    let rings = if path.is_dir() {
        candidates(path)?
            .into_iter()
            .map(|(p, found)| match found {
                Found::Ring => match Described::of(&p) {
                    Ok(d) => Scraped::Ring(Box::new(d)),
                    Err(_) => Scraped::Unreadable(p.display().to_string()),
                },
                _ => Scraped::Unreadable(p.display().to_string()),
            })
            .collect()
    } else {
        vec![Scraped::Ring(Box::new(Described::of(path)?))]
    };
    print!("{}", prometheus::exposition(&rings));
    Ok(())
}

/// The files of `dir` that are rings or may be (this user cannot read them), sorted by
/// path, with what each is: what `ls` and `stat --prometheus` list.
fn candidates(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Found)>> {
    let mut entries: Vec<(PathBuf, Found)> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .map(|path| {
            let found = found_at(&path);
            (path, found)
        })
        .filter(|(_, found)| *found != Found::Other)
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

fn ls(dir: &Path, json: bool) -> anyhow::Result<()> {
    let mut listed = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut unreadable = 0;
    for (path, found) in candidates(dir)? {
        if found == Found::Unreadable {
            unreadable += 1;
            continue;
        }
        let entry = match Described::of(&path) {
            Ok(described) if json => described.to_json(),
            Ok(described) => {
                rows.push(described.to_fields());
                continue;
            }
            Err(e) if json => {
                serde_json::json!({"path": path.display().to_string(), "damaged": e.to_string()})
            }
            Err(e) => {
                rows.push(vec![path.display().to_string(), format!("damaged: {e}")]);
                continue;
            }
        };
        listed.push(entry);
    }
    print!("{}", aligned(&rows));
    if json {
        println!("{}", serde_json::Value::Array(listed));
    }
    // Said on stderr, so that the listing (and the JSON) stays what it was.
    if unreadable > 0 {
        eprintln!(
            "ringfile: {unreadable} file{} in {} could not be read (permission denied): rings among them are not listed",
            if unreadable == 1 { "" } else { "s" },
            dir.display()
        );
    }
    Ok(())
}

/// `rows` as lines of columns two spaces apart, each column as wide as its widest cell
/// (the last cell of a row is not padded).
fn aligned(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            let n = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(n),
                None => widths.push(n),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// What `ls` finds at a path of the directory.
#[derive(PartialEq)]
enum Found {
    /// A regular file (not followed through a link) that starts with the ring magic.
    Ring,
    /// A regular file this user may not read: a ring or not, it cannot tell.
    Unreadable,
    /// Anything else.
    Other,
}

/// What `path` is, for `ls`. Never blocks: FIFOs and devices are not opened.
fn found_at(path: &Path) -> Found {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Found::Other;
    };
    if !meta.file_type().is_file() {
        return Found::Other;
    }
    let mut magic = [0u8; 8];
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Found::Unreadable,
        Err(_) => Found::Other,
        Ok(mut file) => match file.read_exact(&mut magic) {
            Ok(()) if magic == ringfile::format::MAGIC => Found::Ring,
            _ => Found::Other,
        },
    }
}

fn peek(path: &Path, count: usize, framing: Framing, hex: bool) -> anyhow::Result<()> {
    let inspector = Inspector::open(path)?;
    let terminal = std::io::stdout().is_terminal();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut write_error = None;
    let mut ended = None;
    let mut shown = 0u64;
    let summary = inspector.peek(count, |item| match item {
        Peeked::Message { bytes, .. } if write_error.is_none() => {
            shown += 1;
            // Raw bytes would garble a terminal; a pipe gets them exactly.
            write_error = if hex || (terminal && !is_text(bytes)) {
                hex_dump(&mut out, bytes)
            } else {
                framing.write(&mut out, bytes)
            }
            .err();
        }
        Peeked::Message { .. } => {}
        Peeked::End => ended = Some("end of stream".to_string()),
        Peeked::Aborted(reason) => {
            ended = Some(format!("stream failed: {}", describe::reason_text(&reason)))
        }
        _ => {}
    })?;
    if shown == 0 && ended.is_none() && terminal {
        write_error = write_error.or_else(|| writeln!(out, "(empty)").err());
    }
    if let Some(e) = write_error.or_else(|| out.flush().err()) {
        return Err(e).context("writing standard output");
    }
    if summary.skipped > 0 {
        eprintln!(
            "ringfile: {}: {} messages were consumed while being read, and skipped",
            path.display(),
            summary.skipped
        );
    }
    if let Some(ended) = ended {
        eprintln!("ringfile: {}: ({ended})", path.display());
    }
    Ok(())
}

/// Whether `bytes` reads as text on a terminal: UTF-8 without control characters other than
/// tab.
fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| !s.chars().any(|c| c.is_control() && c != '\t'))
}

/// One message as a hex dump: a line per 16 bytes (offset, bytes, printable ASCII), then an
/// empty line; an empty message is one line.
fn hex_dump(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return writeln!(out, "(0 bytes)\n");
    }
    for (i, line) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = line
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(out, "{:08x}  {:<47}  |{text}|", i * 16, hex.join(" "))?;
    }
    writeln!(out)
}

/// Whether opening a ring failed because this user may not read it.
fn permission_denied(e: &Error) -> bool {
    match e {
        Error::PermissionDenied { .. } => true,
        Error::Io { error, .. } => error.kind() == std::io::ErrorKind::PermissionDenied,
        _ => false,
    }
}

fn rm(paths: &[PathBuf], force: bool) -> anyhow::Result<()> {
    let mut dirs = Vec::new();
    for path in paths {
        match Inspector::open(path) {
            Ok(inspector) => {
                let (producer, consumer) = inspector.holders()?;
                for (role, holder) in [("producer", producer), ("consumer", consumer)] {
                    if holder.live && !force {
                        let pid = holder.pid.map_or(String::new(), |p| format!(" (pid {p})"));
                        bail!(
                            "{}: in use: a {role}{pid} is attached; stop it first, or remove with --force",
                            path.display()
                        );
                    }
                }
            }
            Err(
                e @ (Error::NotFound { .. }
                | Error::NotRegularFile { .. }
                | Error::TooShort { .. }
                | Error::BadMagic { .. }),
            ) => bail!("{e}: not removed"),
            Err(e) if permission_denied(&e) && !force => bail!(
                "{}: permission denied: this user cannot read the ring, so cannot tell whether it is in use (its owner, or root, can remove it)",
                path.display()
            ),
            Err(e) if !force => {
                bail!("{e}: a damaged ring; cannot tell whether it is in use: remove with --force")
            }
            Err(_) => {}
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
                "{}: permission denied: cannot remove it (in a sticky directory such as /dev/shm, only the ring's owner, the directory's owner or root can)",
                path.display()
            ),
            other => other.with_context(|| format!("{}: cannot remove", path.display()))?,
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        for leftover in Ring::remove_leftovers(&dir)? {
            eprintln!(
                "ringfile: removed {}, left by a ring creator that died",
                leftover.display()
            );
        }
    }
    Ok(())
}
