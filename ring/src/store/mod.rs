pub(crate) mod file;
pub(crate) mod region;
pub(crate) mod shared;
