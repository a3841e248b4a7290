//! Compression by the system's own `gzip`, `xz` and `zstd`, with the
//! options that keep the output reproducible and readable by the kernel's
//! decompressors. Piping through the tools costs nothing to write, gives
//! the same ratios as the kernel's own build, and keeps this crate free of
//! compression libraries.

use std::fmt;
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};

/// How the archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compress {
    pub fn parse(s: &str) -> Option<Compress> {
        Some(match s {
            "none" | "cat" => Compress::None,
            "gzip" | "gz" => Compress::Gzip,
            "xz" => Compress::Xz,
            "zstd" | "zst" => Compress::Zstd,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Compress::None => "none",
            Compress::Gzip => "gzip",
            Compress::Xz => "xz",
            Compress::Zstd => "zstd",
        }
    }

    /// The command and its arguments (None: no compression).
    ///
    /// - gzip `-n`: no file name or time stamp in the header;
    /// - xz: CRC32 (the kernel's xz decoder has no CRC64) and a 1 MiB
    ///   dictionary, as the kernel's own `xz_wrap.sh`; one thread, since a
    ///   multi-threaded xz splits the stream by the number of CPUs;
    /// - zstd: one thread, level 19.
    pub fn command(self) -> Option<(&'static str, &'static [&'static str])> {
        match self {
            Compress::None => None,
            Compress::Gzip => Some(("gzip", &["-n", "-9", "-c"])),
            Compress::Xz => Some((
                "xz",
                &[
                    "--check=crc32",
                    "--lzma2=preset=6,dict=1MiB",
                    "--threads=1",
                    "-c",
                ],
            )),
            Compress::Zstd => Some(("zstd", &["-q", "-19", "--single-thread", "-c"])),
        }
    }
}

/// A compressor that could not do its work.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Compress `data`. The tool's environment variables that change its
/// output (`GZIP`, `XZ_OPT`, `XZ_DEFAULTS`, `ZSTD_CLEVEL`, `ZSTD_NBTHREADS`)
/// are removed.
pub fn compress(data: &[u8], how: Compress) -> Result<Vec<u8>, Error> {
    let Some((prog, args)) = how.command() else {
        return Ok(data.to_vec());
    };
    let mut child = Command::new(prog)
        .args(args)
        .env_remove("GZIP")
        .env_remove("XZ_OPT")
        .env_remove("XZ_DEFAULTS")
        .env_remove("ZSTD_CLEVEL")
        .env_remove("ZSTD_NBTHREADS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error(if e.kind() == io::ErrorKind::NotFound {
                format!("{prog} not found: install it, or choose another --compress (gzip, xz, zstd, none)")
            } else {
                format!("cannot run {prog}: {e}")
            })
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut out = Vec::new();
    let (written, read) = std::thread::scope(|s| {
        let w = s.spawn(move || {
            let r = stdin.write_all(data);
            drop(stdin);
            r
        });
        let read = stdout.read_to_end(&mut out);
        (w.join(), read)
    });
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| Error(format!("{prog}: {e}")))?;
    if !status.success() {
        return Err(Error(format!("{prog} failed ({status}): {}", err.trim())));
    }
    match (written, read) {
        (Ok(Ok(())), Ok(_)) => Ok(out),
        (Ok(Err(e)), _) | (_, Err(e)) => Err(Error(format!("{prog}: {e}"))),
        (Err(_), _) => Err(Error(format!("{prog}: the writer thread panicked"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have(prog: &str) -> bool {
        Command::new(prog)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn round_trips_and_is_reproducible() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for how in [Compress::Gzip, Compress::Xz, Compress::Zstd] {
            let (prog, _) = how.command().unwrap();
            if !have(prog) {
                eprintln!("skipped: no {prog}");
                continue;
            }
            let a = compress(&data, how).unwrap();
            let b = compress(&data, how).unwrap();
            assert_eq!(a, b, "{prog} output differs between runs");
            assert!(a.len() < data.len() / 4, "{prog}");
            let mut child = Command::new(prog)
                .args(["-d", "-c"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut i = child.stdin.take().unwrap();
            let t = std::thread::spawn(move || i.write_all(&a));
            let back = child.wait_with_output().unwrap().stdout;
            t.join().unwrap().unwrap();
            assert_eq!(back, data, "{prog}");
        }
        assert_eq!(compress(b"abc", Compress::None).unwrap(), b"abc");
    }
}
