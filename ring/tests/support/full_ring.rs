//! A ring left exactly full by a writer that ignores the 8-byte END reserve FORMAT.md asks
//! for: its tail a whole capacity past its head, no byte free.

use ringfile::format::{HEADER_SIZE, PUBLISHED_TAIL_OFFSET, RECORD_DATA};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Creates at `path` a 4 KiB ring holding three messages (2040, 2032 and 0 bytes) and no
/// free byte; its stream is open, with no producer attached.
pub fn create_exactly_full_ring(path: &Path) {
    let mut producer = ringfile::Ring::create(path, 4096)
        .unwrap()
        .producer()
        .unwrap();
    producer.send(&[b'a'; 2040]).unwrap(); // a 2048-byte record
    producer.send(&[b'b'; 2032]).unwrap(); // 2040 bytes: 8 left, the reserve
    producer.detach(); // the stream left open
                       // The other writer: an empty DATA record in the reserve, published.
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut header = [0u8; 8];
    header[4..].copy_from_slice(&RECORD_DATA.to_le_bytes());
    file.write_all_at(&header, HEADER_SIZE + 4088).unwrap();
    file.write_all_at(&4096u64.to_le_bytes(), PUBLISHED_TAIL_OFFSET)
        .unwrap();
}
