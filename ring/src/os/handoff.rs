//! Handing a ring to a program started with [`std::process::Command`]: the descriptor is
//! kept open across `exec` in that child only, and its number travels in an environment
//! variable.
//!
//! Ring descriptors are close-on-exec, so that no program a process starts inherits its
//! rings by accident. [`Ring::pass_to`](crate::Ring::pass_to) makes one exception, for one
//! command: it clears close-on-exec on a duplicate of the descriptor *in the child, between
//! fork and exec* (no other program this process starts, even from another thread at the
//! same moment, sees it), and sets the variable. The program then opens the ring with
//! [`Ring::from_env`](crate::Ring::from_env), which takes ownership of the descriptor.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// Arranges for `command`'s program to inherit `file` as descriptor number `$var`.
pub(crate) fn pass(file: &File, command: &mut Command, var: &str) -> std::io::Result<()> {
    // A duplicate that lives as long as the command (the closure holds it): the ring may be
    // dropped before the command is spawned, and the number must stay this file's.
    let dup = Arc::new(file.try_clone()?);
    let fd = dup.as_raw_fd();
    command.env(var, fd.to_string());
    let hook = move || {
        // SAFETY: fcntl(F_GETFD/F_SETFD) on a descriptor of this (child) process is
        // async-signal-safe, allocates nothing and takes no lock, as `pre_exec` requires.
        // `dup` keeps the number open in the parent, hence in the child's copy of the table.
        let flags = unsafe { libc::fcntl(dup.as_raw_fd(), libc::F_GETFD) };
        debug_assert_eq!(fd, dup.as_raw_fd());
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook only calls async-signal-safe functions (see above) and touches no
    // state shared with other threads of the parent.
    unsafe { command.pre_exec(hook) };
    Ok(())
}

/// Descriptors already taken by [`take`]: each is owned once.
static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Takes ownership of the descriptor named by `$var`, as [`pass`] arranged it.
pub(crate) fn take(var: &str) -> Result<OwnedFd> {
    let bad = |reason: String| Error::BadHandoff {
        var: var.to_string(),
        reason,
    };
    let text = std::env::var(var).map_err(|e| match e {
        std::env::VarError::NotPresent => bad(
            "not set: this program was not started with a ring passed to it (Ring::pass_to)".into(),
        ),
        std::env::VarError::NotUnicode(_) => bad("not a descriptor number".into()),
    })?;
    let fd: RawFd = match text.trim().parse() {
        // 0, 1 and 2 are standard input, output and error: never a ring.
        Ok(fd) if fd > 2 => fd,
        _ => return Err(bad(format!("'{text}' is not a descriptor number above 2"))),
    };
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if taken.contains(&fd) {
        return Err(bad(format!("descriptor {fd} was already opened as a ring")));
    }
    // SAFETY: F_GETFD only reads the flags of a descriptor number; an unused number fails.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(bad(format!(
            "descriptor {fd} is not open: {}",
            std::io::Error::last_os_error()
        )));
    }
    // Close-on-exec again: the hand-over was for this program only.
    // SAFETY: as above; this sets only the close-on-exec flag of an open descriptor.
    unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    taken.push(fd);
    // SAFETY: the descriptor is open, and it was inherited for the ring: nothing else in this
    // program owns it (the parent set `$var` for this purpose), and `TAKEN` makes sure this
    // process takes it only once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
