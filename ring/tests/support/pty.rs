//! A pseudo-terminal for tests of what programs do on a terminal.
#![allow(dead_code)]

use std::io::Read;

/// A pseudo-terminal for a child's standard output or error (so that it behaves as on a
/// terminal); everything the child writes there is collected.
pub struct Pty {
    /// The terminal's side for the child: pass a clone as its stdout or stderr.
    pub slave: std::fs::File,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pty {
    /// A new pseudo-terminal, its output collected by a thread.
    pub fn open() -> Pty {
        // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on a descriptor we own; the
        // buffer outlives the call.
        let (master, name) = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(fd >= 0, "posix_openpt failed");
            assert_eq!(libc::grantpt(fd), 0);
            assert_eq!(libc::unlockpt(fd), 0);
            let mut buf = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0);
            let name = std::ffi::CStr::from_ptr(buf.as_ptr())
                .to_string_lossy()
                .into_owned();
            (
                <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd),
                name,
            )
        };
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name)
            .unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&output);
        std::thread::spawn(move || {
            let mut master = master;
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty { slave, output }
    }

    /// Makes the terminal `columns` wide (and 24 lines high), as a window would be.
    pub fn set_width(&self, columns: u16) {
        let size = libc::winsize {
            ws_row: 24,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize, which lives across the call, on a terminal
        // descriptor we own.
        let rc = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&self.slave),
                libc::TIOCSWINSZ,
                &size,
            )
        };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// Everything written to it once `done` holds for it, waiting at most `within`; panics
    /// naming `what` (and what was written) if it never does.
    pub fn wait_for(
        &self,
        within: std::time::Duration,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let text = self.text();
            if done(&text) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}; it showed: {text:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Everything written to it so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }
}
