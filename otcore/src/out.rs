//! Formatted output without allocation: messages are assembled in a stack
//! buffer and written with one `write(2)`, so lines from concurrent writers
//! (and `/dev/kmsg` records) are never split.

#![forbid(unsafe_code)]

use crate::sys::{self, BorrowedFd, FdCell};
use core::fmt::{self, Write};

/// `/dev/kmsg`, once PID 1 has opened it. When set, information goes to the
/// kernel log only (the kernel echoes it to the console according to
/// `loglevel`/`quiet`), and errors go to both the kernel log and stderr.
static KMSG: FdCell = FdCell::empty();

/// Send messages to the kernel log from now on (PID 1 modes).
pub fn use_kmsg(fd: BorrowedFd<'static>) {
    KMSG.set(fd);
}

/// Where a line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Information: standard output (the kernel log only, as PID 1).
    Info,
    /// Warnings and errors: standard error (and the kernel log, as PID 1).
    Error,
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

/// A message formatted when an error happens, so that the error value stays
/// small (a few hundred bytes); a longer message is cut, and ends with `…`.
#[derive(Clone)]
pub struct Text {
    /// Never fuller than `TEXT_CAP` less the mark's 3 bytes, until cut.
    buf: heapless::Vec<u8, TEXT_CAP>,
    cut: bool,
}

/// As much as a path: room for two mount points, or a target and its reason.
const TEXT_CAP: usize = 256;

impl Text {
    pub const fn new() -> Text {
        Text {
            buf: heapless::Vec::new(),
            cut: false,
        }
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::new()
    }
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        const MORE: &[u8] = "…".as_bytes();
        if self.cut {
            return Ok(());
        }
        let room = TEXT_CAP - MORE.len() - self.buf.len();
        if s.len() <= room {
            let _ = self.buf.extend_from_slice(s.as_bytes());
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let _ = self.buf.extend_from_slice(&s.as_bytes()[..end]);
        let _ = self.buf.extend_from_slice(MORE);
        self.cut = true;
        Ok(())
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::path::Lossy(&self.buf).fmt(f)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Write one formatted line (a newline is appended) to `stream`, mirrored
/// to the kernel log in PID 1 modes. Errors are ignored: there is nowhere
/// left to report a failure to print.
pub fn line(stream: Stream, args: fmt::Arguments<'_>) {
    let mut b = LineBuf::new();
    // Kernel log level: 6 (info) or 3 (error).
    let _ = b.write_str(match stream {
        Stream::Info => "<6>",
        Stream::Error => "<3>",
    });
    let _ = b.write_fmt(args);
    let _ = b.write_str("\n");
    if let Some(kmsg) = KMSG.get() {
        let _ = sys::write_all(kmsg, b.as_bytes());
        if stream == Stream::Info {
            return;
        }
    }
    let fd = match stream {
        Stream::Info => sys::STDOUT,
        Stream::Error => sys::STDERR,
    };
    let _ = sys::write_all(fd, &b.as_bytes()[3..]);
}

/// Print a line to standard output.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::out::line($crate::out::Stream::Info, format_args!($($arg)*)) };
}

/// Print a line to standard error.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::out::line($crate::out::Stream::Error, format_args!($($arg)*)) };
}
