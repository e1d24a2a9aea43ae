pub(crate) mod barrier;
pub(crate) mod lapping;
pub(crate) mod lifecycle;
pub(crate) mod roles;
pub(crate) mod slots;
pub(crate) mod wait;
