//! composefs: the deployment's root as the EROFS image `ostree admin
//! deploy` writes beside it (`.ostree.cfs`), over the repository's objects,
//! optionally with fs-verity required and the image bound to a signed
//! commit. Decided here from the configuration and the disk (pure enough
//! to plan with); mounted by [`mount`]; signatures checked by [`signed`].

pub mod mount;
#[cfg(feature = "signed")]
pub mod signed;

use otcore::path::PathBuf;
use otcore::sys::{self, Errno};

use crate::config::{self, ComposefsPolicy, PrepareRootConf, Unsupported, Use, DEFAULT_KEYPATH};
use crate::error::Error;

/// The image in a deployment directory. The plan puts the EROFS mount point
/// at `/run/ostree/.private/cfsroot-lower`, a transient root's layers in
/// `/run/ostree/.private/root/`, and systemd's `/run/systemd/volatile-root`
/// ([`mount::volatile_root_link`]), as ostree does.
pub const IMAGE: &[u8] = b".ostree.cfs";

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
/// composefs (`name`: its directory's name, `CHECKSUM.SERIAL`): `None`
/// when composefs is off, or `maybe` finds no image.
/// `conf_file` is where `conf` came from (its key path is read for `signed`).
pub fn decide(
    policy: ComposefsPolicy,
    conf: &PrepareRootConf,
    conf_file: Option<&PathBuf>,
    sysroot: &PathBuf,
    deploy: &PathBuf,
    name: &[u8],
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
        let digest = expected_digest(sysroot, name, &keypath)?;
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

/// The image digest the signed commit of the deployment `name` (under
/// `sysroot`) names, its signature checked with the keys of `keypath`.
#[cfg(feature = "signed")]
#[inline(never)]
fn expected_digest(sysroot: &PathBuf, name: &[u8], keypath: &PathBuf) -> Result<[u8; 32], Error> {
    let checksum = signed::deployment_checksum(name).map_err(|e| composefs_error(&e, None))?;
    let keys = signed::load_keys(keypath.as_bytes()).map_err(|e| composefs_error(&e, None))?;
    let repo = sysroot.join(b"ostree/repo")?;
    let dir = sys::open(repo.as_bytes(), sys::OFlags::DIRECTORY, 0)
        .map_err(|e| Error::sys("open", repo.as_bytes(), e))?;
    let verified =
        signed::verify_commit(&dir, &checksum, &keys).map_err(|e| composefs_error(&e, None))?;
    if let Some(base) = verified.base {
        otcore::say!(
            "ostree-prepare-root: composefs: signature and digest of the bootc base commit {} (the deployment's commit has no detached metadata)",
            signed::Hex(&base)
        );
    }
    otcore::say!(
        "ostree-prepare-root: composefs: commit signature verified with key {} of {keypath}",
        verified.key + 1
    );
    Ok(verified.digest)
}

/// Without the `signed` feature: a clear refusal.
#[cfg(not(feature = "signed"))]
fn expected_digest(_: &PathBuf, _: &[u8], keypath: &PathBuf) -> Result<[u8; 32], Error> {
    let mut t = otcore::out::Text::new();
    let _ = core::fmt::Write::write_fmt(
        &mut t,
        format_args!("composefs: enabled=signed, but this ostree-prepare-root is built without signature checks (the signed feature: make signed); keys in {keypath} not used"),
    );
    Err(Error::Composefs(t))
}

/// A signature failure as the tool's error (its text says "signed
/// composefs"), with the file it concerns when there is one.
#[cfg(feature = "signed")]
pub(crate) fn composefs_error(e: &dyn core::fmt::Display, path: Option<&[u8]>) -> Error {
    let mut t = otcore::out::Text::new();
    let _ = match path {
        Some(p) => {
            core::fmt::Write::write_fmt(&mut t, format_args!("{}: {e}", otcore::path::Lossy(p)))
        }
        None => core::fmt::Write::write_fmt(&mut t, format_args!("{e}")),
    };
    Error::Composefs(t)
}
