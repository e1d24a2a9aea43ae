//! A real `nats-server -js` for the bridge's tests and its benchmark, one copy included by
//! path (`#[path]`) by both (`bridge/tests/bridge.rs`, `benches/src/bridge.rs`): on a free
//! loopback port, its store in a directory the caller owns. Never a mock: the bridge is
//! tested against the server it runs against.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to listen once started.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A loopback port that was free a moment ago (the server takes it next).
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Starts `nats-server -js` on `port` of 127.0.0.1 with its store in `store`, and waits until
/// it listens; `Err` says why not (no `nats-server` on PATH, or it never listened).
pub fn start(port: u16, store: &Path) -> Result<Child, String> {
    let mut child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot run nats-server ({e}); Debian: apt-get install nats-server")
        })?;
    let deadline = Instant::now() + START_LIMIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("nats-server exited at once ({status})"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "nats-server did not listen on port {port} within {START_LIMIT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}
