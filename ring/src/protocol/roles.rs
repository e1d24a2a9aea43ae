//! Exclusive roles and liveness, with open file description (OFD) locks.
//!
//! Each role is an exclusive `F_OFD_SETLK` lock on one byte of the ring file
//! ([`PRODUCER_LOCK_BYTE`], [`CONSUMER_LOCK_BYTE`]). The kernel releases an OFD lock when the
//! last descriptor of its open file description closes, so a role held by a process that died
//! — however it died — is free again at once, with no stale-lock timeout. Each role takes a
//! fresh open file description: locks held through one description never conflict with each
//! other, so sharing the ring's own description would let a second producer of the same
//! process (or a forked child) through.
//!
//! A role belongs to the process that took it: a guard inherited through `fork` does nothing
//! when dropped, and the child's copy of the lock's descriptor is redirected so it does not
//! keep the parent's role taken (see `fork`).

use crate::error::{Error, Result, Role};
use crate::format::layout::{CONSUMER_LOCK_BYTE, PRODUCER_LOCK_BYTE, REGISTRY_LOCK_BYTE};
use crate::os::sync::Ordering;
use crate::os::sys;
use crate::store::shared::Shared;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// Holds a role until dropped (closing the description drops the lock).
pub(crate) struct RoleGuard {
    /// Unregisters the descriptor from fork redirection (before it closes: fields drop in
    /// order).
    #[cfg(not(loom))]
    _fork: Option<crate::os::fork::Registration>,
    /// The description that holds the lock; `None` for heap rings (tests), which have no file.
    file: Option<File>,
    /// The fork generation the role was taken in (see [`RoleGuard::inherited`]).
    generation: u32,
    /// The byte whose lock is the role.
    byte: u64,
}

fn lock_byte(role: Role) -> u64 {
    match role {
        Role::Producer => PRODUCER_LOCK_BYTE,
        Role::Consumer => CONSUMER_LOCK_BYTE,
    }
}

fn pid_word(shared: &Shared, role: Role) -> &crate::os::sync::AtomicU32 {
    let roles = &shared.region.control().roles;
    match role {
        Role::Producer => &roles.producer_pid,
        Role::Consumer => &roles.consumer_pid,
    }
}

/// Recorded pid of the role's last holder, if any.
pub(crate) fn holder_pid(shared: &Shared, role: Role) -> Option<u32> {
    match pid_word(shared, role).load(Ordering::Acquire) {
        0 => None,
        pid => Some(pid),
    }
}

/// Takes `role` on the ring, or says who holds it.
pub(crate) fn acquire(shared: &Shared, role: Role) -> Result<RoleGuard> {
    let guard = acquire_byte(shared, lock_byte(role), |by_this_process| {
        Error::RoleTaken {
            path: shared.name.clone(),
            role,
            pid: holder_pid(shared, role),
            by_this_process,
        }
    })?;
    pid_word(shared, role).store(sys::pid(), Ordering::Release);
    Ok(guard)
}

/// Takes the lock on `byte` of the ring file through a description of its own, or fails
/// with `taken(whether this process holds it)`. Heap rings (the model checker's) have one
/// process: the lock is ours.
pub(crate) fn acquire_byte(
    shared: &Shared,
    byte: u64,
    taken: impl FnOnce(bool) -> Error,
) -> Result<RoleGuard> {
    let Some(file) = &shared.file else {
        return Ok(RoleGuard {
            #[cfg(not(loom))]
            _fork: None,
            file: None,
            generation: fork_generation(),
            byte,
        });
    };
    let own = reopen(shared, file)?;
    // Registered before the lock is taken, so that no fork can copy a locked description
    // the child would keep.
    #[cfg(not(loom))]
    let registration = crate::os::fork::register(own.as_raw_fd());
    if !sys::ofd_try_lock(&own, byte).map_err(|e| io(shared, "lock the role", e))? {
        return Err(taken(held_here(&own, byte)));
    }
    Ok(RoleGuard {
        #[cfg(not(loom))]
        _fork: Some(registration),
        file: Some(own),
        generation: fork_generation(),
        byte,
    })
}

fn io(shared: &Shared, op: &'static str, error: std::io::Error) -> Error {
    Error::Io {
        path: shared.name.clone(),
        op,
        error,
    }
}

/// A new open file description of the ring file: reopening through /proc works also for a
/// memfd, and for a path that was renamed or unlinked since.
fn reopen(shared: &Shared, file: &File) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| io(shared, "reopen the ring file for a role lock", e))
}

/// The registry lock of a ring with consumer slots ([`REGISTRY_LOCK_BYTE`]), held while a
/// name is looked up and registered or evicted: waits while another process holds it (for
/// an instant; a holder that dies frees it).
pub(crate) struct RegistryGuard {
    file: Option<File>,
}

/// Takes the registry lock, waiting for it.
pub(crate) fn lock_registry(shared: &Shared) -> Result<RegistryGuard> {
    let Some(file) = &shared.file else {
        return Ok(RegistryGuard { file: None });
    };
    let own = reopen(shared, file)?;
    sys::ofd_lock_wait(&own, REGISTRY_LOCK_BYTE)
        .map_err(|e| io(shared, "lock the consumer registry", e))?;
    Ok(RegistryGuard { file: Some(own) })
}

impl Drop for RegistryGuard {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            // Closing the description (just after) frees it in any case.
            let _ = sys::ofd_unlock(file, REGISTRY_LOCK_BYTE);
        }
    }
}

/// Whether some description holds the lock on `byte` (through `shared`'s own description,
/// which never takes one). Heap rings: `true`, one process holds everything.
pub(crate) fn byte_is_locked(shared: &Shared, byte: u64) -> Result<bool> {
    match &shared.file {
        None => Ok(true),
        Some(file) => {
            sys::ofd_is_locked(file, byte).map_err(|e| io(shared, "check a consumer's lock", e))
        }
    }
}

/// Whether another of this process's role descriptors holds the lock on `byte` that the
/// new description `refused` was just refused (a second producer in one process, say).
#[cfg(not(loom))]
fn held_here(refused: &File, byte: u64) -> bool {
    crate::os::fork::registered()
        .filter(|&fd| fd != refused.as_raw_fd())
        .any(|fd| sys::holds_lock(fd, refused, byte))
}

#[cfg(loom)]
fn held_here(_refused: &File, _byte: u64) -> bool {
    false
}

#[cfg(not(loom))]
#[inline]
fn fork_generation() -> u32 {
    crate::os::fork::generation()
}

#[cfg(loom)]
fn fork_generation() -> u32 {
    0
}

impl Drop for RoleGuard {
    fn drop(&mut self) {
        // Closing our descriptor alone is not enough to free the role at once: a child
        // forked since the role was taken shares the open file description (and so the
        // lock) until its atfork handler redirects its copy, which it does only when it
        // first runs, and never if it is stopped before that. Unlocking through the
        // description frees the role for every copy of it, now. An inherited guard must
        // not unlock: its descriptor was redirected to a description of its own, and the
        // role is the parent's.
        if self.inherited() {
            return;
        }
        if let Some(file) = &self.file {
            // A failure here leaves the role to be freed when the descriptor closes, just
            // after, as before; nothing better can be done in a destructor.
            let _ = sys::ofd_unlock(file, self.byte);
        }
    }
}

impl RoleGuard {
    /// Whether this guard was inherited through `fork` rather than taken by this process.
    /// An inherited role is not this process's: using it would make two writers of one
    /// side, and dropping it must not change the ring (the parent still holds the role).
    #[inline]
    pub(crate) fn inherited(&self) -> bool {
        fork_generation() != self.generation
    }

    /// Whether some other open file description holds `role` right now. Heap rings have no
    /// other processes: always true.
    pub(crate) fn is_live(&self, shared: &Shared, role: Role) -> Result<bool> {
        match &self.file {
            None => Ok(true),
            Some(file) => sys::ofd_is_locked(file, lock_byte(role)).map_err(|error| Error::Io {
                path: shared.name.clone(),
                op: "check a role lock",
                error,
            }),
        }
    }
}
