//! Creating, opening and validating ring files.
//!
//! Creation is atomic: the ring is initialised in a temporary file in the same directory and
//! then hard-linked to its path, which fails if the path exists — so no process ever sees a
//! half-written ring, and the loser of a creation race opens the winner's file.

use crate::error::{Error, Result};
use crate::layout::{
    capacity_is_valid, max_message_len, Header, FORMAT_VERSION, HEADER_SIZE, MAGIC,
};
use crate::region::Region;
use crate::sys;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A validated ring file and its mapping.
pub(crate) struct OpenFile {
    pub(crate) file: File,
    pub(crate) region: Region,
    pub(crate) header: Header,
}

/// Checks a capacity asked for by a caller.
pub(crate) fn check_capacity(capacity: u64) -> Result<()> {
    if capacity_is_valid(capacity) {
        Ok(())
    } else {
        Err(Error::InvalidCapacity {
            capacity,
            min: crate::layout::MIN_CAPACITY,
            max: crate::layout::MAX_CAPACITY,
        })
    }
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Sizes `file` for a ring of `capacity`, reserves its storage, maps it and writes the
/// header. The control block is the file's zero bytes: an empty ring at position 0.
pub(crate) fn initialise(file: File, capacity: u64, name: &Path) -> Result<OpenFile> {
    check_capacity(capacity)?;
    let len = HEADER_SIZE + capacity;
    file.set_len(len)
        .map_err(|source| space_error(name, len, source, "size the ring file"))?;
    sys::fallocate(&file, len).map_err(|source| space_error(name, len, source, "reserve space"))?;
    let region = Region::map(&file, capacity).map_err(io_err(name, "map the ring file"))?;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let header = Header::new(capacity, created, sys::pid());
    region.write_header(&header);
    Ok(OpenFile {
        file,
        region,
        header,
    })
}

fn space_error(name: &Path, needed: u64, source: io::Error, op: &'static str) -> Error {
    match source.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT) => Error::NoSpace {
            path: name.to_path_buf(),
            needed,
            source,
        },
        _ => Error::Io {
            path: name.to_path_buf(),
            op,
            source,
        },
    }
}

/// Creates a ring at `path`, atomically. `Err(Error::AlreadyExists)` if anything is there.
pub(crate) fn create(path: &Path, capacity: u64, mode: u32) -> Result<OpenFile> {
    check_capacity(capacity)?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::Io {
            path: path.to_path_buf(),
            op: "create",
            source: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        })?
        .to_string_lossy();
    let tmp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        sys::pid(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io_err(path, "create the temporary ring file"))?;
    let result =
        initialise(file, capacity, path).and_then(|opened| match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(opened),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(io_err(path, "link the new ring file into place")(e)),
        });
    // The temporary name is only scaffolding: the ring lives on under `path` (or is discarded).
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Opens and validates the ring at `path`.
pub(crate) fn open(path: &Path) -> Result<OpenFile> {
    // O_NONBLOCK: opening a FIFO must fail validation, not hang waiting for a writer.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound {
                path: path.to_path_buf(),
            },
            _ if source.raw_os_error() == Some(libc::EISDIR) => Error::NotRegularFile {
                path: path.to_path_buf(),
                kind: "directory",
            },
            _ => Error::Io {
                path: path.to_path_buf(),
                op: "open",
                source,
            },
        })?;
    validate(file, path)
}

fn file_kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// Checks everything about an open file before it is mapped, then maps it and checks the
/// positions. `name` is how errors refer to it.
pub(crate) fn validate(file: File, name: &Path) -> Result<OpenFile> {
    let err_path = || name.to_path_buf();
    let meta = file.metadata().map_err(io_err(name, "stat"))?;
    if !meta.file_type().is_file() {
        return Err(Error::NotRegularFile {
            path: err_path(),
            kind: file_kind(meta.file_type()),
        });
    }
    let len = meta.size();
    if len < HEADER_SIZE {
        return Err(Error::TooShort {
            path: err_path(),
            len,
            min: HEADER_SIZE,
        });
    }
    let mut raw = [0u8; std::mem::size_of::<Header>()];
    file.read_exact_at(&mut raw, 0)
        .map_err(io_err(name, "read the header"))?;
    let header: Header = bytemuck::pod_read_unaligned(&raw);
    if header.magic != MAGIC {
        return Err(Error::BadMagic {
            path: err_path(),
            found: header.magic,
        });
    }
    if header.version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            path: err_path(),
            found: header.version,
            supported: FORMAT_VERSION,
        });
    }
    let bad = |reason: String| Error::BadHeader {
        path: err_path(),
        reason,
    };
    if u64::from(header.header_size) != HEADER_SIZE {
        return Err(bad(format!(
            "header size {} (expected {HEADER_SIZE})",
            header.header_size
        )));
    }
    if !capacity_is_valid(header.capacity) {
        return Err(bad(format!(
            "capacity {} is not a power of two from {} to {}",
            header.capacity,
            crate::layout::MIN_CAPACITY,
            crate::layout::MAX_CAPACITY
        )));
    }
    if header.max_message != max_message_len(header.capacity) {
        return Err(bad(format!(
            "maximum message size {} does not match capacity {} (expected {})",
            header.max_message,
            header.capacity,
            max_message_len(header.capacity)
        )));
    }
    let expected = HEADER_SIZE + header.capacity;
    if len != expected {
        return Err(Error::SizeMismatch {
            path: err_path(),
            expected,
            actual: len,
        });
    }
    let region = Region::map(&file, header.capacity).map_err(io_err(name, "map the ring file"))?;
    let opened = OpenFile {
        file,
        region,
        header,
    };
    positions(&opened.region, name)?;
    Ok(opened)
}

/// The released head and published tail, checked against each other: both multiples of 8,
/// `head <= tail <= head + capacity`. Either may be moving while this runs; the reads are
/// ordered so that a consistent ring always passes (head, then tail, then head again).
pub(crate) fn positions(region: &Region, name: &Path) -> Result<(u64, u64)> {
    use crate::sync::Ordering::Acquire;
    let control = region.control();
    let capacity = region.capacity();
    let head = control.released_head.load(Acquire);
    let tail = control.published_tail.load(Acquire);
    let head_after = control.released_head.load(Acquire);
    let ok = head.is_multiple_of(8)
        && tail.is_multiple_of(8)
        && head <= tail
        && head_after
            .checked_add(capacity)
            .is_some_and(|limit| tail <= limit);
    if ok {
        Ok((head_after.min(tail), tail))
    } else {
        Err(Error::BadPositions {
            path: name.to_path_buf(),
            head,
            tail,
            capacity,
        })
    }
}
