//! Benchmarks for shmring (see issue 4).
