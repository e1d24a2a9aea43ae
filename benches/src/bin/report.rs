//! The comparison report: every transport at every size, measured in this run, as markdown
//! tables with ringfile's ratio to each, the latency table, the targets, and an SVG chart.
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
//! Writes `report.md` and `throughput.svg` under `target/bench-report/` (or `--out DIR`), so
//! a run never changes the repository; `--update` writes the committed `benches/report/`
//! instead, which README quotes.
//! `--cores A,B` pins the sender to core A and the receiver to core B (default 0,1; the
//! criterion benches read the same from `RINGFILE_BENCH_CORES=A,B`).
//! `--one-trip KIND SIZE` measures one round trip (kinds: spin, park, line, two-lines, futex, iceoryx2,
//! ipc-channel).
//! `--cost` measures only the processor time per message on one thread (see
//! `benches::cost`).
//! `--one TRANSPORT SIZE` measures one cross-process transport at one size (for profiling);
//! transports: ringfile, ringfile-each, ringfile-disk, floor, floor-record (the floor moving
//! ringfile's record size), and ringfile-read, ringfile-each-read, floor-read, floor-record-read
//! (receivers that read every byte), pipe, pipe-big, unix-stream, seqpacket, ipmpsc, iceoryx2,
//! ipc-channel.

use benches::awaiting::{self, idle_cpu_percent, steady_latency, Receiving};
use benches::inprocess::{two_threads, Queue};
use benches::latency::{round_trips, PingPong};
use benches::{cross_process, median, median_f64, median_of, Measured, Stop, Transport};
use plotters::prelude::*;
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
            "--quick" | "--update" | "--cost" => 0,
            "--cores" | "--out" => 1,
            "--one" | "--one-trip" => 2,
            other => {
                eprintln!(
                    "report: unknown argument '{other}' (expected --quick, --update, --out DIR, \
                     --cores A,B, --one TRANSPORT SIZE, --one-trip KIND SIZE, --cost)"
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

    // Cross-process throughput. Interleaved: each run measures every transport back to back
    // at one size, so that a machine that changes speed between runs (a shared VM does)
    // shifts all of them alike, and the ratios are medians of ratios taken back to back.
    let mut samples: Vec<Vec<Vec<Measured>>> =
        vec![vec![Vec::new(); SIZES.len()]; Transport::ALL.len()];
    for (si, &size) in SIZES.iter().enumerate() {
        for run in 0..s.runs {
            for (ti, &t) in Transport::ALL.iter().enumerate() {
                eprintln!("cross-process {size} B, run {}: {}", run + 1, t.name());
                samples[ti][si].push(cross_process(t, size, CAPACITY, Stop::Time(s.budget)));
            }
        }
    }
    let results: Vec<(Transport, Vec<Measured>)> = Transport::ALL
        .into_iter()
        .zip(&samples)
        .map(|(t, per_size)| (t, per_size.iter().map(|runs| median_of(runs)).collect()))
        .collect();
    // `of`'s rate ÷ `to`'s rate in the same run, at each size: the median over runs and the
    // range (lowest, highest).
    let spread = |of: Transport, to: Transport| -> Vec<Spread> {
        let index = |t: Transport| Transport::ALL.iter().position(|&x| x == t).unwrap();
        let (a, b) = (&samples[index(of)], &samples[index(to)]);
        a.iter()
            .zip(b)
            .map(|(a, b)| Spread::of(a.iter().zip(b).map(|(x, y)| x.rate() / y.rate())))
            .collect()
    };
    let ratio = |of: Transport, to: Transport| -> Vec<f64> {
        spread(of, to).iter().map(|s| s.median).collect()
    };
    writeln!(md, "### Cross-process throughput\n").unwrap();
    table_head(&mut md, "transport", &SIZES);
    for (t, row) in &results {
        write!(md, "| {} |", t.name()).unwrap();
        for m in row {
            write!(md, " {} msg/s, {:.2} GB/s |", fmt_rate(m.rate()), m.gbps()).unwrap();
        }
        writeln!(md).unwrap();
    }
    let shm = &results[0].1;
    writeln!(
        md,
        "\nringfile's throughput (batched) as a multiple of each (same run, same sizes; rows \
         that read every byte against ringfile reading every byte; the median of the ratios \
         of {} runs taken back to back, and in brackets their lowest and highest):\n",
        s.runs
    )
    .unwrap();
    table_head(&mut md, "ringfile ÷", &SIZES);
    for &t in &Transport::ALL {
        let ours = t.ringfile_counterpart();
        if t == ours {
            continue;
        }
        write!(md, "| {} |", t.name()).unwrap();
        for r in spread(ours, t) {
            write!(md, " {:.2}× ({:.2}–{:.2}) |", r.median, r.low, r.high).unwrap();
        }
        writeln!(md).unwrap();
    }

    // In-process.
    writeln!(md, "\n### In-process, two threads\n").unwrap();
    table_head(&mut md, "queue", &SIZES);
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

    let cost = cost_section(&mut md, s.runs);

    // Latency.
    writeln!(
        md,
        "\n### Round trip between two processes ({} round trips after warm-up)\n",
        s.latency_iters
    )
    .unwrap();
    writeln!(md, "| ping-pong | size | p50 | p99 | p99.9 | max |").unwrap();
    writeln!(md, "|---|---:|---:|---:|---:|---:|").unwrap();
    let mut lat = Vec::new();
    for kind in PingPong::ALL {
        for size in [8usize, 64] {
            if matches!(kind, PingPong::CacheLine | PingPong::Futex) && size == 64 {
                continue; // the floors move no payload
            }
            eprintln!("latency {} {size} B", kind.name());
            let iters = if matches!(
                kind,
                PingPong::RingfileSpin | PingPong::CacheLine | PingPong::TwoLines
            ) {
                s.latency_iters
            } else {
                s.latency_iters / 4
            };
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
            lat.push((
                kind,
                size,
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
            ));
        }
    }

    // The programs.
    eprintln!("programs 65536 B");
    let count = if s.runs > 3 { 100_000 } else { 20_000 };
    let library = shm[SIZES.len() - 1];
    let mut cli = Vec::new();
    for _ in 0..s.runs {
        match benches::programs::gen_verify(65536, CAPACITY, count) {
            Some(m) => cli.push(m),
            None => break,
        }
    }
    writeln!(md, "\n### The programs, 64 KiB messages\n").unwrap();
    if cli.is_empty() {
        writeln!(
            md,
            "Not measured: build the programs first (`cargo build --release`)."
        )
        .unwrap();
    } else {
        cli.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        let m = cli[cli.len() / 2];
        writeln!(
            md,
            "`producer --gen {count} --size 65536` into `consumer --verify` (every byte of every \
             message generated and checked; default waiting), {} MiB ring: {:.2} GB/s = {:.2}× \
             the library's batched 64 KiB figure above, which touches one byte per message \
             (target ≥ 0.5×).",
            CAPACITY >> 20,
            m.gbps(),
            m.gbps() / library.gbps()
        )
        .unwrap();
    }

    // Async against blocking.
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

    // Ring size.
    writeln!(
        md,
        "\n### ringfile cross-process throughput against ring capacity\n"
    )
    .unwrap();
    writeln!(md, "| capacity | 1 KiB messages | 64 KiB messages |").unwrap();
    writeln!(md, "|---:|---:|---:|").unwrap();
    for shift in [16u32, 18, 20, 22, 24, 26] {
        let capacity = 1u64 << shift;
        let small = median(s.runs, || {
            cross_process(Transport::Ringfile, 1024, capacity, Stop::Time(s.budget))
        });
        let large = if capacity >= 256 << 10 {
            let m = median(s.runs, || {
                cross_process(Transport::Ringfile, 65536, capacity, Stop::Time(s.budget))
            });
            format!("{:.2} GB/s", m.gbps())
        } else {
            "— (max message 32 KiB)".into()
        };
        eprintln!("capacity {capacity}");
        writeln!(
            md,
            "| {} KiB | {:.2} GB/s | {large} |",
            capacity >> 10,
            small.gbps()
        )
        .unwrap();
    }

    // Targets.
    writeln!(md, "\n### Targets\n").unwrap();
    let (of_floor, of_pipe, of_ipmpsc, of_unix) = (
        ratio(Transport::Ringfile, Transport::Floor),
        ratio(Transport::Ringfile, Transport::Pipe),
        ratio(Transport::Ringfile, Transport::Ipmpsc),
        ratio(Transport::Ringfile, Transport::UnixStream),
    );
    for (i, size) in SIZES.iter().enumerate() {
        if ![8, 64, 65536].contains(size) {
            continue;
        }
        if *size == 65536 {
            writeln!(
                md,
                "- {size} B: {:.0}% of the floor (target ≥ 70%); {:.1}× a Unix stream socket (target ≥ 5×)",
                of_floor[i] * 100.0,
                of_unix[i]
            )
            .unwrap();
        } else {
            writeln!(
                md,
                "- {size} B: {:.0}% of the floor (target ≥ 70%); {:.1}× a pipe (target ≥ 60×); {:.1}× ipmpsc (target ≥ 30×)",
                of_floor[i] * 100.0,
                of_pipe[i],
                of_ipmpsc[i]
            )
            .unwrap();
        }
    }
    let ratios = |of: Transport, to: Transport| -> String {
        ratio(of, to)
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let sizes = SIZES.map(|s| format!("{s} B")).join(" / ");
    writeln!(
        md,
        "- batched ÷ floor at {sizes} (target ≥ 0.85 at every size):\n  \
         - receivers reading every byte: {}\n  \
         - receivers touching one byte per message: {}",
        ratios(Transport::RingfileRead, Transport::FloorRead),
        ratios(Transport::Ringfile, Transport::Floor),
    )
    .unwrap();
    writeln!(
        md,
        "  (a receiver that only touches one byte per message is, at small sizes, faster than \
         its sender: it catches up, and the two then fight over the lines being written, so \
         those rates say which side is faster as much as what each costs; a ratio above 1 \
         there means the floor's receiver fell into that regime, not that ringfile beats the \
         bare ring. Receivers that read every byte are what real consumers do; the floor's 64 B row \
         (one aligned line per message) can fall into that regime even so.)"
    )
    .unwrap();
    writeln!(
        md,
        "- batched ÷ the floor at ringfile's record size (the same bytes at the same stride as \
         ringfile's records, 8 more than the payload rounded up to 8, with none of ringfile's \
         code: what the code costs across processes; the floor to this row is what the \
         format costs), at {sizes}:\n  \
         - receivers reading every byte: {}\n  \
         - receivers touching one byte per message: {}\n  \
         (where the floor is well ahead at 256 B and 1 KiB, this row shows why: the floor's \
         messages there lie at strides that are multiples of 256 B, which no record with a \
         header has; FORMAT.md, \"Why records are aligned to 8 bytes\", has what such strides \
         were measured to be worth, and what padding records up to them would win or lose.)",
        ratios(Transport::RingfileRead, Transport::FloorRecordRead),
        ratios(Transport::Ringfile, Transport::FloorRecord),
    )
    .unwrap();
    writeln!(
        md,
        "- per message (`send`/`recv`) ÷ batched at {sizes} (target ≥ 0.5 at 8 and 64 B):\n  \
         - receivers reading every byte: {}\n  \
         - receivers touching one byte per message: {}",
        ratios(Transport::RingfilePerMessageRead, Transport::RingfileRead),
        ratios(Transport::RingfilePerMessage, Transport::Ringfile),
    )
    .unwrap();
    let ns = |p: benches::cost::Path| &cost.iter().find(|(x, _)| *x == p).unwrap().1;
    let cost_ratio = |of: benches::cost::Path, to: benches::cost::Path| -> String {
        // A rate ratio: time of `to` over time of `of`.
        ns(to)
            .iter()
            .zip(ns(of))
            .map(|(t, o)| format!("{:.2}", t.total() / o.total()))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    writeln!(
        md,
        "- the same two ratios from processor time on one thread (the code paths alone, no line \
         moving between cores) at {}: batched ÷ floor {}; per message ÷ batched {}",
        COST_SIZES.map(|s| format!("{s} B")).join(" / "),
        cost_ratio(benches::cost::Path::Batched, benches::cost::Path::Floor),
        cost_ratio(
            benches::cost::Path::PerMessage,
            benches::cost::Path::Batched
        ),
    )
    .unwrap();
    {
        use benches::cost::Path;
        let steps = (0..COST_SIZES.len())
            .map(|i| {
                let (floor, format, ours) = (
                    ns(Path::Floor)[i],
                    ns(Path::Format)[i],
                    ns(Path::Batched)[i],
                );
                format!(
                    "{} B {:.1} → {:.1} → {:.1} (sending {:.1} → {:.1} → {:.1})",
                    COST_SIZES[i],
                    floor.total(),
                    format.total(),
                    ours.total(),
                    floor.send,
                    format.send,
                    ours.send
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        writeln!(
            md,
            "- where batched ÷ floor goes on one thread, ns per message, floor → the floor in \
             ringfile's record format → ringfile batched: {steps}"
        )
        .unwrap();
    }
    let p50 = |k: PingPong, size: usize| {
        lat.iter()
            .find(|(kind, s, _, _)| *kind == k && *s == size)
            .map(|x| (x.2, x.3))
            .unwrap()
    };
    let (spin, line, two, park, futex) = (
        p50(PingPong::RingfileSpin, 8),
        p50(PingPong::CacheLine, 8),
        p50(PingPong::TwoLines, 8),
        p50(PingPong::RingfilePark, 8),
        p50(PingPong::Futex, 8),
    );
    // The p50 ratio again from back-to-back pairs: the table's rows were measured minutes
    // apart, and this machine's line transfers change speed from minute to minute.
    eprintln!("latency pairs: ringfile spin against the cache line, 8 B");
    let mut pairs: Vec<f64> = (0..5)
        .map(|_| {
            let iters = s.latency_iters / 5;
            let ours = round_trips(PingPong::RingfileSpin, 8, iters).value_at_quantile(0.5);
            let line = round_trips(PingPong::CacheLine, 8, iters).value_at_quantile(0.5);
            ours as f64 / line.max(1) as f64
        })
        .collect();
    writeln!(
        md,
        "- busy-spin round trip (8 B): p50 {} ns = {:.2}× the bare cache-line round trip of {} ns; \
         {:.2}× as the median of 5 back-to-back pairs (target ≤ 1.6×); p99 {} ns (target < \
         1000 ns); {:.2}× the flag-then-data floor of {} ns (two serial line transfers each way, \
         as ringfile's tail-then-record)",
        spin.0,
        spin.0 as f64 / line.0 as f64,
        line.0,
        median_f64(&mut pairs),
        spin.1,
        spin.0 as f64 / two.0 as f64,
        two.0,
    )
    .unwrap();
    writeln!(
        md,
        "- park round trip (8 B): p50 {} ns = {:.2}× the bare futex round trip of {} ns (target ≤ 1.2×)",
        park.0,
        park.0 as f64 / futex.0 as f64,
        futex.0
    )
    .unwrap();

    barrier_section(&mut md, s);

    chart(&results, &s.out.join("throughput.svg"));
    md
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

/// The per-message path with the asymmetric fence (membarrier) against the same binary with
/// it turned off (`RINGFILE_NO_MEMBARRIER=1`: a full fence per publish and per release), each
/// in fresh processes (the choice is made once per process), interleaved.
fn barrier_section(md: &mut String, s: &Settings) {
    writeln!(
        md,
        "\n### The per-message barrier: membarrier against a fence per publish\n\n\
         Fresh processes of this binary, interleaved, median of {} (each itself a median of \
         5 runs of 400 ms, or of 100 000 round trips); \"fence\" sets \
         `RINGFILE_NO_MEMBARRIER=1`; in brackets the range of the pairs' ratios.\n",
        s.runs
    )
    .unwrap();
    writeln!(
        md,
        "| per message | asymmetric (membarrier) | fence | ratio |"
    )
    .unwrap();
    writeln!(md, "|---|---:|---:|---:|").unwrap();
    for size in [8usize, 64] {
        eprintln!("barrier: per message {size} B");
        // "… 8 B: 47.67 M msg/s, 0.38 GB/s"
        let (a, b, r) = interleaved(
            s.runs,
            &["--one", "ringfile-each", &size.to_string()],
            |l| l.split(": ").nth(1)?.split(" M msg/s").next()?.parse().ok(),
            false,
        );
        writeln!(
            md,
            "| throughput, {size} B | {a:.2} M msg/s | {b:.2} M msg/s | {:.2}× ({:.2}–{:.2}) |",
            r.median, r.low, r.high
        )
        .unwrap();
    }
    eprintln!("barrier: round trip 8 B");
    // "… 8 B: p50 181 ns, p99 300 ns, p99.9 541 ns"
    let (a, b, r) = interleaved(
        s.runs,
        &["--one-trip", "spin", "8"],
        |l| l.split("p50 ").nth(1)?.split(" ns").next()?.parse().ok(),
        true,
    );
    writeln!(
        md,
        "| busy-spin round trip p50, 8 B | {a:.0} ns | {b:.0} ns | {:.2}× ({:.2}–{:.2}) |",
        r.median, r.low, r.high
    )
    .unwrap();
    writeln!(
        md,
        "\nRatios > 1 favour the asymmetric fence (for the round trip: fence ÷ membarrier)."
    )
    .unwrap();
}

/// Runs this binary with `args` `runs` times with the asymmetric fence and as many with the
/// fence forced, interleaved; the medians of what `parse` reads from their last lines, and
/// the spread of the pairs' ratios (membarrier ÷ fence, or its inverse if `inverse`: for
/// times).
fn interleaved(
    runs: usize,
    args: &[&str],
    parse: impl Fn(&str) -> Option<f64>,
    inverse: bool,
) -> (f64, f64, Spread) {
    let (mut light, mut fenced, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let a = parse(&report_child(args, false));
        let b = parse(&report_child(args, true));
        if let (Some(a), Some(b)) = (a, b) {
            ratios.push(if inverse { b / a } else { a / b });
        }
        light.extend(a);
        fenced.extend(b);
    }
    (
        median_f64(&mut light),
        median_f64(&mut fenced),
        Spread::of(ratios.into_iter()),
    )
}

/// Runs this binary with `args` (and the fence forced, if `fence`); its last line of output.
fn report_child(args: &[&str], fence: bool) -> String {
    let mut command = std::process::Command::new(std::env::current_exe().expect("own executable"));
    command.args(args);
    if fence {
        command.env("RINGFILE_NO_MEMBARRIER", "1");
    } else {
        command.env_remove("RINGFILE_NO_MEMBARRIER");
    }
    let out = command.output().expect("run the report in a child process");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

const COST_SIZES: [usize; 4] = [8, 64, 256, 1024];

/// The single-thread cost table ([`benches::cost`]): time per message for each path and size.
fn cost_section(
    md: &mut String,
    runs: usize,
) -> Vec<(benches::cost::Path, Vec<benches::cost::Cost>)> {
    writeln!(
        md,
        "\n### Processor time per message, one thread\n\n\
         One thread sends runs of messages into a 256 KiB ring and receives them: the work of \
         each code path with no cache line moving between cores (steady where cross-core \
         rates are not). Nanoseconds per message sent and received (in brackets: sending + \
         receiving, timed apart), the run of median total of {runs} rounds (each round measures \
         every path at every size, so that the machine changing speed falls on all alike). \
         The second row is the \
         floor's loop writing ringfile's record layout (8-byte length header, payload 8 bytes \
         past an 8-aligned start, skip at the end) with none of ringfile's code: the floor to \
         it is what the format costs, it to ringfile what the code costs.\n"
    )
    .unwrap();
    table_head(md, "path", &COST_SIZES);
    // Rounds of every path at every size, so that a change of the machine's speed during the
    // table falls on all paths alike; each cell is the median of its rounds.
    let paths = benches::cost::Path::ALL;
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

/// A table's first two lines: `first`, then one column per size.
fn table_head(md: &mut String, first: &str, sizes: &[usize]) {
    write!(md, "| {first} |").unwrap();
    for size in sizes {
        write!(md, " {size} B |").unwrap();
    }
    writeln!(md).unwrap();
    writeln!(md, "|---|{}", "---:|".repeat(sizes.len())).unwrap();
}

fn chart(results: &[(Transport, Vec<Measured>)], path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let max = results
        .iter()
        .flat_map(|(_, r)| r.iter().map(|m| m.gbps()))
        .fold(0.01, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Cross-process throughput (GB/s, log scale)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (8f64..65536f64).log_scale(),
            (0.001f64..max * 2.0).log_scale(),
        )
        .unwrap();
    chart
        .configure_mesh()
        .x_desc("message size (bytes)")
        .y_desc("GB/s")
        .draw()
        .unwrap();
    for (i, (t, row)) in results.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = SIZES
            .iter()
            .zip(row)
            .map(|(&s, m)| (s as f64, m.gbps().max(0.001)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .unwrap()
            .label(t.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .unwrap();
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .unwrap();
    root.present().unwrap();
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
