//! Test support for the programs' and the bridge's end-to-end tests: the binary of another
//! workspace package, built once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary `name` of workspace package `package`, beside `beside` (the test's own
/// package binary). Cargo builds the other programs for a workspace test run but not for
/// `cargo test -p` of one package, so each is brought up to date once per run (a no-op when
/// it is), in the profile the tests run in.
pub fn sibling_exe(beside: &Path, package: &str, name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", package]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building {package} failed");
        built.push(package.to_string());
    }
    beside.with_file_name(name)
}
