//! Making a child process unable to use a system call, as a seccomp filter in a locked-down
//! container or an old kernel would: for the tests of the fallbacks. Shared by the ring's
//! tests and the programs' (`consumer/tests/common`).
#![allow(dead_code)] // each user calls its own part

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes system call `nr` fail with `errno` in `cmd`'s process — only when its second
/// argument is one of `ops` (a futex operation, say), if `ops` is given. x86-64 only; other
/// architectures' calls pass.
pub fn deny_syscall(cmd: &mut Command, nr: libc::c_long, ops: Option<&[u32]>, errno: i32) {
    deny_syscall_arg(cmd, nr, 1, ops, errno)
}

/// As [`deny_syscall`], looking at argument `arg` (0-based) for one of `ops`.
pub fn deny_syscall_arg(
    cmd: &mut Command,
    nr: libc::c_long,
    arg: u32,
    ops: Option<&[u32]>,
    errno: i32,
) {
    // Classic BPF over `struct seccomp_data` { u32 nr; u32 arch; u64 ip; u64 args[6] }.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // The checks, then ALLOW and DENY as the last two instructions; jumps are relative to
    // the next instruction.
    let ops = ops.unwrap_or(&[]);
    let checks = 4 + if ops.is_empty() { 0 } else { 1 + ops.len() };
    let (allow, deny) = (checks, checks + 1);
    let to = |from: usize, target: usize| (target - from - 1) as u8;
    let mut filter = vec![
        op(LD_W_ABS, 0, 0, 4), // arch
        op(JEQ_K, 0, to(1, allow), AUDIT_ARCH_X86_64),
        op(LD_W_ABS, 0, 0, 0), // system call number
    ];
    if ops.is_empty() {
        filter.push(op(JEQ_K, to(3, deny), to(3, allow), nr as u32));
    } else {
        filter.push(op(JEQ_K, 0, to(3, allow), nr as u32));
        filter.push(op(LD_W_ABS, 0, 0, 16 + 8 * arg)); // low half of args[arg]
        for (i, &value) in ops.iter().enumerate() {
            let at = 5 + i;
            let next = if i + 1 == ops.len() { allow } else { at + 1 };
            filter.push(op(JEQ_K, to(at, deny), to(at, next), value));
        }
    }
    filter.push(op(RET_K, 0, 0, RET_ALLOW));
    filter.push(op(RET_K, 0, 0, RET_ERRNO | errno as u32));
    assert_eq!(filter.len(), deny + 1);
    // SAFETY: the closure runs in the forked child before exec and makes only two
    // async-signal-safe system calls, with a filter program that lives in the closure's
    // captured copy for the duration of the calls.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
