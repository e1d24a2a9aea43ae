//! SIGINT and SIGTERM: the first asks the program to finish cleanly (it polls
//! [`Signals::requested`]); a second one while it does exits at once with status 1, saying so
//! (and with the JSON failure object under `--json`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether a clean stop was asked for.
#[derive(Clone, Debug)]
pub struct Signals {
    flag: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers. On a second signal, `program: second signal: {consequence}` is
    /// printed (then the JSON object if `json`) and the program exits with status 1.
    pub fn install(program: &str, consequence: &str, json: bool) -> std::io::Result<Signals> {
        let flag = Arc::new(AtomicBool::new(false));
        let error = format!("second signal: {consequence}");
        let mut text = format!("{program}: {error}\n");
        if json {
            let object = serde_json::json!({"program": program, "error": error, "exit": crate::EXIT_FAILURE});
            text.push_str(&format!("{object}\n"));
        }
        // Formatted now, written by the handler: a signal handler may not allocate.
        let text: &'static [u8] = Box::leak(text.into_bytes().into_boxed_slice());
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let flag = Arc::clone(&flag);
            let handler = move || {
                if flag.swap(true, Ordering::Relaxed) {
                    // SAFETY: write(2) and _exit(2) are async-signal-safe; `text` is a
                    // leaked, immutable buffer.
                    unsafe {
                        libc::write(libc::STDERR_FILENO, text.as_ptr().cast(), text.len());
                        libc::_exit(crate::EXIT_FAILURE);
                    }
                }
            };
            // SAFETY: the handler only swaps an atomic (lock-free) and calls the
            // async-signal-safe functions above: it allocates nothing and takes no lock.
            unsafe { signal_hook::low_level::register(sig, handler) }?;
        }
        Ok(Signals { flag })
    }

    /// Whether SIGINT or SIGTERM arrived.
    #[inline]
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}
