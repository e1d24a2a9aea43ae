//! What a process can learn about how ringfile runs in it: which fallbacks it took, how its
//! waits went, and the clock the programs stamp messages with. None of it is needed to use a
//! ring; operators' tools, tests and benchmarks read it.
//!
//! ```
//! // A process that has not waited yet has nothing to report.
//! assert_eq!(ringfile::diagnostics::late_wakeups(), 0);
//! let before = ringfile::diagnostics::monotonic_ns();
//! assert!(ringfile::diagnostics::monotonic_ns() >= before);
//! ```

#[cfg(not(loom))]
pub use crate::os::sigbus::TRACKED_MAPPINGS;
pub use crate::os::sys::monotonic_ns;
pub use crate::protocol::barrier::membarrier_fallback;
pub use crate::protocol::wait::{futex_fallback, late_wakeups};
