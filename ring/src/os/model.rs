//! The model checker's stand-ins for the system calls the protocol needs, in one context a
//! heap ring carries under loom (which cannot run real system calls): a futex and a
//! membarrier, and what the processes of a model can do. Compiled only under `--cfg loom`.

use crate::os::sync::Ordering;

/// The model-checking context of one heap ring.
pub(crate) struct Model {
    /// Futex emulation.
    pub(crate) parker: LoomParker,
    /// Membarrier emulation.
    pub(crate) barrier: LoomBarrier,
}

impl Model {
    /// A context for processes that can do what `config` says (for a heap ring).
    #[cfg(test)]
    pub(crate) fn new(config: LoomConfig) -> Model {
        Model {
            parker: LoomParker::default(),
            barrier: LoomBarrier {
                held: Default::default(),
                config,
            },
        }
    }
}

/// A futex stand-in the model checker understands: the compare-and-sleep happens under a
/// mutex that the waker also takes, which gives it the kernel's atomicity. Timeouts are not
/// modelled (a lost wake-up shows up as a deadlock, which loom reports).
#[derive(Default)]
pub(crate) struct LoomParker {
    pub(crate) lock: loom::sync::Mutex<()>,
    pub(crate) cond: loom::sync::Condvar,
}

/// The model checker's stand-in for membarrier: a lock whose critical sections are the
/// waker's store-and-load steps, and the configuration of a model. An Acquire/Release spin
/// lock, not `loom::sync::Mutex`: loom makes that one's operations `SeqCst` fences, which
/// would fence the waker's step and hide what skipping its fence does.
pub(crate) struct LoomBarrier {
    pub(crate) held: loom::sync::atomic::AtomicBool,
    pub(crate) config: LoomConfig,
}

impl LoomBarrier {
    pub(crate) fn lock(&self) {
        while self
            .held
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            loom::thread::yield_now();
        }
    }

    pub(crate) fn unlock(&self) {
        self.held.store(false, Ordering::Release);
    }
}

/// What the processes of a model can do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoomConfig {
    /// The wakers' process registered.
    pub(crate) registered: bool,
    /// The sleepers' process can issue membarriers (when they declare).
    pub(crate) sleeper_can: bool,
    /// Every membarrier call fails (after the declaration: the switch back to fences).
    pub(crate) fails: bool,
}
