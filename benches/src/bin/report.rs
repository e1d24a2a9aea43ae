//! The comparison report: every transport at every size, measured in this run, as markdown
//! tables with ringfile's ratio to each, the cost, latency, async and capacity tables, and the
//! ratios the issues track.
//!
//! ```text
//! cargo run --release -p benches --bin report            # full: 5 to 10 minutes
//! cargo run --release -p benches --bin report -- --quick # 2 to 3 minutes
//! ```
//!
//! Every comparison is taken in the same run: each run measures every transport at one size
//! back to back (interleaved), so a machine that changes speed between runs (a shared VM does)
//! shifts them alike; a ratio is the median of the ratios of its runs, shown with their range
//! (the run-to-run spread), so a figure measured while the machine changed speed shows itself.
//!
//! Writes `report.md` under `target/bench-report/` (or `--out DIR`), so a run never changes
//! the repository; `--update` writes the committed `benches/report/` instead, which README
//! quotes.
//! `--cores A,B` pins the sender to core A and the receiver to core B (default 0,1; the
//! criterion benches read the same from `RINGFILE_BENCH_CORES=A,B`).
//! `--one-trip KIND SIZE` measures one round trip (kinds: spin, park, line, two-lines, futex,
//! iceoryx2, ipc-channel).
//! `--cost` measures only the processor time per message on one thread (see
//! `benches::cost`); `--duties` what each of the contract's per-message duties costs there
//! (the cost table's floor with the duties, leaving out one at a time; not in the full run); `--fanout` only the several-readers tables (see `benches::fanout`);
//! `--bridge` only the NATS bridge's rows (see `benches::bridge`; needs `nats-server`);
//! `--async` only the async-against-blocking table (see `benches::awaiting`).
//! `--one TRANSPORT SIZE` measures one cross-process transport at one size (for profiling);
//! transports: ringfile, ringfile-each, ringfile-disk, floor, and ringfile-read,
//! ringfile-each-read, floor-read (receivers that read every byte), pipe, pipe-big,
//! unix-stream, seqpacket, ipmpsc, iceoryx2, ipc-channel.

use benches::awaiting::{self, idle_cpu_percent, steady_latency, Receiving};
use benches::cost::Path;
use benches::inprocess::{two_threads, Queue};
use benches::latency::{round_trips, PingPong};
use benches::{cross_process, median, median_f64, median_of, Measured, Stop, Transport};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

const SIZES: [usize; 6] = [8, 64, 256, 1024, 4096, 65536];
const CAPACITY: u64 = 8 << 20;

struct Settings {
    runs: usize,
    budget: Duration,
    latency_iters: u64,
    out: PathBuf,
}

/// Where the report goes: `--out DIR`; `--update`: the committed `benches/report/`;
/// otherwise `target/bench-report/` (under `CARGO_TARGET_DIR` if set).
fn out_dir(args: &[String]) -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
    {
        return PathBuf::from(dir);
    }
    if args.iter().any(|a| a == "--update") {
        return manifest.join("report");
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| manifest.join("../target"), PathBuf::from)
        .join("bench-report")
}

fn main() {
    if benches::child_main() {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // An unknown argument must not start a full run of several minutes.
    let mut expect_values = 0;
    for a in &args {
        if expect_values > 0 {
            expect_values -= 1;
            continue;
        }
        expect_values = match a.as_str() {
            "--quick" | "--update" | "--cost" | "--duties" | "--fanout" | "--bridge"
            | "--async" => 0,
            "--cores" | "--out" => 1,
            "--one" | "--one-trip" => 2,
            other => {
                eprintln!(
                    "report: unknown argument '{other}' (expected --quick, --update, --out DIR, \
                     --cores A,B, --one TRANSPORT SIZE, --one-trip KIND SIZE, --cost, --duties, --fanout, --bridge, --async)"
                );
                std::process::exit(2);
            }
        };
    }
    if let Some(i) = args.iter().position(|a| a == "--cores") {
        let Some(cores) = args.get(i + 1) else {
            eprintln!("report: --cores takes two core numbers, SENDER,RECEIVER (e.g. 2,3)");
            std::process::exit(2);
        };
        if benches::cores_from(cores).is_none() {
            eprintln!("report: --cores {cores}: expected two core numbers, SENDER,RECEIVER");
            std::process::exit(2);
        }
        // Read by every pinning call here and in the child processes, which inherit it.
        std::env::set_var(benches::CORES_ENV, cores);
    }
    if let Some(i) = args.iter().position(|a| a == "--one-trip") {
        let kinds = PingPong::ALL.map(|k| k.tag().trim_start_matches("latency-"));
        let (Some(kind), Some(size)) = (
            args.get(i + 1).and_then(|t| {
                PingPong::ALL
                    .into_iter()
                    .find(|k| k.tag() == format!("latency-{t}"))
            }),
            args.get(i + 2).and_then(|s| s.parse::<usize>().ok()),
        ) else {
            eprintln!(
                "report: --one-trip takes a kind ({}) and a size",
                kinds.join(", ")
            );
            std::process::exit(2);
        };
        let h = round_trips(kind, size, 100_000);
        println!(
            "{} {size} B: p50 {} ns, p99 {} ns, p99.9 {} ns",
            kind.name(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999)
        );
        return;
    }
    if args.iter().any(|a| a == "--cost") {
        let mut md = String::new();
        cost_section(&mut md, 5);
        println!("{md}");
        return;
    }
    if args.iter().any(|a| a == "--duties") {
        let mut md = String::new();
        duties_section(&mut md, 11);
        println!("{md}");
        return;
    }
    // One section alone (the first of these flags given).
    let sections: [(&str, Section); 3] = [
        ("--bridge", bridge_section),
        ("--fanout", fanout_section),
        ("--async", async_section),
    ];
    if let Some((_, section)) = sections
        .iter()
        .find(|(flag, _)| args.iter().any(|a| a == flag))
    {
        let settings = Settings {
            runs: if quick { 3 } else { 5 },
            budget: Duration::from_millis(if quick { 60 } else { 250 }),
            latency_iters: if quick { 20_000 } else { 200_000 },
            out: PathBuf::new(),
        };
        let mut md = String::new();
        section(&mut md, &settings);
        println!("{md}");
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let (Some(t), Some(size)) = (
            args.get(i + 1).and_then(|t| Transport::from_tag(t)),
            args.get(i + 2).and_then(|s| s.parse::<usize>().ok()),
        ) else {
            eprintln!("report: --one takes a transport and a size, e.g. --one ringfile 64");
            std::process::exit(2);
        };
        let runs: Vec<Measured> = (0..5)
            .map(|_| cross_process(t, size, CAPACITY, Stop::Time(Duration::from_millis(400))))
            .collect();
        let m = median_of(&runs);
        println!(
            "{} {size} B: {} msg/s, {:.2} GB/s (runs: {})",
            t.name(),
            fmt_rate(m.rate()),
            m.gbps(),
            runs.iter()
                .map(|r| fmt_rate(r.rate()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return;
    }
    let out = out_dir(&args);
    std::fs::create_dir_all(&out)
        .unwrap_or_else(|e| panic!("report: cannot create {}: {e}", out.display()));
    let settings = Settings {
        runs: if quick { 3 } else { 5 },
        budget: Duration::from_millis(if quick { 60 } else { 250 }),
        latency_iters: if quick { 20_000 } else { 200_000 },
        out,
    };
    let report = run(&settings);
    std::fs::create_dir_all(&settings.out).unwrap();
    std::fs::write(settings.out.join("report.md"), &report).unwrap();
    println!("{report}");
    eprintln!("written to {}", settings.out.join("report.md").display());
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else {
        format!("{:.0} k", r / 1e3)
    }
}

fn run(s: &Settings) -> String {
    let mut md = String::new();
    header(&mut md, s);
    let cross = cross_process_section(&mut md, s);
    inprocess_section(&mut md, s);
    let cost = cost_section(&mut md, s.runs);
    let trips = latency_section(&mut md, s);
    programs_section(&mut md, s, &cross);
    async_section(&mut md, s);
    capacity_section(&mut md, s);
    fanout_section(&mut md, s);
    bridge_section(&mut md, s);
    python_section(&mut md, s);
    ratios_section(&mut md, s, &cross, &cost, &trips);
    md
}

/// The NATS bridge's rows ([`benches::bridge`]): at 64 B and 4 KiB, a plain async-nats
/// JetStream publisher with the bridge's batching, `ringfile-bridge out` alone, and ring → NATS
/// → ring, interleaved in each run; the bridge's rates as ratios to the publisher's of the same
/// run. Without `nats-server` or the built programs the section says what is missing.
fn bridge_section(md: &mut String, s: &Settings) {
    use benches::bridge::{Server, BATCH_BYTES, BATCH_MESSAGES, IN_FLIGHT};
    const SIZES: [usize; 2] = [64, 4096];
    writeln!(md, "\n### Across machines: the NATS JetStream bridge\n").unwrap();
    benches::unpin();
    let mut server = match Server::start() {
        Ok(server) => server,
        Err(why) => {
            writeln!(md, "Not measured: {why}.").unwrap();
            return;
        }
    };
    // Each run carries about 64 MiB (16 MiB quick) of payload at each size.
    let payload: u64 = if s.runs > 3 { 64 << 20 } else { 16 << 20 };
    // [size][publisher, out, publisher + reader, path][run]
    let mut runs = vec![vec![Vec::new(); 4]; SIZES.len()];
    for run in 0..s.runs {
        for (i, &size) in SIZES.iter().enumerate() {
            let count = payload / size as u64;
            eprintln!("bridge {size} B, run {}", run + 1);
            runs[i][0].push(server.publisher(size, count, false));
            let Some(out) = server.bridge(size, count, None) else {
                writeln!(
                    md,
                    "Not measured: build the programs first (`cargo build --release`)."
                )
                .unwrap();
                return;
            };
            runs[i][1].push(out);
            runs[i][2].push(server.publisher(size, count, true));
            runs[i][3].push(server.bridge(size, count, Some(CAPACITY)).expect("built"));
        }
    }
    writeln!(
        md,
        "One `nats-server -js` (file storage, one replica) on this machine, which the report \
         starts on a loopback port; every process unpinned. **Publisher**: a plain async-nats \
         JetStream publisher, the baseline: messages already in memory packed as the bridge \
         packs them (each a 4-byte length and its bytes, up to {} KiB or {BATCH_MESSAGES} \
         messages a NATS message), each with a `Nats-Msg-Id`, {IN_FLIGHT} in flight, every \
         acknowledgement awaited. **out**: `ringfile-bridge out` (same batching, its defaults) \
         publishing a ring that holds the stream (`producer --gen`, closed) until JetStream \
         acknowledged the end. **ring → NATS → ring**: the same with `ringfile-bridge in` \
         filling a {} MiB far ring at once and `consumer --verify` checking every byte of \
         every message there. **Publisher + reader**: the publisher with a durable pull consumer \
         in its process, on a connection of its own, reading the stream meanwhile (explicit acknowledgements, 64 frames a \
         pull, as `ringfile-bridge in` pulls): what NATS alone carries end to end here, the \
         fair baseline for ring → NATS → ring. {} MiB of payload a run; rates from the first \
         acknowledgement (or the first message read) to the last, median of {} runs, and in \
         brackets the ratio to the baseline named of the same run (median, lowest–highest). \
         Goal (issue 30): ≥ 0.8 of the publisher.\n",
        BATCH_BYTES >> 10,
        CAPACITY >> 20,
        payload >> 20,
        s.runs
    )
    .unwrap();
    table_head(md, "messages/s", &SIZES);
    for (name, row, base) in [
        ("publisher (baseline)", 0, None),
        ("`ringfile-bridge out`", 1, Some(0)),
        ("ring → NATS → ring", 3, Some(0)),
        ("publisher + reader (second baseline)", 2, None),
        ("ring → NATS → ring ÷ publisher + reader", 3, Some(2)),
    ] {
        write!(md, "| {name} |").unwrap();
        for by_size in &runs {
            let m = median_of(&by_size[row]);
            let Some(base) = base else {
                write!(md, " {} |", fmt_rate(m.rate())).unwrap();
                continue;
            };
            let ratio = Spread::of(
                by_size[row]
                    .iter()
                    .zip(&by_size[base])
                    .map(|(x, base)| x.rate() / base.rate()),
            );
            write!(
                md,
                " {} ({:.2}×, {:.2}–{:.2}) |",
                fmt_rate(m.rate()),
                ratio.median,
                ratio.low,
                ratio.high
            )
            .unwrap();
        }
        writeln!(md).unwrap();
    }
}

/// The Python rows: `python/bench.py` (Python → Python across processes against
/// `multiprocessing`'s Queue and Pipe), run by the interpreter `RINGFILE_PYTHON` names (default
/// `python3`), which must have the package installed (`pip install ./python`). Without one the
/// section says how to get it rather than failing the whole report.
fn python_section(md: &mut String, s: &Settings) {
    let named = std::env::var("RINGFILE_PYTHON").ok();
    let python = named.clone().unwrap_or_else(|| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../python/bench.py");
    writeln!(
        md,
        "\n### Python to Python across processes (python/bench.py)\n"
    )
    .unwrap();
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(&script);
    if s.runs < 5 {
        cmd.arg("--quick");
    }
    eprintln!("python rows: {python} {}", script.display());
    let result = cmd.stderr(std::process::Stdio::inherit()).output();
    // An interpreter named on purpose that cannot run the rows is an error (CI's smoke run
    // relies on it); the default python3 without the package only leaves a note.
    if let Some(named) = &named {
        if !result.as_ref().is_ok_and(|out| out.status.success()) {
            eprintln!("report: RINGFILE_PYTHON={named}: python/bench.py did not run ({result:?})");
            std::process::exit(1);
        }
    }
    match result {
        Ok(out) if out.status.success() => {
            md.push_str(String::from_utf8_lossy(&out.stdout).trim_end());
            md.push('\n');
        }
        Ok(out) => writeln!(
            md,
            "Not measured: `{python} python/bench.py` failed ({}); install the package with \
             `pip install ./python` and point `RINGFILE_PYTHON` at that interpreter.",
            out.status
        )
        .unwrap(),
        Err(e) => writeln!(
            md,
            "Not measured: cannot run `{python}` ({e}); set `RINGFILE_PYTHON` to an interpreter \
             with the package installed (`pip install ./python`)."
        )
        .unwrap(),
    }
}

/// A section of the report: appends its Markdown, measured as the settings say.
type Section = fn(&mut String, &Settings);

/// Where and how the report was measured.
fn header(md: &mut String, s: &Settings) {
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let (sender, receiver) = benches::cores();
    let sharing = match benches::share_a_physical_core(sender, receiver) {
        Some(true) => "hardware threads of one physical core",
        Some(false) => "separate physical cores",
        None => "physical cores unknown",
    };
    writeln!(
        md,
        "Measured {date} on {} ({cores} cores), sender pinned to core {sender}, receiver to \
         core {receiver} ({sharing}; `--cores A,B` to choose), busy-spin waiting, median of {} \
         runs of {} ms; rings of {} MiB.\n",
        cpu_model(),
        s.runs,
        s.budget.as_millis(),
        CAPACITY >> 20
    )
    .unwrap();
}

/// Every run of every cross-process transport at every size: `[transport][size][run]`.
struct CrossProcess {
    samples: Vec<Vec<Vec<Measured>>>,
}

impl CrossProcess {
    fn runs(&self, t: Transport) -> &[Vec<Measured>] {
        &self.samples[Transport::ALL.iter().position(|&x| x == t).unwrap()]
    }

    /// `of`'s rate ÷ `to`'s rate in the same run, at each size: the median over runs and the
    /// range.
    fn spread(&self, of: Transport, to: Transport) -> Vec<Spread> {
        self.runs(of)
            .iter()
            .zip(self.runs(to))
            .map(|(a, b)| Spread::of(a.iter().zip(b).map(|(x, y)| x.rate() / y.rate())))
            .collect()
    }
}

/// The cross-process table and ringfile's ratio to each transport. Interleaved: each run
/// measures every transport back to back at one size, so that a machine that changes speed
/// between runs (a shared VM does) shifts all of them alike, and the ratios are medians of
/// ratios taken back to back.
fn cross_process_section(md: &mut String, s: &Settings) -> CrossProcess {
    let mut samples = vec![vec![Vec::new(); SIZES.len()]; Transport::ALL.len()];
    for (si, &size) in SIZES.iter().enumerate() {
        for run in 0..s.runs {
            for (ti, &t) in Transport::ALL.iter().enumerate() {
                eprintln!("cross-process {size} B, run {}: {}", run + 1, t.name());
                samples[ti][si].push(cross_process(t, size, CAPACITY, Stop::Time(s.budget)));
            }
        }
    }
    let cross = CrossProcess { samples };
    writeln!(md, "### Cross-process throughput\n").unwrap();
    table_head(md, "transport", &SIZES);
    for t in Transport::ALL {
        write!(md, "| {} |", t.name()).unwrap();
        for runs in cross.runs(t) {
            let m = median_of(runs);
            write!(md, " {} msg/s, {:.2} GB/s |", fmt_rate(m.rate()), m.gbps()).unwrap();
        }
        writeln!(md).unwrap();
    }
    writeln!(
        md,
        "\nringfile's throughput (batched) as a multiple of each (same run, same sizes; rows \
         that read every byte against ringfile reading every byte; the median of the ratios \
         of {} runs taken back to back, and in brackets their lowest and highest):\n",
        s.runs
    )
    .unwrap();
    table_head(md, "ringfile ÷", &SIZES);
    for t in Transport::ALL {
        let ours = t.ringfile_counterpart();
        if t != ours {
            spread_row(md, t.name(), &cross.spread(ours, t));
        }
    }
    cross
}

/// A table row of ratios, each with its range.
fn spread_row(md: &mut String, name: &str, spreads: &[Spread]) {
    write!(md, "| {name} |").unwrap();
    for r in spreads {
        write!(md, " {:.2}× ({:.2}–{:.2}) |", r.median, r.low, r.high).unwrap();
    }
    writeln!(md).unwrap();
}

fn inprocess_section(md: &mut String, s: &Settings) {
    writeln!(md, "\n### In-process, two threads\n").unwrap();
    table_head(md, "queue", &SIZES);
    for q in Queue::ALL {
        write!(md, "| {} |", q.name()).unwrap();
        for size in SIZES {
            eprintln!("in-process {} {size} B", q.name());
            let m = median(s.runs, || {
                two_threads(q, size, CAPACITY, Stop::Time(s.budget))
            });
            write!(md, " {} msg/s, {:.2} GB/s |", fmt_rate(m.rate()), m.gbps()).unwrap();
        }
        writeln!(md).unwrap();
    }
}

/// The round-trip table; each kind's p50 at 8 B, for the ratios.
fn latency_section(md: &mut String, s: &Settings) -> Vec<(PingPong, u64)> {
    writeln!(
        md,
        "\n### Round trip between two processes ({} round trips after warm-up)\n",
        s.latency_iters
    )
    .unwrap();
    writeln!(md, "| ping-pong | size | p50 | p99 | p99.9 | max |").unwrap();
    writeln!(md, "|---|---:|---:|---:|---:|---:|").unwrap();
    let mut p50s = Vec::new();
    for kind in PingPong::ALL {
        for size in [8usize, 64] {
            if matches!(
                kind,
                PingPong::CacheLine | PingPong::TwoLines | PingPong::Futex
            ) && size == 64
            {
                continue; // the floors move no payload
            }
            eprintln!("latency {} {size} B", kind.name());
            let spins = matches!(
                kind,
                PingPong::RingfileSpin | PingPong::CacheLine | PingPong::TwoLines
            );
            let iters = s.latency_iters / if spins { 1 } else { 4 };
            let h = round_trips(kind, size, iters);
            writeln!(
                md,
                "| {} | {size} B | {} ns | {} ns | {} ns | {} ns |",
                kind.name(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max()
            )
            .unwrap();
            if size == 8 {
                p50s.push((kind, h.value_at_quantile(0.5)));
            }
        }
    }
    p50s
}

/// `producer --gen` into `consumer --verify`, against the library's 64 KiB figure.
fn programs_section(md: &mut String, s: &Settings, cross: &CrossProcess) {
    eprintln!("programs 65536 B");
    let count = if s.runs > 3 { 100_000 } else { 20_000 };
    let library = median_of(cross.runs(Transport::Ringfile).last().unwrap());
    let mut runs: Vec<Measured> = (0..s.runs)
        .map_while(|_| benches::programs::gen_verify(65536, CAPACITY, count))
        .collect();
    writeln!(md, "\n### The programs, 64 KiB messages\n").unwrap();
    if runs.is_empty() {
        writeln!(
            md,
            "Not measured: build the programs first (`cargo build --release`)."
        )
        .unwrap();
        return;
    }
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let m = runs[runs.len() / 2];
    writeln!(
        md,
        "`producer --gen {count} --size 65536` into `consumer --verify` (every byte of every \
         message generated and checked; default waiting), {} MiB ring: {:.2} GB/s = {:.2}× \
         the library's batched 64 KiB figure above, which touches one byte per message.",
        CAPACITY >> 20,
        m.gbps(),
        m.gbps() / library.gbps()
    )
    .unwrap();
}

fn async_section(md: &mut String, s: &Settings) {
    writeln!(
        md,
        "\n### Async receive against blocking, cross-process\n\n\
         The sender (another process) uses the blocking API. Throughput: 64-byte messages as \
         fast as they go. Latency: one way, send stamp to receipt, 64-byte messages at a \
         steady 10 000/s (the receiver sleeps between them, so this is the wake-up path). \
         Idle: CPU used by the whole receiving process (the async watcher thread included) \
         while it waits on a silent ring.\n"
    )
    .unwrap();
    writeln!(
        md,
        "| receiver | 64 B throughput | latency p50 | p99 | p99.9 | idle CPU |"
    )
    .unwrap();
    writeln!(md, "|---|---:|---:|---:|---:|---:|").unwrap();
    let steady = if s.latency_iters >= 100_000 {
        20_000
    } else {
        5_000
    };
    for r in Receiving::ALL {
        eprintln!("async {}", r.name());
        let m = median(s.runs, || awaiting::throughput(r, 64, s.budget));
        let h = steady_latency(r, Duration::from_micros(100), steady);
        let idle = idle_cpu_percent(
            r,
            Duration::from_millis(if s.runs > 3 { 2000 } else { 500 }),
        );
        writeln!(
            md,
            "| {} | {} msg/s | {} ns | {} ns | {} ns | {idle:.2}% |",
            r.name(),
            fmt_rate(m.rate()),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
        )
        .unwrap();
    }
}

/// ringfile's batched throughput at each ring capacity: what README's sizing advice rests on.
fn capacity_section(md: &mut String, s: &Settings) {
    writeln!(
        md,
        "\n### ringfile cross-process throughput against ring capacity\n"
    )
    .unwrap();
    writeln!(md, "| capacity | 1 KiB messages | 64 KiB messages |").unwrap();
    writeln!(md, "|---:|---:|---:|").unwrap();
    for shift in [16u32, 18, 20, 22, 24, 26] {
        let capacity = 1u64 << shift;
        eprintln!("capacity {capacity}");
        let gbps = |size: usize| {
            median(s.runs, || {
                cross_process(Transport::Ringfile, size, capacity, Stop::Time(s.budget))
            })
            .gbps()
        };
        let small = gbps(1024);
        let large = if capacity >= 256 << 10 {
            format!("{:.2} GB/s", gbps(65536))
        } else {
            "— (max message 32 KiB)".into()
        };
        writeln!(md, "| {} KiB | {small:.2} GB/s | {large} |", capacity >> 10).unwrap();
    }
}

/// Several readers on one stream ([`benches::fanout`]): (a) the producer's processor time per
/// message with 1 to 16 readers, as a ratio to one reader; (b) messages delivered to 1 to 4
/// readers together per second; (c) the same against iceoryx2 with as many subscribers.
fn fanout_section(md: &mut String, s: &Settings) {
    use benches::fanout::{aggregate, producer_cost, Fan, SIZE, SLOTS};
    const READERS: [usize; 5] = [1, 2, 4, 8, 16];
    const CAPACITY: u64 = ringfile::DEFAULT_CAPACITY;
    let bursts = if s.runs > 3 { 40 } else { 12 };
    // SAFETY: sysconf has no preconditions.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    // [fan][readers][run], interleaved: each run measures every fan at every count back to back.
    let mut cost = vec![vec![Vec::new(); READERS.len()]; Fan::ALL.len()];
    for run in 0..s.runs {
        for (ri, &readers) in READERS.iter().enumerate() {
            for (fi, &fan) in Fan::ALL.iter().enumerate() {
                if fan.takes(readers) {
                    eprintln!("fan-out cost, run {}: {} to {readers}", run + 1, fan.name());
                    cost[fi][ri].push(producer_cost(fan, readers, CAPACITY, bursts).producer_ns);
                }
            }
        }
    }
    writeln!(
        md,
        "
### Several readers on one stream

One producer process, 1 to 16 reader processes, {SIZE}-byte messages, {} KiB rings (ringfile: {SLOTS} consumer slots whatever the number of readers, each reader a named consumer that parks when the ring is empty and reads in batches; iceoryx2: a lossless publisher and as many subscribers, which poll and yield the core when empty). The producer is pinned to its core, the readers to the others — on this {cores}-core machine {} — and every message reaches every reader (checked).

**Producer's cost.** The producer sends bursts of half a ring ({bursts} of them) and waits, untimed, until every reader has had the burst: what it pays to send with that many readers attached and reading, never waiting for room. Processor time of the producer's thread per message (median of {} runs), and in brackets its ratio to the same row with one reader (median of the runs' ratios, lowest–highest):
",
        CAPACITY >> 10,
        if cores <= 2 {
            "all on the one other core"
        } else {
            "round robin"
        },
        s.runs
    )
    .unwrap();
    write!(md, "| producer ÷ readers |").unwrap();
    for r in READERS {
        write!(md, " {r} |").unwrap();
    }
    writeln!(md).unwrap();
    writeln!(md, "|---|{}", "---:|".repeat(READERS.len())).unwrap();
    for (fi, fan) in Fan::ALL.iter().enumerate() {
        write!(md, "| {} |", fan.name()).unwrap();
        for runs in &cost[fi] {
            if runs.is_empty() {
                write!(md, " — |").unwrap();
                continue;
            }
            let ratio = Spread::of(runs.iter().zip(&cost[fi][0]).map(|(x, one)| x / one));
            write!(
                md,
                " {:.1} ns ({:.2}×, {:.2}–{:.2}) |",
                median_f64(&mut runs.clone()),
                ratio.median,
                ratio.low,
                ratio.high
            )
            .unwrap();
        }
        writeln!(md).unwrap();
    }
    writeln!(
        md,
        "
iceoryx2's cost per message as a multiple of ringfile's (same run; median of the runs' ratios, lowest–highest):
"
    )
    .unwrap();
    write!(md, "| iceoryx2 ÷ | readers 1 |").unwrap();
    for r in &READERS[1..] {
        write!(md, " {r} |").unwrap();
    }
    writeln!(md).unwrap();
    writeln!(md, "|---|{}", "---:|".repeat(READERS.len())).unwrap();
    let iox = Fan::ALL.iter().position(|&f| f == Fan::Iceoryx2).unwrap();
    for (fi, fan) in Fan::ALL.iter().enumerate() {
        if matches!(fan, Fan::Iceoryx2 | Fan::RingfileOneSlot) {
            continue;
        }
        let spreads: Vec<Spread> = cost[iox]
            .iter()
            .zip(&cost[fi])
            .map(|(theirs, ours)| Spread::of(theirs.iter().zip(ours).map(|(t, o)| t / o)))
            .collect();
        spread_row(md, fan.name(), &spreads);
    }
    // (b) and (c): streaming, wall time.
    const AGGREGATE: [usize; 4] = [1, 2, 3, 4];
    let count: u64 = if s.runs > 3 { 1 << 20 } else { 1 << 18 };
    let mut rates = vec![vec![Vec::new(); AGGREGATE.len()]; Fan::ALL.len()];
    for run in 0..s.runs {
        for (ri, &readers) in AGGREGATE.iter().enumerate() {
            for (fi, &fan) in Fan::ALL.iter().enumerate() {
                if fan.takes(readers) {
                    eprintln!(
                        "fan-out aggregate, run {}: {} to {readers}",
                        run + 1,
                        fan.name()
                    );
                    rates[fi][ri].push(aggregate(fan, readers, CAPACITY, count).delivered_per_sec);
                }
            }
        }
    }
    writeln!(
        md,
        "
**Delivered, all readers together.** The producer streams {count} messages without pause (it waits for room when the slowest reader is a ring behind); messages received by all readers together per second of wall time, first send to the last reader's end (median of {} runs; readers sharing a core share its time, so on this machine the total is bounded by one core's reading):
",
        s.runs
    )
    .unwrap();
    write!(md, "| delivered ÷ readers |").unwrap();
    for r in AGGREGATE {
        write!(md, " {r} |").unwrap();
    }
    writeln!(md).unwrap();
    writeln!(md, "|---|{}", "---:|".repeat(AGGREGATE.len())).unwrap();
    for (fi, fan) in Fan::ALL.iter().enumerate() {
        write!(md, "| {} |", fan.name()).unwrap();
        for runs in &rates[fi] {
            if runs.is_empty() {
                write!(md, " — |").unwrap();
            } else {
                write!(md, " {} msg/s |", fmt_rate(median_f64(&mut runs.clone()))).unwrap();
            }
        }
        writeln!(md).unwrap();
    }
}

/// The ratios the issues track, side by side, each from figures of this run.
fn ratios_section(
    md: &mut String,
    s: &Settings,
    cross: &CrossProcess,
    cost: &[(Path, Vec<benches::cost::Cost>)],
    trips: &[(PingPong, u64)],
) {
    writeln!(
        md,
        "\n### Ratios\n\n\
         Cross-process, each the median of the ratios of {} back-to-back runs (their range in \
         brackets). A receiver that touches one byte per message is, at small sizes, faster \
         than its sender: it catches up and the two fight over the lines being written, so \
         those ratios say which side is faster as much as what each costs; receivers that \
         read every byte are what real consumers do.\n",
        s.runs
    )
    .unwrap();
    table_head(md, "ratio", &SIZES);
    let rows = [
        (
            "batched ÷ floor, reading every byte",
            Transport::RingfileRead,
            Transport::FloorRead,
        ),
        (
            "batched ÷ floor, touching one byte",
            Transport::Ringfile,
            Transport::Floor,
        ),
        (
            "per message ÷ batched, reading every byte",
            Transport::RingfilePerMessageRead,
            Transport::RingfileRead,
        ),
        (
            "per message ÷ batched, touching one byte",
            Transport::RingfilePerMessage,
            Transport::Ringfile,
        ),
        (
            "per-message floor ÷ floor, reading every byte (the most per message ÷ batched can be, on this machine)",
            Transport::FloorPerMessageRead,
            Transport::FloorRead,
        ),
        (
            "per-message floor ÷ floor, touching one byte (the same)",
            Transport::FloorPerMessage,
            Transport::Floor,
        ),
        (
            "per message ÷ the per-message floor, reading every byte",
            Transport::RingfilePerMessageRead,
            Transport::FloorPerMessageRead,
        ),
        (
            "per message ÷ the per-message floor, touching one byte",
            Transport::RingfilePerMessage,
            Transport::FloorPerMessage,
        ),
        (
            "per message ÷ iceoryx2 (`send`/`recv` against `loan`/`receive`)",
            Transport::RingfilePerMessage,
            Transport::Iceoryx2,
        ),
        (
            "floor ÷ iceoryx2 (the most any ringfile path can be, on this machine)",
            Transport::Floor,
            Transport::Iceoryx2,
        ),
        (
            "per-message floor ÷ iceoryx2 (the most a per-message path can be)",
            Transport::FloorPerMessage,
            Transport::Iceoryx2,
        ),
    ];
    for (name, of, to) in rows {
        spread_row(md, name, &cross.spread(of, to));
    }
    // A rate ratio from one thread's times: the time of `to` over the time of `of`.
    let ns = |p: Path| &cost.iter().find(|(x, _)| *x == p).unwrap().1;
    let cost_ratio = |of: Path, to: Path| -> String {
        ns(to)
            .iter()
            .zip(ns(of))
            .map(|(t, o)| format!("{:.2}", t.total() / o.total()))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    writeln!(
        md,
        "\nOn one thread (the code paths alone, no line moving between cores), at {}: batched ÷ \
         floor {}; batched ÷ the floor in ringfile's record format {} (what the code costs; \
         the floor to that format is what the format costs); per message ÷ batched {}; the \
         per-message floor (the format's floor publishing and releasing each message, as \
         little as any per-message path can do) ÷ batched {}, and per message ÷ that floor {} \
         (what ringfile's per-message code costs beyond it); that floor with the contract's \
         per-message duties ÷ batched {} (the most per message ÷ batched can be without \
         dropping one), and per message ÷ it {}.",
        COST_SIZES.map(|s| format!("{s} B")).join(" / "),
        cost_ratio(Path::Batched, Path::Floor),
        cost_ratio(Path::Batched, Path::Format),
        cost_ratio(Path::PerMessage, Path::Batched),
        cost_ratio(Path::FormatPerMessage, Path::Batched),
        cost_ratio(Path::PerMessage, Path::FormatPerMessage),
        cost_ratio(Path::DutifulPerMessage, Path::Batched),
        cost_ratio(Path::PerMessage, Path::DutifulPerMessage),
    )
    .unwrap();
    let p50 = |k: PingPong| trips.iter().find(|(kind, _)| *kind == k).unwrap().1;
    // The spin ratio again from back-to-back pairs: the table's rows were measured minutes
    // apart, and a shared machine's line transfers change speed from minute to minute.
    eprintln!("latency pairs: ringfile spin against the cache line, 8 B");
    let pairs = Spread::of((0..5).map(|_| {
        let iters = s.latency_iters / 5;
        let ours = round_trips(PingPong::RingfileSpin, 8, iters).value_at_quantile(0.5);
        let line = round_trips(PingPong::CacheLine, 8, iters).value_at_quantile(0.5);
        ours as f64 / line.max(1) as f64
    }));
    writeln!(
        md,
        "\nRound trips, 8 B, p50: busy-spin {} ns ÷ the bare cache line's {} ns = {:.2}× \
         ({:.2}× ({:.2}–{:.2}) over 5 back-to-back pairs; ÷ the flag-then-data floor, two \
         serial line transfers each way as ringfile's tail then record: {:.2}×); park {} ns ÷ \
         the bare futex's {} ns = {:.2}×.",
        p50(PingPong::RingfileSpin),
        p50(PingPong::CacheLine),
        p50(PingPong::RingfileSpin) as f64 / p50(PingPong::CacheLine).max(1) as f64,
        pairs.median,
        pairs.low,
        pairs.high,
        p50(PingPong::RingfileSpin) as f64 / p50(PingPong::TwoLines).max(1) as f64,
        p50(PingPong::RingfilePark),
        p50(PingPong::Futex),
        p50(PingPong::RingfilePark) as f64 / p50(PingPong::Futex).max(1) as f64,
    )
    .unwrap();
}

/// A figure over runs: the median, and the lowest and highest (the run-to-run spread).
#[derive(Clone, Copy, Debug)]
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.collect();
        let median = median_f64(&mut v);
        Spread {
            median,
            low: v.iter().copied().fold(f64::INFINITY, f64::min),
            high: v.iter().copied().fold(0.0, f64::max),
        }
    }
}

const COST_SIZES: [usize; 4] = [8, 64, 256, 1024];

/// The single-thread cost table ([`benches::cost`]): time per message for each path and size.
fn cost_section(md: &mut String, runs: usize) -> Vec<(Path, Vec<benches::cost::Cost>)> {
    writeln!(
        md,
        "\n### Processor time per message, one thread\n\n\
         One thread sends runs of messages into a 256 KiB ring and receives them: the work of \
         each code path with no cache line moving between cores (steady where cross-core \
         rates are not). Nanoseconds per message sent and received (in brackets: sending + \
         receiving, timed apart; each the median of a run's fills of half the ring, so that \
         the interruptions of a shared machine fall on a few fills and are left out), the run \
         of median total of {runs} rounds (each round measures \
         every path at every size, so that the machine changing speed falls on all alike). \
         The second row is the \
         floor's loop writing ringfile's record layout (8-byte length header, payload 8 bytes \
         past an 8-aligned start, skip at the end) with none of ringfile's code: the floor to \
         it is what the format costs, it to ringfile what the code costs. The third is that \
         loop with a publish per message (room checked against a copy of the head, the tail \
         stored, the consumer's sleep flag looked at) and a release per message (the tail \
         loaded only when the copy says empty, the head stored, the producer's flag looked \
         at): the floor of any per-message path. The fourth adds what ringfile's contract \
         has every publish and release do besides (the exact message and byte counters \
         FORMAT.md keeps, this process's copies of the positions that guard against forged \
         ones, the asymmetric barrier's decision from three words, the fork check): the \
         floor of ringfile's per-message row as the contract stands.\n"
    )
    .unwrap();
    table_head(md, "path", &COST_SIZES);
    // Rounds of every path at every size, so that a change of the machine's speed during the
    // table falls on all paths alike; each cell is the median of its rounds.
    let paths = Path::ALL;
    let mut measured = vec![vec![Vec::new(); COST_SIZES.len()]; paths.len()];
    for round in 0..runs {
        for (s, size) in COST_SIZES.into_iter().enumerate() {
            for (p, path) in paths.into_iter().enumerate() {
                eprintln!("cost {} {size} B, round {}", path.name(), round + 1);
                let messages = ((1u64 << 28) / size as u64).min(4 << 20);
                measured[p][s].push(benches::cost::per_message(path, size, messages));
            }
        }
    }
    let mut table = Vec::new();
    for (path, cells) in paths.into_iter().zip(measured) {
        write!(md, "| {} |", path.name()).unwrap();
        let row: Vec<_> = cells.into_iter().map(benches::cost::median).collect();
        for cost in &row {
            write!(
                md,
                " {:.1} ns ({:.1} + {:.1}) |",
                cost.total(),
                cost.send,
                cost.recv
            )
            .unwrap();
        }
        writeln!(md).unwrap();
        table.push((path, row));
    }
    table
}

/// What each of the contract's per-message duties costs on one thread (`--duties`): the cost
/// table's floor with every duty, the same leaving out one at a time, the per-message floor
/// (none of them) and ringfile's batch, in rounds as the cost table is measured.
fn duties_section(md: &mut String, runs: usize) {
    use benches::cost::{per_message, without, Cost, Duty};
    writeln!(
        md,
        "\n### What the per-message duties cost, one thread\n\n\
         The cost table's per-message floor with the contract's duties (`report --cost`, fourth \
         row), then the same leaving out one duty at a time, then with none (the per-message \
         floor) and ringfile's batch, in {runs} rounds of every row at every size; nanoseconds \
         per message sent and received (the round of median total), and in brackets the batch's \
         time ÷ the row's: the most per message ÷ batched can be with that row's duties. The \
         duties overlap in the processor, so what leaving each out saves need not add up to \
         the whole.\n"
    )
    .unwrap();
    table_head(md, "per-message floor", &COST_SIZES);
    type Measure = Box<dyn Fn(usize, u64) -> Cost>;
    let mut rows: Vec<(String, Measure)> = vec![(
        "with every duty".to_string(),
        Box::new(|size, n| per_message(Path::DutifulPerMessage, size, n)),
    )];
    for duty in Duty::ALL {
        rows.push((
            duty.name().to_string(),
            Box::new(move |size, n| without(duty, size, n)),
        ));
    }
    rows.push((
        "with none (the per-message floor)".to_string(),
        Box::new(|size, n| per_message(Path::FormatPerMessage, size, n)),
    ));
    rows.push((
        "ringfile, batched".to_string(),
        Box::new(|size, n| per_message(Path::Batched, size, n)),
    ));
    let mut measured = vec![vec![Vec::new(); COST_SIZES.len()]; rows.len()];
    for round in 0..runs {
        for (s, size) in COST_SIZES.into_iter().enumerate() {
            for (r, (name, measure)) in rows.iter().enumerate() {
                eprintln!("duties {name} {size} B, round {}", round + 1);
                let messages = ((1u64 << 28) / size as u64).min(4 << 20);
                measured[r][s].push(measure(size, messages));
            }
        }
    }
    let cells: Vec<Vec<Cost>> = measured
        .into_iter()
        .map(|row| row.into_iter().map(benches::cost::median).collect())
        .collect();
    let batched = cells.last().expect("the batch's row").clone();
    for ((name, _), row) in rows.iter().zip(&cells) {
        write!(md, "| {name} |").unwrap();
        for (cost, batch) in row.iter().zip(&batched) {
            write!(
                md,
                " {:.1} ns ({:.2}×) |",
                cost.total(),
                batch.total() / cost.total()
            )
            .unwrap();
        }
        writeln!(md).unwrap();
    }
}

/// A table's first two lines: `first`, then one column per size.
fn table_head(md: &mut String, first: &str, sizes: &[usize]) {
    write!(md, "| {first} |").unwrap();
    for size in sizes {
        write!(md, " {size} B |").unwrap();
    }
    writeln!(md).unwrap();
    writeln!(md, "|---|{}", "---:|".repeat(sizes.len())).unwrap();
}

#[cfg(test)]
mod tests {
    use super::out_dir;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn only_update_writes_the_committed_report() {
        let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("report");
        for plain in [&[][..], &["--quick"][..]] {
            let dir = out_dir(&args(plain));
            assert_ne!(dir, committed, "{plain:?}");
            assert!(dir.ends_with("bench-report"), "{}", dir.display());
        }
        assert_eq!(out_dir(&args(&["--update"])), committed);
        assert_eq!(
            out_dir(&args(&["--quick", "--out", "/tmp/r"])),
            std::path::PathBuf::from("/tmp/r")
        );
    }
}
