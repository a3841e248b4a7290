//! Formatted output without allocation: messages are assembled in a stack
//! buffer and written with one `write(2)`, so lines from concurrent writers
//! (and `/dev/kmsg` records) are never split.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicI32, Ordering};

use crate::sys;

/// `/dev/kmsg`, once PID 1 has opened it; -1 before. When set, information
/// goes to the kernel log only (the kernel echoes it to the console according
/// to `loglevel`/`quiet`), and errors go to both the kernel log and stderr.
static KMSG: AtomicI32 = AtomicI32::new(-1);

/// Send messages to the kernel log from now on (PID 1 modes).
pub fn use_kmsg(fd: i32) {
    KMSG.store(fd, Ordering::Relaxed);
}

/// Longest single message; longer ones are cut at this size.
pub const LINE_MAX: usize = 1024;

/// A stack buffer that collects formatted text.
pub struct LineBuf {
    buf: heapless::Vec<u8, LINE_MAX>,
}

impl LineBuf {
    pub const fn new() -> Self {
        LineBuf {
            buf: heapless::Vec::new(),
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LINE_MAX - self.buf.len();
        let take = s.len().min(room);
        // Cutting mid-character is fine: Lossy display happens before this point.
        let _ = self.buf.extend_from_slice(&s.as_bytes()[..take]);
        Ok(())
    }
}

/// Write one formatted line (a newline is appended) to `fd` (1 for
/// information, 2 for warnings and errors), mirrored to the kernel log in PID 1
/// modes. Errors are ignored: there is nowhere left to report a failure to print.
pub fn line(fd: i32, args: fmt::Arguments<'_>) {
    let mut b = LineBuf::new();
    // Kernel log level: 6 (info) for stdout, 3 (error) for stderr.
    let _ = b.write_str(if fd == 1 { "<6>" } else { "<3>" });
    let _ = b.write_fmt(args);
    let _ = b.write_str("\n");
    let kmsg = KMSG.load(Ordering::Relaxed);
    if kmsg >= 0 {
        let _ = sys::write_all_raw(kmsg, b.as_bytes());
        if fd == 1 {
            return;
        }
    }
    let _ = sys::write_all_raw(fd, &b.as_bytes()[3..]);
}

/// Print a line to standard output.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::out::line(1, format_args!($($arg)*)) };
}

/// Print a line to standard error.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::out::line(2, format_args!($($arg)*)) };
}
