//! Placeholder until signature verification lands: `signed` is refused.

use otcore::path::PathBuf;
use otcore::sys::Fd;

use crate::error::Error;

pub fn expected_digest(
    _sysroot: &PathBuf,
    _commit: &[u8],
    keypath: &[u8],
) -> Result<[u8; 32], Error> {
    Err(Error::sys(
        "composefs signed (not built yet): read keys",
        keypath,
        otcore::sys::Errno::NOSYS,
    ))
}

pub fn check_image_digest(_image: &Fd, path: &[u8], _want: &[u8]) -> Result<(), Error> {
    Err(Error::sys(
        "composefs signed (not built yet): measure",
        path,
        otcore::sys::Errno::NOSYS,
    ))
}
