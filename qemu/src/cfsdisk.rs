//! The composefs test disk: two deployments made by ostree 2026.4's CLI (the
//! chroot of `scripts/fetch-composefs-ref.sh`; Debian 12's ostree has no
//! composefs) with `ex-integrity.composefs=true` and `commit
//! --generate-composefs-metadata`, so each deployment has its `.ostree.cfs`
//! image, recording the fs-verity digest of every file (the trees ask for
//! verity in their `usr/lib/ostree/prepare-root.conf`), and each commit its
//! `ostree.composefs.digest.v0`. Both commits are signed with Ed25519 key 1
//! (OpenSSL; `.commitmeta` written by GLib through python3-gi); key 2 signs
//! nothing. The ext4 image is made with `mkfs.ext4 -O verity -b 4096`
//! (composefs digests use 4096-byte Merkle blocks).
//!
//! Only a kernel with `CONFIG_FS_VERITY` can enable fs-verity on the files,
//! so the disk is finished by a setup boot ([`VeritySetup`]): the deployment
//! booted without composefs, where ktest enables it on every object and
//! both images. That disk is kept and copied for each scenario.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::disk::{self, Disk, FS_LABEL, OSNAME};
use crate::kernel::Kernel;
use crate::util::{self, output, run};

/// A file no boot needs, whose object the tampering scenario corrupts.
pub const TAMPER_FILE: &str = "usr/share/ktest-tamper";
/// Where `[composefs] enabled=signed` looks for its keys by default.
pub const KEY_DST: &str = "/etc/ostree/initramfs-root-binding.key";
const FS_MB: u64 = 128;
const SYSROOT_SCRIPT: &str = include_str!("composefs-sysroot.sh");

/// The disk as built (fs-verity not yet enabled), and its keys.
pub struct CfsDisk {
    pub disk: Disk,
    /// Public key files (base64 of the 32 raw bytes): key 1 signed both
    /// commits, key 2 nothing.
    pub key1: PathBuf,
    pub key2: PathBuf,
    /// The fingerprint of the build, which the verity disk records.
    pub fingerprint: String,
}

fn dir() -> PathBuf {
    util::work_dir().join("disks").join("composefs")
}

/// Why a composefs root cannot boot on `kernel` at all, or `None`: it needs
/// EROFS, and one that reads the chunk-based inodes libcomposefs writes
/// (Linux 5.15; on 5.10 the image mounts, then every such file fails with
/// EOPNOTSUPP: "unsupported datalayout 4").
pub fn kernel_runs_composefs(kernel: &Kernel) -> Option<&'static str> {
    if !kernel.config_has("CONFIG_EROFS_FS=y") && !kernel.config_has("CONFIG_EROFS_FS=m") {
        return Some("the kernel has no EROFS (CONFIG_EROFS_FS)");
    }
    if !kernel.at_least(5, 15) {
        return Some("EROFS reads composefs images' chunk-based files from Linux 5.15");
    }
    None
}

/// Whether `kernel` can boot these disks with fs-verity: `CONFIG_FS_VERITY=y`
/// and an overlayfs with `verity=` (Linux 6.6).
pub fn kernel_fit(kernel: &Kernel) -> Option<&'static str> {
    if !kernel.config_has("CONFIG_FS_VERITY=y") {
        return Some("the kernel has no fs-verity (CONFIG_FS_VERITY)");
    }
    if !kernel.at_least(6, 6) {
        return Some("overlayfs verity= needs Linux 6.6");
    }
    None
}

/// Build (or reuse) the composefs disk for `kernel`.
pub fn ensure(kernel: &Kernel) -> Result<CfsDisk> {
    let ktest = fs::read(util::ktest_bin()).context("ktest binary missing: run `make ktest`")?;
    let prep = fs::read(util::prepare_root_bin())
        .context("ostree-prepare-root missing: run `make build`")?;
    let unlock = fs::read(util::unlock_bin()).context("ostree-unlock missing: run `make build`")?;
    let cache = std::env::var_os("COMPOSEFS_REF_CACHE").map_or_else(
        || util::repo_root().join(".cache/composefs-ref"),
        PathBuf::from,
    );
    let stamp = fs::read(cache.join("stamp")).context(
        "no composefs reference chroot (ostree 2026.4): run scripts/fetch-composefs-ref.sh",
    )?;
    let fp = disk::fingerprint(&[
        &ktest,
        &prep,
        &unlock,
        &stamp,
        SYSROOT_SCRIPT.as_bytes(),
        kernel.version.as_bytes(),
        b"cfs-disk-v1",
    ]);
    let dir = dir();
    let env_file = dir.join("disk.env");
    let image = dir.join("disk.img");
    let keys = dir.join("keys");
    let (key1, key2) = (keys.join("key1.pub"), keys.join("key2.pub"));
    if let Ok(text) = fs::read_to_string(&env_file) {
        let meta = disk::parse_env(&text);
        if meta.get("FINGERPRINT") == Some(&fp) && image.exists() {
            return Ok(CfsDisk {
                disk: plain(image, meta),
                key1,
                key2,
                fingerprint: fp,
            });
        }
    }
    let _ = fs::remove_dir_all(&dir);
    let build = dir.join("build");
    fs::create_dir_all(&build)?;
    fs::create_dir_all(&keys)?;
    for (version, letter) in (1..).zip(["A", "B"]) {
        let t = build.join(format!("tree-{letter}"));
        disk::make_tree(&t, letter, version, (&ktest, &prep, &unlock), kernel)?;
        // Read at deploy time: the image records fs-verity digests.
        fs::write(
            t.join("usr/lib/ostree/prepare-root.conf"),
            "[composefs]\nenabled = verity\n",
        )?;
        let text: String = (0..256)
            .map(|i| format!("line {i:04} of a file no boot needs, whose object is corrupted\n"))
            .collect();
        fs::write(t.join(TAMPER_FILE), text)?;
    }
    let script = build.join("composefs-sysroot.sh");
    fs::write(&script, SYSROOT_SCRIPT)?;
    run(
        Command::new(util::repo_root().join("scripts/composefs-ref-run.sh"))
            .arg("--bind")
            .arg(&build)
            .arg("/b")
            .args(["/usr/bin/bash", "/b/composefs-sysroot.sh", OSNAME, FS_LABEL]),
    )
    .context("building the composefs sysroot with ostree 2026.4")?;
    let s = build.join("sysroot");
    let mut meta = disk::parse_env(&fs::read_to_string(build.join("commits.env"))?);
    for pair in [1, 2] {
        make_key(&keys, pair)?;
    }
    for letter in ["A", "B"] {
        let commit = meta[&format!("COMMIT_{letter}")].clone();
        sign(&s, &commit, &keys.join("key1.pem"))?;
    }
    for entry in fs::read_dir(s.join("boot/loader/entries"))? {
        let path = entry?.path();
        let e = disk::read_entry(&s, &path)?;
        let rel = e.deploy.strip_prefix(&s)?.display().to_string();
        let w = &e.which;
        meta.insert(format!("OSTREE_{w}"), e.target.clone());
        meta.insert(format!("DEPLOY_{w}"), rel);
        meta.insert(format!("OPTIONS_{w}"), e.options.clone());
        let _ = Command::new("chattr").arg("-i").arg(&e.deploy).status();
    }
    fs::write(
        s.join(format!("ostree/deploy/{OSNAME}/var/{}", disk::VAR_MARKER)),
        "stateroot var\n",
    )?;
    let fs_uuid = util::new_uuid()?;
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-O", "verity", "-L", FS_LABEL])
        .args(["-U", &fs_uuid, "-d"])
        .arg(&s)
        .arg(&image)
        .arg(format!("{FS_MB}M")))?;
    meta.insert("FINGERPRINT".into(), fp.clone());
    meta.insert("FS_LABEL".into(), FS_LABEL.into());
    meta.insert("FS_UUID".into(), fs_uuid);
    meta.insert("OSNAME".into(), OSNAME.into());
    let text: String = meta.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
    fs::write(&env_file, text)?;
    fs::remove_dir_all(&build)?;
    Ok(CfsDisk {
        disk: plain(image, meta),
        key1,
        key2,
        fingerprint: fp,
    })
}

fn plain(image: PathBuf, meta: std::collections::BTreeMap<String, String>) -> Disk {
    Disk {
        fs_image: image.clone(),
        image,
        gpt: false,
        meta,
        twins: Vec::new(),
    }
}

/// Ed25519 key pair `n`: `keyN.pem` (private) and `keyN.pub` (base64 of the
/// raw 32-byte public key, the last 32 bytes of its DER form).
fn make_key(keys: &Path, n: u32) -> Result<()> {
    let pem = keys.join(format!("key{n}.pem"));
    run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&pem))?;
    let der = util::output_bytes(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&pem),
    )?;
    if der.len() < 32 {
        bail!("openssl pkey -pubout: {} bytes", der.len());
    }
    let b64 = output(Command::new("base64").arg("-w0").arg(write_tmp(
        keys,
        "raw",
        &der[der.len() - 32..],
    )?))?;
    fs::write(
        keys.join(format!("key{n}.pub")),
        format!("{}\n", b64.trim()),
    )?;
    Ok(())
}

fn write_tmp(dir: &Path, name: &str, data: &[u8]) -> Result<PathBuf> {
    let p = dir.join(name);
    fs::write(&p, data)?;
    Ok(p)
}

/// Sign the raw bytes of commit `csum` with `pem` and write its detached
/// metadata (`a{sv}`, `ostree.sign.ed25519` as `aay`) as ostree does.
fn sign(sysroot: &Path, csum: &str, pem: &Path) -> Result<()> {
    let objects = sysroot.join("ostree/repo/objects").join(&csum[..2]);
    let commit = objects.join(format!("{}.commit", &csum[2..]));
    let sig = pem.with_extension("sig");
    run(Command::new("openssl")
        .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
        .arg(pem)
        .arg("-in")
        .arg(&commit)
        .arg("-out")
        .arg(&sig))?;
    // Debian's python3 with GLib's own serialiser (python3-gi).
    run(Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import sys\nfrom gi.repository import GLib\n\
             sig = open(sys.argv[2], 'rb').read()\n\
             v = GLib.Variant('a{sv}', {'ostree.sign.ed25519': GLib.Variant('aay', [sig])})\n\
             open(sys.argv[1], 'wb').write(v.get_data_as_bytes().get_data())\n",
        )
        .arg(objects.join(format!("{}.commitmeta", &csum[2..])))
        .arg(&sig))
    .context("writing .commitmeta (python3-gi)")?;
    Ok(())
}

/// The finished disk: `base` after the setup boot enabled fs-verity, cached
/// as `verity.img` with the base's fingerprint.
pub struct VeritySetup {
    pub image: PathBuf,
    stamp: PathBuf,
}

impl VeritySetup {
    pub fn for_base(base: &CfsDisk) -> VeritySetup {
        let d = dir();
        VeritySetup {
            image: d.join("verity.img"),
            stamp: d.join("verity.stamp"),
        }
        .checked(&base.fingerprint)
    }

    fn checked(self, fp: &str) -> VeritySetup {
        if fs::read_to_string(&self.stamp).ok().as_deref() != Some(fp) {
            let _ = fs::remove_file(&self.stamp);
        }
        self
    }

    pub fn done(&self) -> bool {
        self.stamp.exists() && self.image.exists()
    }

    /// The ktest arguments of the setup boot: fs-verity on every object and
    /// on both images.
    pub fn ktest_args(base: &CfsDisk) -> String {
        let mut a = vec!["ktest.verity=/sysroot/ostree/repo/objects".to_string()];
        for w in ["A", "B"] {
            a.push(format!(
                "ktest.verity=/sysroot/{}/.ostree.cfs",
                base.disk.deploy_dir(w)
            ));
        }
        a.join(" ")
    }

    /// Keep `booted` (the setup boot's disk, journal replayed) as the disk.
    pub fn keep(&self, booted: &Path, base: &CfsDisk) -> Result<()> {
        disk::replay_journal(booted)?;
        run(Command::new("cp")
            .arg("--sparse=always")
            .arg(booted)
            .arg(&self.image))?;
        fs::write(&self.stamp, &base.fingerprint)?;
        Ok(())
    }

    /// The finished disk with `base`'s facts.
    pub fn disk(&self, base: &CfsDisk) -> Disk {
        plain(self.image.clone(), base.disk.meta.clone())
    }
}

/// The first block of `file` (a path in the ext4 image), in bytes from the
/// start of the image: where the tampering scenario writes.
pub fn first_block_offset(fs_image: &Path, file: &str) -> Result<u64> {
    disk::replay_journal(fs_image)?;
    let out = output(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("bmap {file} 0"))
            .arg(fs_image),
    )?;
    let block: u64 = out
        .trim()
        .parse()
        .with_context(|| format!("debugfs bmap {file} 0: {out:?}"))?;
    if block == 0 {
        bail!("debugfs bmap {file} 0: no block");
    }
    Ok(block * 4096)
}

/// Overwrite `data` at byte `offset` of the image (as `dd conv=notrunc`).
pub fn overwrite(image: &Path, offset: u64, data: &[u8]) -> Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs::OpenOptions::new().write(true).open(image)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

/// An initramfs of ours for the composefs scenarios: the lab's modules,
/// `prepare-root.conf` with `conf` (ostree-mkinitramfs adds erofs, overlay,
/// loop for it), and `key` as the default key file when given. Returns the
/// image and its `--list`.
pub fn initramfs(
    kernel: &Kernel,
    name: &str,
    conf: &str,
    key: Option<&Path>,
) -> Result<(PathBuf, String)> {
    let dir = util::work_dir().join("initramfs");
    fs::create_dir_all(&dir)?;
    let conf_file = dir.join(format!("{name}.prepare-root.conf"));
    fs::write(&conf_file, conf)?;
    let out = dir.join(format!("{name}.cpio.gz"));
    // Signature checks are in their own build (the default one refuses
    // `signed`, and ostree-mkinitramfs refuses to pair them).
    let init = if conf.contains("signed") {
        util::prepare_root_signed_bin()
    } else {
        util::prepare_root_bin()
    };
    let spec = crate::initramfs::Spec {
        init,
        modules_dir: kernel.modules.clone(),
        modules: crate::lab::lab_modules(),
        extras: key
            .map(|k| vec![(k.to_path_buf(), KEY_DST.to_string())])
            .unwrap_or_default(),
        compress: mkinitramfs::compress::Compress::Gzip,
    };
    let mut cmd = crate::initramfs::command(&spec, &out);
    cmd.arg("--config").arg(&conf_file);
    let list = output(&mut cmd).with_context(|| format!("building {}", out.display()))?;
    Ok((out, list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(version: &str, config: &str) -> Kernel {
        let root = std::env::temp_dir().join(format!(
            "qemu-harness-cfs-{version}-{}-{}",
            config.len(),
            std::process::id()
        ));
        fs::create_dir_all(root.join("boot")).unwrap();
        fs::write(root.join(format!("boot/config-{version}")), config).unwrap();
        Kernel {
            label: version.into(),
            version: version.into(),
            vmlinuz: root.join("boot/vmlinuz"),
            modules: root.join("lib/modules").join(version),
            root,
        }
    }

    #[test]
    fn composefs_needs_fs_verity_and_overlay_verity() {
        let verity = "CONFIG_FS_VERITY=y\n";
        let cases = [
            ("6.12.117+deb13-cloud-amd64", verity, true),
            (
                "6.12.117+deb13-cloud-amd64",
                "# CONFIG_FS_VERITY is not set\n",
                false,
            ),
            ("6.1.0-57-cloud-amd64", verity, false),
            ("5.10.0-32-cloud-amd64", "", false),
        ];
        for (v, config, fits) in cases {
            let k = kernel(v, config);
            assert_eq!(kernel_fit(&k).is_none(), fits, "{v} {config:?}");
            let _ = fs::remove_dir_all(&k.root);
        }
    }
    #[test]
    fn composefs_needs_erofs_from_5_15() {
        let erofs = "CONFIG_EROFS_FS=m\n";
        let cases = [
            ("6.1.0-57-cloud-amd64", erofs, true),
            ("5.15.0-1-amd64", "CONFIG_EROFS_FS=y\n", true),
            ("5.10.0-32-cloud-amd64", erofs, false),
            (
                "6.12.117+deb13-cloud-amd64",
                "# CONFIG_EROFS_FS is not set\n",
                false,
            ),
        ];
        for (v, config, runs) in cases {
            let k = kernel(v, config);
            assert_eq!(kernel_runs_composefs(&k).is_none(), runs, "{v} {config:?}");
            let _ = fs::remove_dir_all(&k.root);
        }
    }
}
