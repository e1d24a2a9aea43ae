#[cfg(not(loom))]
pub(crate) mod fork;
#[cfg(not(loom))]
pub(crate) mod handoff;
#[cfg(loom)]
pub(crate) mod model;
#[cfg(not(loom))]
pub(crate) mod sigbus;
pub(crate) mod sync;
pub(crate) mod sys;
