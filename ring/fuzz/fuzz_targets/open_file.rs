//! Arbitrary bytes as a ring file: opening validates them, and a ring that passes is used
//! by a consumer and a producer without panicking or leaving its mapping.
#![no_main]

#[path = "../../tests/support/fuzz_ops.rs"]
mod fuzz_ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_ops::open_bytes(data));
