//! Atomics: the standard ones, or loom's model-checked ones under `--cfg loom`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// One turn of a loop that retries until another thread's stores settle (a seqlock read that
/// raced the writer): a spin hint, the core given up every 64th turn. Under loom, a yield to
/// the model checker, which would otherwise unroll the loop into every branch it allows.
#[inline]
pub(crate) fn retry_pause(tries: u32) {
    #[cfg(loom)]
    {
        let _ = tries;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        std::hint::spin_loop();
        if tries.is_multiple_of(64) {
            std::thread::yield_now();
        }
    }
}
