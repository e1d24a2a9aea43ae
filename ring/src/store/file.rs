//! Creating, opening and validating ring files.
//!
//! Creation is atomic: the ring is initialised in an unnamed file (`O_TMPFILE`) in the same
//! directory and then linked to its path (`linkat`), which fails if the path exists — so no
//! process ever sees a half-written ring, the loser of a creation race opens the winner's
//! file, and a creator killed at any moment leaves nothing behind (an unnamed file vanishes
//! with its last descriptor). Where the file system has no `O_TMPFILE`, the ring is
//! initialised under a temporary name (`.ringfile-PID-N.tmp`, locked while its creator lives)
//! and hard-linked; such leftovers of creators that died are removed by the next creation in
//! the directory.

use crate::error::{Error, Result};
use crate::format::layout::{
    header_size, max_message_len, Header, FORMAT_VERSION, HEADER_SIZE, MAGIC, MAX_CONSUMER_SLOTS,
    SINGLE_CONSUMER_VERSION,
};
use crate::format::position::{Capacity, Position};
use crate::format::shape::Shape;
use crate::os::sys;
use crate::store::region::Region;
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

/// Checks a capacity asked for by a caller: the one place where a number becomes a
/// [`Capacity`] (a file's is checked with its header, in `validate_header`).
pub(crate) fn check_capacity(capacity: u64) -> Result<Capacity> {
    Capacity::new(capacity).ok_or(Error::InvalidCapacity {
        capacity,
        min: crate::format::layout::MIN_CAPACITY,
        max: crate::format::layout::MAX_CAPACITY,
    })
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |error| Error::Io {
        path: path.to_path_buf(),
        op,
        error,
    }
}

/// Checks a number of consumer slots asked for by a caller, with the capacity already checked.
pub(crate) fn check_shape(capacity: Capacity, slots: u32) -> Result<Shape> {
    Shape::new(capacity, slots).ok_or(Error::InvalidConsumers {
        consumers: slots,
        max: MAX_CONSUMER_SLOTS,
    })
}

/// Checks the permission bits asked for a new ring: its creator must be able to use it (both
/// roles need read and write), and only permission bits are allowed.
pub(crate) fn check_mode(mode: u32) -> Result<()> {
    if mode <= 0o777 && mode & 0o600 == 0o600 {
        Ok(())
    } else {
        Err(Error::InvalidMode { mode })
    }
}

/// Reserves the storage of a ring file of `len` bytes (see [`sys::fallocate`]).
fn reserve(file: &File, len: u64, name: &Path) -> Result<()> {
    sys::fallocate(file, len)
        .map(drop)
        .map_err(|error| space_error(name, len, error, "reserve space"))
}

/// Sizes `file` for a ring of `capacity`, reserves its storage, maps it and writes the
/// header. The control block is the file's zero bytes: an empty ring at position 0.
pub(crate) fn initialise(file: File, shape: Shape, name: &Path) -> Result<OpenFile> {
    let len = shape.file_len();
    file.set_len(len)
        .map_err(|error| space_error(name, len, error, "size the ring file"))?;
    reserve(&file, len, name)?;
    let region = map(&file, shape, name, false)?;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let header = Header::new(shape.capacity().bytes(), shape.slots(), created, sys::pid());
    region.write_header(&header);
    Ok(OpenFile {
        file,
        region,
        header,
    })
}

fn space_error(name: &Path, needed: u64, error: io::Error, op: &'static str) -> Error {
    match error.raw_os_error() {
        Some(libc::ENOSPC | libc::EFBIG | libc::EDQUOT) => Error::NoSpace {
            path: name.to_path_buf(),
            needed,
            error,
        },
        _ => Error::Io {
            path: name.to_path_buf(),
            op,
            error,
        },
    }
}

/// Creates a ring at `path`, atomically. `Err(Error::AlreadyExists)` if anything is there.
pub(crate) fn create(path: &Path, capacity: u64, slots: u32, mode: u32) -> Result<OpenFile> {
    let shape = check_shape(check_capacity(capacity)?, slots)?;
    check_mode(mode)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.file_name().is_none() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            op: "create",
            error: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        });
    }
    // Best effort, on either path: a leftover may come from a creator that fell back (on
    // this file system earlier, or from another program), and a directory we cannot sweep
    // still lets us create.
    let _ = remove_leftovers(&dir);
    match sys::open_tmpfile(&dir, mode).map_err(io_err(path, "create the ring file"))? {
        Some(file) => {
            exact_mode(&file, mode, path)?;
            let opened = initialise(file, shape, path)?;
            sys::link_fd(&opened.file, path).map_err(|e| link_error(path, e))?;
            Ok(opened)
        }
        None => create_with_temp_name(&dir, path, shape, mode),
    }
}

/// Gives a new file exactly the permission bits `mode`: `open(2)` applied the umask to them,
/// which can take away the very bits (group read and write, say) that were asked for.
fn exact_mode(file: &File, mode: u32, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err(path, "set the new ring file's mode"))
}

fn link_error(path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::AlreadyExists {
        Error::AlreadyExists {
            path: path.to_path_buf(),
        }
    } else {
        io_err(path, "link the new ring file into place")(e)
    }
}

/// Temporary names of the fallback creation scheme: `.ringfile-PID-N.tmp`, short whatever the
/// ring's own name (so a ring may have any name the file system allows).
const TEMP_PREFIX: &str = ".ringfile-";
const TEMP_SUFFIX: &str = ".tmp";
/// A creator holds an open file description lock on this byte of its temporary file while
/// it works; a temporary file whose byte is unlocked belongs to a creator that died.
const CREATOR_LOCK_BYTE: u64 = 2;
/// A temporary file unlocked and untouched for this long is a dead creator's leftover. (The
/// age guards the instant between a live creator making the file and locking it.)
const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// The fallback for file systems without `O_TMPFILE`: initialise under a temporary name,
/// hard-link, unlink the temporary name.
fn create_with_temp_name(dir: &Path, path: &Path, shape: Shape, mode: u32) -> Result<OpenFile> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}{TEMP_SUFFIX}",
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
        .map_err(io_err(path, "create the ring file"))?;
    let result = sys::ofd_try_lock(&file, CREATOR_LOCK_BYTE)
        .map_err(io_err(path, "lock the new ring file"))
        .and_then(|_| exact_mode(&file, mode, path))
        .and_then(|()| initialise(file, shape, path))
        .and_then(|opened| match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(opened),
            Err(e) => Err(link_error(path, e)),
        });
    // The temporary name is only scaffolding: the ring lives on under `path` (or is discarded).
    let _ = std::fs::remove_file(&tmp);
    let opened = result?;
    sys::ofd_unlock(&opened.file, CREATOR_LOCK_BYTE).map_err(io_err(path, "unlock"))?;
    Ok(opened)
}

/// Removes the temporary files that creators which died left in `dir` (only the fallback
/// creation scheme can leave any, but every creation sweeps). Returns the paths removed.
pub(crate) fn remove_leftovers(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&path)
        else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= LEFTOVER_AGE);
        // Taking the creator's lock proves the creator is gone (and keeps a reused name's new
        // creator from starting while we remove it: its lock attempt fails).
        if meta.file_type().is_file()
            && old
            && sys::ofd_try_lock(&file, CREATOR_LOCK_BYTE).unwrap_or(false)
            && std::fs::remove_file(&path).is_ok()
        {
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Opens the file at `path` (read-write, or read-only for inspection), with one error per
/// reason it cannot be.
fn open_file(path: &Path, write: bool) -> Result<File> {
    // O_NONBLOCK: opening a FIFO must fail validation, not hang waiting for a writer.
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound {
                path: path.to_path_buf(),
            },
            Some(libc::EISDIR) => Error::NotRegularFile {
                path: path.to_path_buf(),
                kind: "directory",
            },
            Some(libc::EACCES | libc::EPERM) if write => Error::PermissionDenied {
                path: path.to_path_buf(),
                error,
                advice: "the ring's owner can grant it with chmod (g+rw or o+rw), or create rings with a mode that does (--mode 0660 for the group, RingOptions::mode)",
            },
            Some(libc::EROFS) if write => Error::PermissionDenied {
                path: path.to_path_buf(),
                error,
                advice: "put rings on a writable file system such as /dev/shm",
            },
            _ => Error::Io {
                path: path.to_path_buf(),
                op: "open",
                error,
            },
        })
}

/// Opens and validates the ring at `path`; refuses a file another user owns unless
/// `allow_other_owner`.
pub(crate) fn open(path: &Path, allow_other_owner: bool) -> Result<OpenFile> {
    let file = open_file(path, true)?;
    if !allow_other_owner {
        let owner = file.metadata().map_err(io_err(path, "stat"))?.uid();
        let uid = sys::euid();
        if owner != uid {
            return Err(Error::OtherOwner {
                path: path.to_path_buf(),
                owner,
                uid,
            });
        }
    }
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
    let (header, shape) = validate_header(&file, name)?;
    // A ring may be sparse (copied, or made by another program): reserve it now, so that a
    // full file system is an error here rather than a SIGBUS at the first write to a hole.
    reserve(&file, shape.file_len(), name)?;
    let region = map(&file, shape, name, false)?;
    let opened = OpenFile {
        file,
        region,
        header,
    };
    positions(&opened.region, name)?;
    Ok(opened)
}

/// Opens the ring at `path` read-only, for inspection: validates its header and maps it
/// without write access (the positions are checked by each look at them).
#[cfg_attr(loom, allow(dead_code))] // the inspector is not model-checked
pub(crate) fn open_read_only(path: &Path) -> Result<OpenFile> {
    let file = open_file(path, false)?;
    let (header, shape) = validate_header(&file, path)?;
    let region = map(&file, shape, path, true)?;
    Ok(OpenFile {
        file,
        region,
        header,
    })
}

/// Maps the whole of `file` (its header validated), registered for the SIGBUS handler's
/// message under `name`: a file another process may truncate is mapped only here.
fn map(file: &File, shape: Shape, name: &Path, read_only: bool) -> Result<Region> {
    let region = Region::map(file, shape, read_only).map_err(io_err(name, "map the ring file"))?;
    #[cfg(not(loom))]
    let region = region.report_sigbus_as(name);
    Ok(region)
}

/// Checks that `file` is a regular file holding a ring header consistent with its length.
fn validate_header(file: &File, name: &Path) -> Result<(Header, Shape)> {
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
    if header.version != FORMAT_VERSION && header.version != SINGLE_CONSUMER_VERSION {
        return Err(Error::UnsupportedVersion {
            path: err_path(),
            found: header.version,
            supported: FORMAT_VERSION,
        });
    }
    let version = header.version;
    let bad = |reason: String| Error::BadHeader {
        path: err_path(),
        reason,
    };
    // Version 1 has no slot count (those bytes are reserved); version 2 has 2 or more.
    let slots = if version == SINGLE_CONSUMER_VERSION {
        1
    } else if (2..=MAX_CONSUMER_SLOTS).contains(&header.consumer_slots) {
        header.consumer_slots
    } else {
        return Err(bad(format!(
            "consumer slots (offset 48) is {}; format version 2 requires 2 to {MAX_CONSUMER_SLOTS}",
            header.consumer_slots
        )));
    };
    if u64::from(header.header_size) != header_size(slots) {
        return Err(bad(format!(
            "header size {} (expected {} for {slots} consumer slot{})",
            header.header_size,
            header_size(slots),
            if slots == 1 { "" } else { "s" }
        )));
    }
    let Some(capacity) = Capacity::new(header.capacity) else {
        return Err(bad(format!(
            "capacity {} is not a power of two from {} to {}",
            header.capacity,
            crate::format::layout::MIN_CAPACITY,
            crate::format::layout::MAX_CAPACITY
        )));
    };
    if header.max_message != max_message_len(header.capacity) {
        return Err(bad(format!(
            "maximum message size {} does not match capacity {} (expected {})",
            header.max_message,
            header.capacity,
            max_message_len(header.capacity)
        )));
    }
    // Nothing in version 1 sets them: a file that does was written by something this
    // reader does not understand, and guessing could misread the ring.
    if header.flags != 0 {
        return Err(bad(format!(
            "flags (offset 44) is {:#010x}; no flag is defined in format version {version}, so it must be 0",
            header.flags
        )));
    }
    check_reserved(&raw, version).map_err(bad)?;
    let shape = Shape::new(capacity, slots).expect("slots checked above");
    let expected = shape.file_len();
    if len != expected {
        return Err(Error::SizeMismatch {
            path: err_path(),
            expected,
            actual: len,
        });
    }
    Ok((header, shape))
}

/// Refuses a header whose reserved bytes are not zero, naming the first word that is not.
/// Version 1 reserves bytes 48-127; version 2 uses 48-51 (the slot count) and reserves
/// 52-127.
fn check_reserved(raw: &[u8], version: u32) -> std::result::Result<(), String> {
    let first_reserved = if version == SINGLE_CONSUMER_VERSION {
        48
    } else {
        52
    };
    // Each is named by the word it lies in: 8-byte words from 48 (52-55 on its own).
    let words = std::iter::once((first_reserved, 56 - first_reserved))
        .chain((56..128).step_by(8).map(|at| (at, 8)));
    for (at, size) in words {
        if raw[at..at + size].iter().any(|&b| b != 0) {
            let mut word = [0u8; 8];
            word[..size].copy_from_slice(&raw[at..at + size]);
            return Err(format!(
                "reserved bytes {first_reserved}-127 are not zero (the {size} at offset {at} hold {:#x}); format version {version} requires zero",
                u64::from_le_bytes(word)
            ));
        }
    }
    Ok(())
}

/// The released head and published tail, checked against each other: both multiples of 8,
/// `head <= tail <= head + capacity`, `tail < MAX_POSITION`. Either may be moving while this
/// runs; the reads are ordered so that a consistent ring always passes (head, then tail, then head again).
pub(crate) fn positions(region: &Region, name: &Path) -> Result<(Position, Position)> {
    use crate::os::sync::Ordering::Acquire;
    let control = region.control();
    let capacity = region.capacity().bytes();
    let head = control.released_head.load(Acquire);
    let tail = control.published_tail.load(Acquire);
    let head_after = control.released_head.load(Acquire);
    let checked = Position::new(head)
        .zip(Position::new(tail))
        .zip(Position::new(head_after))
        .filter(|&((head, tail), head_after)| {
            head.is_aligned()
                && tail.is_aligned()
                && head <= tail
                && tail <= region.capacity().limit(head_after)
        });
    if let Some(((_, tail), head_after)) = checked {
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_name_fallback_creates_a_ring_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r".repeat(255)); // the temporary name does not grow with it
        let opened = create_with_temp_name(
            dir.path(),
            &path,
            Shape::new(Capacity::new(4096).unwrap(), 1).unwrap(),
            0o600,
        )
        .unwrap();
        assert_eq!(opened.header.capacity, 4096);
        // Its creator lock is gone: the roles and a later sweep see a finished ring.
        assert!(!sys::ofd_is_locked(&opened.file, CREATOR_LOCK_BYTE).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(matches!(
            create_with_temp_name(
                dir.path(),
                &path,
                Shape::new(Capacity::new(4096).unwrap(), 1).unwrap(),
                0o600
            ),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn leftovers_of_dead_creators_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - 2 * LEFTOVER_AGE;
        let make = |name: &str| {
            let file = File::create_new(dir.path().join(name)).unwrap();
            file.set_modified(old).unwrap();
            file
        };
        drop(make(".ringfile-999999-0.tmp")); // its creator died: no lock
        let live = make(".ringfile-999999-1.tmp");
        assert!(sys::ofd_try_lock(&live, CREATOR_LOCK_BYTE).unwrap()); // a creator still working
        drop(make("ring")); // not a temporary name
        let fresh = dir.path().join(".ringfile-999999-2.tmp"); // too new to judge
        File::create_new(&fresh).unwrap();
        let removed = remove_leftovers(dir.path()).unwrap();
        assert_eq!(removed, [dir.path().join(".ringfile-999999-0.tmp")]);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".ringfile-999999-1.tmp", ".ringfile-999999-2.tmp", "ring"]
        );
        drop(live);
    }
}
