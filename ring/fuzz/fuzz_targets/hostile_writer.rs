//! Producer and consumer operations on one ring while a hostile writer changes words of the
//! file between them: no panic, no access outside the mapping, no held message changed by
//! this process's own producer.
#![no_main]

#[path = "../../tests/support/fuzz_ops.rs"]
mod fuzz_ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_ops::hostile_ops(data));
