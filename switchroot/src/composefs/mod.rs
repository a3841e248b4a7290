//! composefs: the deployment's root as the EROFS image `ostree admin
//! deploy` writes beside it (`.ostree.cfs`), over the repository's objects,
//! optionally with fs-verity required and the image bound to a signed
//! commit. Decided here from the configuration and the disk (pure enough
//! to plan with); mounted by [`mount`]; signatures checked by [`signed`].

pub mod mount;
pub mod signed;

use otcore::path::PathBuf;
use otcore::sys::{self, Errno};

use crate::config::{self, ComposefsPolicy, PrepareRootConf, Unsupported, Use, DEFAULT_KEYPATH};
use crate::error::Error;

/// The image in a deployment directory.
pub const IMAGE: &[u8] = b".ostree.cfs";
/// Where the EROFS image is mounted while the overlay is made.
pub const LOWER_MOUNT: &[u8] = b"/run/ostree/.private/cfsroot-lower";
/// Upper and work directories of a transient root, under `/run`.
pub const TRANSIENT_ROOT: &[u8] = b"/run/ostree/.private/root";
/// systemd's link to the root's block device (see [`mount::volatile_root_link`]).
pub const VOLATILE_ROOT: &[u8] = b"/run/systemd/volatile-root";

/// A root that is a composefs, as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// `verity=require`.
    pub verity: bool,
    /// `signed`: the key file (recorded in `/run/ostree-booted`) and the
    /// image digest the signed commit names.
    pub signed: Option<Signed>,
    /// `[root] transient` (`Some(false)`) or `transient-ro` (`Some(true)`).
    pub transient_ro: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub keypath: PathBuf,
    pub digest: [u8; 32],
}

/// Whether the deployment at `deploy` (under `sysroot`) boots as a
/// composefs: `None` when composefs is off, or `maybe` finds no image.
/// `conf_file` is where `conf` came from (its key path is read for `signed`).
pub fn decide(
    policy: ComposefsPolicy,
    conf: &PrepareRootConf,
    conf_file: Option<&PathBuf>,
    sysroot: &PathBuf,
    deploy: &PathBuf,
    commit: &[u8],
) -> Result<Option<Root>, Error> {
    if policy.enabled == Use::No {
        return Ok(None);
    }
    let image = deploy.join(IMAGE)?;
    match sys::lstat(image.as_bytes()) {
        Ok(st) if st.is_file() => {}
        Ok(_) => {
            return Err(Error::sys(
                "open composefs image (not a regular file)",
                image.as_bytes(),
                Errno::INVAL,
            ))
        }
        // As upstream: only a missing image lets `maybe` boot without.
        Err(Errno::NOENT) if policy.enabled == Use::Maybe => {
            return if conf.wants_transient_root() {
                Err(Error::Unsupported {
                    why: Unsupported::RootTransient,
                    file: None,
                })
            } else {
                Ok(None)
            };
        }
        Err(e) => return Err(Error::sys("open composefs image", image.as_bytes(), e)),
    }
    let signed = if policy.signed {
        let keypath = keypath(conf_file)?;
        let digest = signed_digest(sysroot, commit, keypath.as_bytes())?;
        Some(Signed { keypath, digest })
    } else {
        None
    };
    let transient_ro = conf
        .wants_transient_root()
        .then_some(conf.root_transient_ro);
    Ok(Some(Root {
        verity: policy.verity,
        signed,
        transient_ro,
    }))
}

/// The image digest the deployment's commit `commit` (hex) names, once its
/// signature by one of the keys in `keypath` is checked.
fn signed_digest(
    sysroot: &PathBuf,
    commit: &[u8],
    keypath: &[u8],
) -> Result<[u8; signed::DIGEST_LEN], Error> {
    let keys = signed::load_keys(keypath).map_err(signed_error)?;
    let checksum = signed::deployment_checksum(commit).map_err(signed_error)?;
    let repo = sysroot.join(b"ostree/repo")?;
    let dir = sys::open(
        repo.as_bytes(),
        sys::OFlags::RDONLY | sys::OFlags::DIRECTORY,
        0,
    )
    .map_err(|e| Error::sys("open", repo.as_bytes(), e))?;
    let v = signed::verify_commit(&dir, &checksum, &keys).map_err(signed_error)?;
    Ok(v.digest)
}

/// A refusal of `signed`, as the one line of text it prints.
pub(crate) fn signed_error(e: impl core::fmt::Display) -> Error {
    let mut t = otcore::out::Text::new();
    let _ = core::fmt::Write::write_fmt(&mut t, format_args!("{e}"));
    Error::Composefs(t)
}

/// The key file `signed` checks with: `[composefs] keypath` of `conf_file`.
fn keypath(conf_file: Option<&PathBuf>) -> Result<PathBuf, Error> {
    let Some(file) = conf_file else {
        return Ok(PathBuf::from(DEFAULT_KEYPATH)?);
    };
    let mut buf = [0u8; crate::inputs::CONF_MAX];
    let n = sys::read_file(file.as_bytes(), &mut buf)
        .map_err(|e| Error::sys("read", file.as_bytes(), e))?;
    let path = config::composefs_keypath(&buf[..n]).map_err(|err| Error::Config {
        file: file.clone(),
        err,
    })?;
    Ok(PathBuf::from(path)?)
}
