//! The options of the `producer` and `consumer` programs, as clap definitions: each
//! program parses them, and `ringfile completions`/`ringfile man` describe them.

pub mod consumer;
pub mod producer;
