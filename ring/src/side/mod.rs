#[cfg(all(feature = "async", not(loom)))]
pub mod async_api;
pub(crate) mod consumer;
pub(crate) mod endpoint;
pub(crate) mod producer;
pub mod typed;
pub(crate) mod typed_sides;
#[cfg(all(feature = "async", not(loom)))]
pub(crate) mod watcher;
