//! The `producer` and `consumer` programs themselves: `producer --gen` into `consumer
//! --verify`, which fills and checks every byte of every message, measured from the
//! consumer's JSON summary.

use crate::Measured;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Where the programs are: beside this executable (`target/release/`), if they were built.
pub(crate) fn program(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join(name);
    path.is_file().then_some(path)
}

/// `producer --gen COUNT --size SIZE --capacity CAPACITY` into `consumer --verify`, both with
/// their default (adaptive) waiting, pinned like the other runs (`taskset` is not needed: the
/// programs inherit this thread's affinity, so each is pinned to the core of its end).
/// `None` if the programs are not built (`cargo build --release` builds them).
pub fn gen_verify(size: usize, capacity: u64, count: u64) -> Option<Measured> {
    let (producer, consumer) = (program("producer")?, program("consumer")?);
    let path = PathBuf::from(format!(
        "/dev/shm/ringfile-bench-cli-{size}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let capacity = format!("{capacity}");
    // The consumer waits for the producer to create the ring.
    crate::pin(crate::End::Receiver);
    let verifier = Command::new(consumer)
        .args(["--verify", "--quiet", "--json"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the consumer program");
    crate::pin(crate::End::Sender);
    let status = Command::new(producer)
        .args([
            "--quiet",
            "--capacity",
            &capacity,
            "--gen",
            &count.to_string(),
        ])
        .args(["--size", &size.to_string()])
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .expect("run the producer program");
    assert!(status.success(), "producer --gen failed");
    let out = verifier.wait_with_output().expect("wait for the consumer");
    let _ = std::fs::remove_file(&path);
    Some(summary("consumer --verify", &out, true))
}

/// The figures of a program's `--json` summary (the last line of its standard error), after
/// checking that the program succeeded; with `verified` (a `--verify` run), that its summary
/// counts errors and that they are none.
pub(crate) fn summary(what: &str, output: &Output, verified: bool) -> Measured {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed: {stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(stderr.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("no JSON summary from {what} ({e}): {stderr}"));
    let field = |key: &str| -> f64 {
        summary[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no {key} in the summary of {what}: {summary}"))
    };
    if verified {
        assert_eq!(field("errors"), 0.0, "{what} found errors");
    }
    Measured {
        messages: field("messages") as u64,
        bytes: field("bytes") as u64,
        elapsed: Duration::from_secs_f64(field("seconds")),
    }
}
