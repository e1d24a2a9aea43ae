//! SIGINT and SIGTERM: the first asks the program to finish cleanly (it polls
//! [`Signals::requested`]); a second one while it does exits at once with status 1.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether a clean stop was asked for.
#[derive(Clone, Debug)]
pub struct Signals {
    flag: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> std::io::Result<Signals> {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Order matters: the conditional shutdown runs first, so the first signal only
            // sets the flag and the second (flag already set) exits.
            signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&flag))?;
            signal_hook::flag::register(sig, Arc::clone(&flag))?;
        }
        Ok(Signals { flag })
    }

    /// Whether SIGINT or SIGTERM arrived.
    #[inline]
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}
