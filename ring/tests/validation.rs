//! Opening a bad ring file fails with its own error, naming the path — never a panic, a
//! hang or a SIGBUS. One test per validation failure.

use ringfile::format::{CONTROL_OFFSET, HEADER_SIZE, RECORD_DATA};
use ringfile::{Error, Ring};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const CAP: u64 = 4096;

fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    Ring::create(&path, CAP).unwrap();
    (dir, path)
}

fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

fn open_err(path: &Path) -> Error {
    let err = Ring::open(path).expect_err("open should fail");
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "error should name the path: {text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    err
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        open_err(&dir.path().join("nope")),
        Error::NotFound { .. }
    ));
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty");
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(open_err(&path), Error::TooShort { len: 0, .. }));
}

#[test]
fn short_garbage_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short");
    std::fs::write(&path, b"hello, I am not a ring").unwrap();
    assert!(matches!(open_err(&path), Error::TooShort { len: 22, .. }));
}

#[test]
fn bad_magic() {
    let (_dir, path) = fresh();
    poke(&path, 0, b"NOTARING");
    assert!(matches!(open_err(&path), Error::BadMagic { .. }));
}

#[test]
fn page_of_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage");
    std::fs::write(&path, vec![0xa5u8; 3 * 4096]).unwrap();
    assert!(matches!(open_err(&path), Error::BadMagic { .. }));
}

#[test]
fn unsupported_version() {
    let (_dir, path) = fresh();
    poke(&path, 8, &99u32.to_le_bytes());
    assert!(matches!(
        open_err(&path),
        Error::UnsupportedVersion { found: 99, .. }
    ));
}

#[test]
fn bad_header_size() {
    let (_dir, path) = fresh();
    poke(&path, 12, &8192u32.to_le_bytes());
    assert!(matches!(open_err(&path), Error::BadHeader { .. }));
}

#[test]
fn capacity_not_power_of_two() {
    let (_dir, path) = fresh();
    poke(&path, 16, &3000u64.to_le_bytes());
    let err = open_err(&path);
    assert!(matches!(err, Error::BadHeader { .. }), "{err}");
    assert!(err.to_string().contains("power of two"));
}

#[test]
fn max_message_inconsistent() {
    let (_dir, path) = fresh();
    poke(&path, 24, &(CAP).to_le_bytes());
    assert!(matches!(open_err(&path), Error::BadHeader { .. }));
}

#[test]
fn truncated_file() {
    let (_dir, path) = fresh();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(HEADER_SIZE + CAP / 2).unwrap();
    assert!(matches!(
        open_err(&path),
        Error::SizeMismatch { expected, actual, .. } if expected == HEADER_SIZE + CAP && actual == HEADER_SIZE + CAP / 2
    ));
}

#[test]
fn extended_file() {
    let (_dir, path) = fresh();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(HEADER_SIZE + 2 * CAP).unwrap();
    assert!(matches!(open_err(&path), Error::SizeMismatch { .. }));
}

#[test]
fn head_after_tail() {
    let (_dir, path) = fresh();
    poke(&path, CONTROL_OFFSET + 128, &64u64.to_le_bytes()); // head 64, tail 0
    assert!(matches!(
        open_err(&path),
        Error::BadPositions {
            head: 64,
            tail: 0,
            ..
        }
    ));
}

#[test]
fn tail_beyond_capacity() {
    let (_dir, path) = fresh();
    poke(&path, CONTROL_OFFSET, &(CAP + 8).to_le_bytes()); // tail past head + capacity
    assert!(matches!(open_err(&path), Error::BadPositions { .. }));
}

#[test]
fn positions_near_the_top_of_u64_are_refused() {
    // head = tail = 2^64 - 72 passed validation once, and the producer's position sums then
    // wrapped: a debug build panicked, a release build overwrote a message still borrowed.
    for pos in [u64::MAX - 71, 1 << 62, (1 << 63) + 8] {
        let (_dir, path) = fresh();
        poke(&path, CONTROL_OFFSET, &pos.to_le_bytes());
        poke(&path, CONTROL_OFFSET + 128, &pos.to_le_bytes());
        assert!(
            matches!(open_err(&path), Error::BadPositions { .. }),
            "position {pos}"
        );
    }
    // The exact file fuzzing found: a 64-byte ring at 2^64 - 72.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small");
    drop(Ring::create(&path, 64).unwrap());
    poke(&path, CONTROL_OFFSET, &(u64::MAX - 71).to_le_bytes());
    poke(&path, CONTROL_OFFSET + 128, &(u64::MAX - 71).to_le_bytes());
    assert!(matches!(open_err(&path), Error::BadPositions { .. }));
    // Just below the bound is a valid (if long-lived) ring, and works.
    let (_dir, path) = fresh();
    let pos = (1u64 << 62) - 8 * CAP;
    poke(&path, CONTROL_OFFSET, &pos.to_le_bytes());
    poke(&path, CONTROL_OFFSET + 128, &pos.to_le_bytes());
    let ring = Ring::open(&path).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    producer.send(&[1; 16]).unwrap();
    let held = consumer.try_recv().unwrap().unwrap();
    while producer.try_send(&[0xA3; 16]).is_ok() {}
    assert_eq!(&*held, &[1; 16]);
}

#[test]
fn unaligned_position() {
    let (_dir, path) = fresh();
    poke(&path, CONTROL_OFFSET, &12u64.to_le_bytes());
    assert!(matches!(open_err(&path), Error::BadPositions { .. }));
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        open_err(dir.path()),
        Error::NotRegularFile {
            kind: "directory",
            ..
        }
    ));
}

#[test]
fn fifo_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(matches!(
        open_err(&path),
        Error::NotRegularFile { kind: "FIFO", .. }
    ));
    // open_or_create must not replace it or hang either.
    assert!(matches!(
        Ring::options().open_or_create(&path),
        Err(Error::NotRegularFile { .. })
    ));
}

#[test]
fn char_device() {
    assert!(matches!(
        open_err(Path::new("/dev/null")),
        Error::NotRegularFile {
            kind: "character device",
            ..
        }
    ));
}

#[test]
fn capacity_mismatch_only_when_asked() {
    let (_dir, path) = fresh();
    assert!(matches!(
        Ring::options().capacity(2 * CAP).open(&path),
        Err(Error::CapacityMismatch { requested, actual, .. }) if requested == 2 * CAP && actual == CAP
    ));
    assert_eq!(Ring::options().open(&path).unwrap().capacity(), CAP);
    assert_eq!(
        Ring::options()
            .capacity(CAP)
            .open_or_create(&path)
            .unwrap()
            .capacity(),
        CAP
    );
}

#[test]
fn invalid_capacities_on_create() {
    let dir = tempfile::tempdir().unwrap();
    for capacity in [0, 1, 32, 3000, 4097, 1 << 33] {
        let err = Ring::create(dir.path().join(format!("r{capacity}")), capacity).unwrap_err();
        assert!(
            matches!(err, Error::InvalidCapacity { .. }),
            "{capacity}: {err}"
        );
        assert!(!dir.path().join(format!("r{capacity}")).exists());
    }
    // nothing left behind, not even temporary files
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn create_refuses_existing_path() {
    let (_dir, path) = fresh();
    assert!(matches!(
        Ring::create(&path, CAP),
        Err(Error::AlreadyExists { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("file");
    std::fs::write(&other, b"precious").unwrap();
    assert!(Ring::create(&other, CAP).is_err());
    assert_eq!(std::fs::read(&other).unwrap(), b"precious");
}

#[test]
fn create_in_missing_directory() {
    let err = Ring::create("/nonexistent-dir/ring", CAP).unwrap_err();
    assert!(err.to_string().contains("/nonexistent-dir/ring"), "{err}");
}

#[test]
fn new_file_mode_is_0600_unless_asked() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, path) = fresh();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Exactly what was asked, whatever the umask (it used to clear the group's write bit
    // of 0660 under the usual 0022, so the group could never attach). The umask is the
    // process's: only bits that 0600 does not need are masked, so tests creating rings
    // beside this one are unaffected.
    // SAFETY: umask(2) only sets the process's file mode creation mask.
    let old = unsafe { libc::umask(0o022) };
    for asked in [0o640, 0o660, 0o666, 0o600] {
        let shared = dir.path().join(format!("shared-{asked:o}"));
        Ring::options()
            .capacity(CAP)
            .mode(asked)
            .create(&shared)
            .unwrap();
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, asked, "asked {asked:o}, got {mode:o}");
    }
    // SAFETY: as above, restoring the mask.
    unsafe { libc::umask(old) };
}

#[test]
fn corrupt_record_length_is_an_error_not_a_wild_read() {
    let (_dir, path) = fresh();
    // A "message" claiming 2 GiB, and a tail that says it is published.
    let word = (u64::from(RECORD_DATA) << 32) | 0x7fff_fff0;
    poke(&path, HEADER_SIZE, &word.to_le_bytes());
    poke(&path, CONTROL_OFFSET, &64u64.to_le_bytes());
    let ring = Ring::open(&path).unwrap();
    let mut consumer = ring.consumer().unwrap();
    let err = consumer.try_recv().unwrap_err();
    assert!(matches!(err, Error::Corrupt { position: 0, .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn corrupt_record_type_is_an_error() {
    let (_dir, path) = fresh();
    poke(&path, HEADER_SIZE, &((9u64 << 32) | 4).to_le_bytes());
    poke(&path, CONTROL_OFFSET, &16u64.to_le_bytes());
    let mut consumer = Ring::open(&path).unwrap().consumer().unwrap();
    assert!(matches!(consumer.recv(), Err(Error::Corrupt { .. })));
    assert!(matches!(
        consumer.recv_batch().map(|_| ()),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn unwritten_published_region_is_corrupt() {
    // Tail claims data that was never written (all zero bytes: record type 0).
    let (_dir, path) = fresh();
    poke(&path, CONTROL_OFFSET, &128u64.to_le_bytes());
    let mut consumer = Ring::open(&path).unwrap().consumer().unwrap();
    assert!(matches!(consumer.try_recv(), Err(Error::Corrupt { .. })));
}

#[test]
fn memfd_handed_over_is_validated() {
    use std::os::fd::OwnedFd;
    let file = tempfile::tempfile().unwrap();
    file.set_len(10).unwrap();
    assert!(matches!(
        Ring::from_fd(OwnedFd::from(file)),
        Err(Error::TooShort { .. })
    ));
}

#[test]
fn open_or_create_returns_even_while_a_neighbour_deletes_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deleter = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::remove_file(&path);
            }
        })
    };
    for _ in 0..300 {
        match Ring::options().capacity(CAP).open_or_create(&path) {
            Ok(ring) => assert_eq!(ring.capacity(), CAP),
            // A deleted file may also vanish between open and validation.
            Err(Error::AlreadyExists { .. }) | Err(Error::NotFound { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    deleter.join().unwrap();
}

/// A ring file another user owns (a squatter who created the path first, in a directory
/// everyone can write) is refused unless allowed explicitly. Needs root, to give a file away.
#[test]
fn rings_of_other_users_are_refused_unless_allowed() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can make a file owned by another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    drop(Ring::create(&path, 4096).unwrap());
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let err = Ring::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OtherOwner {
                owner: 65534,
                uid: 0,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("uid 65534") && text.contains("ring"),
        "{text}"
    );
    // The open-or-create path refuses it too (it exists: nothing is created over it).
    assert!(matches!(
        Ring::options().open_or_create(&path),
        Err(Error::OtherOwner { .. })
    ));
    let ring = Ring::options().allow_other_owner(true).open(&path).unwrap();
    ring.producer().unwrap().try_send(b"allowed").unwrap();
}

/// Another process forges the released head forward (up to the tail: a value the
/// producer's checks must accept) while this process's consumer holds a message. This
/// process's producer must still not overwrite the held message.
#[test]
fn a_forged_head_never_makes_our_producer_overwrite_our_held_message() {
    let (_dir, path) = fresh();
    let ring = Ring::open(&path).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    producer.send(&[1; 16]).unwrap();
    producer.send(&[2; 16]).unwrap();
    let held = consumer.try_recv().unwrap().unwrap();
    let tail = 2 * 24;
    poke(&path, CONTROL_OFFSET + 128, &(tail as u64).to_le_bytes());
    while producer.try_send(&[0xA3; 16]).is_ok() {}
    assert_eq!(&*held, &[1; 16]);
}

#[test]
fn an_os_error_is_shown_once_and_not_repeated_as_a_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir/ring");
    let err = Ring::create(&path, 4096).unwrap_err();
    let text = err.to_string();
    assert!(
        text.ends_with("create the ring file: No such file or directory (os error 2)"),
        "{text}"
    );
    assert_eq!(text.matches("os error").count(), 1, "{text}");
    // Shown in the message, so not also the source: a report walking the chain shows it once.
    assert!(std::error::Error::source(&err).is_none());
    assert_eq!(err.io_error().unwrap().raw_os_error(), Some(2));
}

#[test]
fn reserved_flags_and_bytes_are_refused_naming_the_field() {
    let (_dir, path) = fresh();
    poke(&path, 44, &4u32.to_le_bytes());
    let err = open_err(&path);
    assert!(matches!(err, Error::BadHeader { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("flags (offset 44) is 0x00000004"), "{text}");
    assert!(!text.contains('\n'), "{text}");

    for offset in [48u64, 120, 127] {
        let (_dir, path) = fresh();
        poke(&path, offset, &[1]);
        let err = open_err(&path);
        assert!(matches!(err, Error::BadHeader { .. }), "{err}");
        let word = offset / 8 * 8;
        assert!(
            err.to_string().contains(&format!(
                "reserved bytes 48-127 are not zero (the 8 at offset {word}"
            )),
            "{err}"
        );
    }
}

#[test]
fn every_creation_removes_dead_creators_leftovers() {
    // Two rings: the first made by whichever scheme the file system allows (O_TMPFILE on
    // tmpfs and ext4, which used to skip the sweep), the second through the open-or-create
    // builder.
    for open_or_create in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join(".ringfile-999999-0.tmp");
        let file = std::fs::File::create(&leftover).unwrap();
        file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60))
            .unwrap();
        drop(file);
        let path = dir.path().join("ring");
        if open_or_create {
            Ring::options().capacity(CAP).open_or_create(&path).unwrap();
        } else {
            Ring::create(&path, CAP).unwrap();
        }
        assert!(
            !leftover.exists(),
            "a dead creator's unlocked, 60-second-old leftover was kept"
        );
    }
}

#[test]
fn a_role_held_by_this_process_through_another_ring_says_so() {
    let (_dir, path) = fresh();
    let first = Ring::open(&path).unwrap();
    let _producer = first.producer().unwrap();
    let _consumer = first.consumer().unwrap();
    let second = Ring::open(&path).unwrap();
    for err in [
        second.producer().unwrap_err(),
        second.consumer().unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                Error::RoleTaken {
                    by_this_process: true,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("held by this process"), "{err}");
    }
}
