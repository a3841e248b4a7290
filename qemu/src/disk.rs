//! Test disks: a genuine OSTree sysroot made by the real `ostree` CLI, in an
//! ext4 image made by `mkfs.ext4 -d` (nothing is mounted on the host),
//! optionally inside a GPT partition (the table written by `sfdisk` into the
//! image file, the filesystem copied in at 1 MiB).
//!
//! Two deployments, built from trees that differ in
//! `usr/share/which-deployment` (`A`, then `B`; `B` is the default entry), so
//! a test can tell which one booted. Their `/sbin/init` is the ktest agent;
//! `usr/lib/ostree/ostree-prepare-root` is ours, committed into the tree as an
//! OS build would, which is where libostree's `init=` argument points when a
//! deployment has no initramfs.
//!
//! `ostree admin deploy` syncs and freezes the filesystem holding `/boot`, so
//! the sysroot is built on a tmpfs inside a private mount namespace
//! (`unshare`, then this same binary's hidden `__build-sysroot` command).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::kernel::Kernel;
use crate::util::{self, output, run};

pub const OSNAME: &str = "testos";
pub const FS_LABEL: &str = "osroot";
pub const PART_LABEL: &str = "ostree-root";
/// Size of the ext4 filesystem.
const FS_MB: u64 = 96;
/// Where the partition starts in a GPT image (1 MiB, as every tool aligns).
const PART_OFFSET: u64 = 1 << 20;
/// Marker file in the stateroot's var, checked by ktest's `var-is-stateroot-var`.
pub(crate) const VAR_MARKER: &str = "ktest-stateroot-var";

/// A built disk and the facts the scenarios need about it.
#[derive(Debug, Clone)]
pub struct Disk {
    pub image: PathBuf,
    /// The ext4 filesystem alone (equal to `image` without GPT).
    pub fs_image: PathBuf,
    pub gpt: bool,
    pub meta: BTreeMap<String, String>,
    /// More disks attached beside `image`, in order (copies of it, say, for
    /// a machine with two disks carrying the same identifiers).
    pub twins: Vec<PathBuf>,
}

impl Disk {
    pub fn get(&self, key: &str) -> &str {
        self.meta.get(key).map(String::as_str).unwrap_or("")
    }
    /// The `ostree=` value of deployment `A` or `B`.
    pub fn ostree_arg(&self, which: &str) -> &str {
        self.get(&format!("OSTREE_{which}"))
    }
    /// The deployment directory (relative to the sysroot) of `A` or `B`.
    pub fn deploy_dir(&self, which: &str) -> &str {
        self.get(&format!("DEPLOY_{which}"))
    }
}

pub(crate) fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// A short fingerprint of the inputs, so a disk is rebuilt when ktest or
/// ostree-prepare-root change (FNV-1a; not security relevant).
pub(crate) fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter().chain(&[0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The filesystem tree committed for one deployment.
///
/// `usr/lib/modules/KVER` is the test kernel's version, with a stand-in
/// `vmlinuz` (ostree requires one; QEMU boots the real one) and the kernel's
/// real module files for [`crate::initramfs::MODULES`], so that a boot without
/// initramfs can load overlayfs from the deployment.
pub(crate) fn make_tree(
    t: &Path,
    letter: &str,
    version: u32,
    bins: (&[u8], &[u8], &[u8]),
    kernel: &Kernel,
) -> Result<()> {
    for d in [
        "usr/bin",
        "usr/sbin",
        "usr/lib/ostree",
        "usr/etc",
        "usr/share",
        "sysroot",
        "var",
        "boot",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "mnt",
    ] {
        fs::create_dir_all(t.join(d))?;
    }
    let (ktest, prepare_root, unlock) = bins;
    let kdir = t.join("usr/lib/modules").join(&kernel.version);
    fs::create_dir_all(&kdir)?;
    fs::write(
        kdir.join("vmlinuz"),
        b"not a kernel: QEMU boots the harness's\n",
    )?;
    let names: Vec<String> = crate::initramfs::MODULES
        .iter()
        .map(|m| m.to_string())
        .collect();
    let dep = fs::read_to_string(kernel.modules.join("modules.dep"))?;
    let lines = crate::initramfs::dep_closure(&dep, &names)?;
    for l in &lines {
        let rel = l.split(':').next().unwrap_or_default();
        fs::create_dir_all(kdir.join(rel).parent().context("module path")?)?;
        fs::copy(kernel.modules.join(rel), kdir.join(rel))?;
    }
    fs::write(kdir.join("modules.dep"), lines.join("\n") + "\n")?;
    std::os::unix::fs::symlink("sysroot/ostree", t.join("ostree"))?;
    for (l, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")] {
        std::os::unix::fs::symlink(target, t.join(l))?;
    }
    let release = format!("ID={OSNAME}\nNAME=\"ktest OS\"\nVERSION={version}\nVARIANT={letter}\n");
    fs::write(t.join("usr/lib/os-release"), &release)?;
    fs::write(t.join("usr/etc/os-release"), &release)?;
    fs::write(t.join("usr/share/which-deployment"), format!("{letter}\n"))?;
    let exe = |p: &Path, data: &[u8]| -> Result<()> {
        fs::write(p, data)?;
        let mut perm = fs::metadata(p)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        Ok(fs::set_permissions(p, perm)?)
    };
    exe(&t.join("usr/sbin/init"), ktest)?;
    exe(&t.join("usr/lib/ktest"), ktest)?;
    exe(&t.join("usr/lib/ostree/ostree-prepare-root"), prepare_root)?;
    exe(&t.join("usr/bin/ostree-unlock"), unlock)?;
    Ok(())
}

/// Build (or reuse) the disk `name`.
pub fn ensure(name: &str, gpt: bool, kernel: &Kernel) -> Result<Disk> {
    build(name, gpt, kernel, None)
}

/// The disks of the way-back scenario, built as a user would go: the usual
/// sysroot, then `ostree-unlock --hotfix` of deployment B offline (which
/// deploys B's pristine clone with the host's `ostree`) and a file in the
/// hotfix overlay ([`WAY_BACK_FILE`]); for [`WayBack::Redeployed`], then a
/// third commit C with the same kernel, deployed with `ostree admin deploy
/// --retain`. The meta lists every boot entry then on the disk (`WB_COUNT`,
/// `WB{i}_*`), and `grub2.cfg` beside the image is what libostree's GRUB
/// generator prints for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WayBack {
    Hotfixed,
    Redeployed,
}

impl WayBack {
    fn arg(self) -> &'static str {
        match self {
            WayBack::Hotfixed => "way-back",
            WayBack::Redeployed => "way-back-redeployed",
        }
    }
    pub fn from_arg(a: &str) -> Option<WayBack> {
        [WayBack::Hotfixed, WayBack::Redeployed]
            .into_iter()
            .find(|w| w.arg() == a)
    }
}

/// Build (or reuse) a disk of the way-back scenario (see [`WayBack`]).
pub fn ensure_way_back(kernel: &Kernel, stage: WayBack) -> Result<Disk> {
    build(stage.arg(), false, kernel, Some(stage))
}

/// The file the way-back disks' hotfix adds to `/usr`.
pub const WAY_BACK_FILE: &str = "/usr/share/ktest-way-back";

fn build(name: &str, gpt: bool, kernel: &Kernel, way_back: Option<WayBack>) -> Result<Disk> {
    let ktest = fs::read(util::ktest_bin()).context("ktest binary missing: run `make ktest`")?;
    let prep = fs::read(util::prepare_root_bin())
        .context("ostree-prepare-root missing: run `make build`")?;
    let unlock = fs::read(util::unlock_bin()).context("ostree-unlock missing: run `make build`")?;
    let fp = fingerprint(&[
        &ktest,
        &prep,
        &unlock,
        &[u8::from(gpt)],
        way_back.map_or("", WayBack::arg).as_bytes(),
        kernel.version.as_bytes(),
        b"disk-v3",
    ]);
    let dir = util::work_dir().join("disks").join(name);
    let env_file = dir.join("disk.env");
    let image = dir.join("disk.img");
    let fs_image = if gpt {
        dir.join("fs.img")
    } else {
        image.clone()
    };
    if let Ok(text) = fs::read_to_string(&env_file) {
        let meta = parse_env(&text);
        if meta.get("FINGERPRINT") == Some(&fp) && image.exists() {
            return Ok(Disk {
                image,
                fs_image,
                gpt,
                meta,
                twins: Vec::new(),
            });
        }
    }
    let _ = fs::remove_dir_all(&dir);
    let build = dir.join("build");
    fs::create_dir_all(&build)?;
    // C is the new commit the redeployed way-back disk deploys.
    let letters: &[&str] = match way_back {
        Some(WayBack::Redeployed) => &["A", "B", "C"],
        _ => &["A", "B"],
    };
    for (version, letter) in (1..).zip(letters) {
        let tree = build.join(format!("tree-{letter}"));
        make_tree(&tree, letter, version, (&ktest, &prep, &unlock), kernel)?;
    }
    let fs_uuid = util::new_uuid()?;
    let exe = std::env::current_exe()?;
    run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(&exe)
        .arg("__build-sysroot")
        .arg(&build)
        .arg(&fs_image)
        .arg(&fs_uuid)
        .args(way_back.map(WayBack::arg))
        // Keep libmount's utab out of the host's /run/mount.
        .env("LIBMOUNT_UTAB", build.join("utab")))
    .context("building the OSTree sysroot")?;
    let mut meta = parse_env(&fs::read_to_string(build.join("entries.env"))?);
    meta.insert("FINGERPRINT".into(), fp);
    meta.insert("FS_LABEL".into(), FS_LABEL.into());
    meta.insert("FS_UUID".into(), fs_uuid);
    meta.insert("OSNAME".into(), OSNAME.into());
    if gpt {
        let (disk_guid, part_uuid) = (util::new_uuid()?, util::new_uuid()?);
        write_gpt(&fs_image, &image, &disk_guid, &part_uuid)?;
        meta.insert("PARTUUID".into(), part_uuid);
        meta.insert("PARTLABEL".into(), PART_LABEL.into());
        meta.insert("DISK_GUID".into(), disk_guid);
    }
    let text: String = meta.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
    fs::write(&env_file, text)?;
    if way_back.is_some() {
        fs::rename(build.join("grub2.cfg"), dir.join("grub2.cfg"))?;
    }
    fs::remove_dir_all(&build)?;
    Ok(Disk {
        image,
        fs_image,
        gpt,
        meta,
        twins: Vec::new(),
    })
}

/// Put `fs_image` into a one-partition GPT disk image `out`.
fn write_gpt(fs_image: &Path, out: &Path, disk_guid: &str, part_uuid: &str) -> Result<()> {
    let fs_len = fs::metadata(fs_image)?.len();
    let total = PART_OFFSET + fs_len + PART_OFFSET; // room for the backup GPT
    let f = fs::File::create(out)?;
    f.set_len(total)?;
    drop(f);
    let script = format!(
        "label: gpt\nlabel-id: {disk_guid}\nfirst-lba: 2048\n\
         start=2048, size={}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid={part_uuid}, name=\"{PART_LABEL}\"\n",
        fs_len / 512
    );
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("running sfdisk")?;
    child
        .stdin
        .take()
        .context("sfdisk stdin")?
        .write_all(script.as_bytes())?;
    if !child.wait()?.success() {
        bail!("sfdisk failed on {}", out.display());
    }
    let mut disk = fs::OpenOptions::new().write(true).open(out)?;
    disk.seek(SeekFrom::Start(PART_OFFSET))?;
    std::io::copy(&mut fs::File::open(fs_image)?, &mut disk)?;
    disk.sync_all()?;
    Ok(())
}

/// Inside the private mount namespace: build the sysroot on a tmpfs, record
/// its boot entries, write the ext4 image. Arguments: BUILD FS_IMAGE FS_UUID.
pub fn build_sysroot_in_namespace(
    build: &Path,
    fs_image: &Path,
    fs_uuid: &str,
    way_back: Option<WayBack>,
) -> Result<()> {
    let ns = build.join("ns");
    fs::create_dir_all(&ns)?;
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=0755", "ktest-disk"])
        .arg(&ns))?;
    let r = build_sysroot(build, &ns, fs_image, fs_uuid, way_back);
    let _ = run(Command::new("umount").arg(&ns));
    r
}

fn build_sysroot(
    build: &Path,
    ns: &Path,
    fs_image: &Path,
    fs_uuid: &str,
    way_back: Option<WayBack>,
) -> Result<()> {
    let s = ns.join("sysroot");
    let sysroot_arg = format!("--sysroot={}", s.display());
    let repo_arg = format!("--repo={}", s.join("ostree/repo").display());
    fs::create_dir_all(&s)?;
    run(Command::new("ostree").args(["admin", "init-fs"]).arg(&s))?;
    run(Command::new("ostree").args(["admin", &sysroot_arg, "os-init", OSNAME]))?;
    for letter in ["A", "B"] {
        let tree = format!(
            "--tree=dir={}",
            build.join(format!("tree-{letter}")).display()
        );
        run(Command::new("ostree").args([
            &repo_arg,
            "commit",
            "-b",
            &format!("{OSNAME}/stable"),
            &tree,
            "--no-xattrs",
            &format!("--subject=ktest deployment {letter}"),
        ]))?;
        run(Command::new("ostree").args([
            "admin",
            &sysroot_arg,
            "deploy",
            &format!("--os={OSNAME}"),
            &format!("--karg=root=LABEL={FS_LABEL}"),
            "--karg=rw",
            &format!("{OSNAME}/stable"),
        ]))?;
    }
    fs::write(
        s.join(format!("ostree/deploy/{OSNAME}/var/{VAR_MARKER}")),
        "stateroot var\n",
    )?;
    if let Some(stage) = way_back {
        return way_back_sysroot(build, &s, fs_image, fs_uuid, stage);
    }
    let mut env = String::new();
    for entry in fs::read_dir(s.join("boot/loader/entries"))? {
        let path = entry?.path();
        let e = read_entry(&s, &path)?;
        let (options, target, letter) = (&e.options, &e.target, &e.which);
        let karg = |k: &str| {
            options
                .split_whitespace()
                .find_map(|a| a.strip_prefix(k))
                .map(str::to_string)
        };
        let deploy = &e.deploy;
        let rel = deploy.strip_prefix(&s)?.display().to_string();
        env += &format!(
            "OSTREE_{letter}='{target}'\nDEPLOY_{letter}='{rel}'\nOPTIONS_{letter}='{options}'\n"
        );
        env += &format!(
            "ENTRY_{letter}='{}'\n",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        if let Some(init) = karg("init=") {
            env += &format!("INIT_{letter}='{init}'\n");
        }
        // Deployment roots are immutable; the image gets no attributes anyway.
        let _ = Command::new("chattr").arg("-i").arg(deploy).status();
    }
    fs::write(build.join("entries.env"), env)?;
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", FS_LABEL, "-U", fs_uuid, "-d"])
        .arg(&s)
        .arg(fs_image)
        .arg(format!("{FS_MB}M")))?;
    Ok(())
}

/// What a boot entry of sysroot `s` boots.
pub(crate) struct Entry {
    pub options: String,
    /// Its `ostree=`.
    pub target: String,
    /// The deployment directory `ostree=` leads to.
    pub deploy: PathBuf,
    /// That deployment's `usr/share/which-deployment` (`A`, `B`, `C`).
    pub which: String,
}

pub(crate) fn read_entry(s: &Path, path: &Path) -> Result<Entry> {
    let text = fs::read_to_string(path)?;
    let options = text
        .lines()
        .find_map(|l| l.strip_prefix("options "))
        .with_context(|| format!("no options line in {}", path.display()))?
        .trim()
        .to_string();
    let target = options
        .split_whitespace()
        .find_map(|a| a.strip_prefix("ostree="))
        .with_context(|| format!("no ostree= in {}", path.display()))?
        .to_string();
    let deploy = fs::canonicalize(s.join(target.trim_start_matches('/')))?;
    let which = fs::read_to_string(deploy.join("usr/share/which-deployment"))?
        .trim()
        .to_string();
    Ok(Entry {
        options,
        target,
        deploy,
        which,
    })
}

/// The way-back steps of [`ensure_way_back`] on sysroot `s` (A and B
/// deployed), then its entries and GRUB menu recorded, and the image made.
fn way_back_sysroot(
    build: &Path,
    s: &Path,
    fs_image: &Path,
    fs_uuid: &str,
    stage: WayBack,
) -> Result<()> {
    // The hotfix of the default deployment (B), offline, with its clone.
    run(Command::new(util::unlock_bin())
        .arg("--hotfix")
        .arg("--sysroot")
        .arg(s))
    .context("ostree-unlock --hotfix --sysroot")?;
    let deploy_root = s.join(format!("ostree/deploy/{OSNAME}/deploy"));
    let hotfixed = fs::read_dir(&deploy_root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join(".usr-ovl-upper").is_dir())
        .context("no deployment with .usr-ovl-upper after ostree-unlock --hotfix")?;
    let upper_share = hotfixed.join(".usr-ovl-upper/share");
    fs::create_dir_all(&upper_share)?;
    let file = Path::new(WAY_BACK_FILE)
        .file_name()
        .context("way-back file name")?;
    fs::write(upper_share.join(file), "written by the hotfix\n")?;
    if stage == WayBack::Redeployed {
        deploy_c(build, s)?;
    }
    record_way_back(build, s)?;
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", FS_LABEL, "-U", fs_uuid, "-d"])
        .arg(s)
        .arg(fs_image)
        .arg(format!("{FS_MB}M")))?;
    Ok(())
}

/// A new commit with the same kernel, deployed keeping every deployment.
fn deploy_c(build: &Path, s: &Path) -> Result<()> {
    let sysroot_arg = format!("--sysroot={}", s.display());
    let repo_arg = format!("--repo={}", s.join("ostree/repo").display());
    let tree = format!("--tree=dir={}", build.join("tree-C").display());
    run(Command::new("ostree").args([
        &repo_arg,
        "commit",
        "-b",
        &format!("{OSNAME}/stable"),
        &tree,
        "--no-xattrs",
        "--subject=ktest deployment C",
    ]))?;
    run(Command::new("ostree").args([
        "admin",
        &sysroot_arg,
        "deploy",
        "--retain",
        &format!("--os={OSNAME}"),
        &format!("{OSNAME}/stable"),
    ]))?;
    Ok(())
}

/// Every entry now on the disk with what it boots (`build/entries.env`),
/// and the GRUB menu libostree generates (`build/grub2.cfg`).
fn record_way_back(build: &Path, s: &Path) -> Result<()> {
    let sysroot_arg = format!("--sysroot={}", s.display());
    let mut env = String::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(s.join("boot/loader/entries"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for (i, path) in entries.iter().enumerate() {
        let Entry {
            options,
            deploy,
            which,
            ..
        } = read_entry(s, path)?;
        let hotfix = deploy.join(".usr-ovl-upper").is_dir();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        env += &format!(
            "WB{i}_FILE='{name}'\nWB{i}_OPTIONS='{options}'\nWB{i}_DEPLOY='{}'\nWB{i}_WHICH='{}'\nWB{i}_HOTFIXED='{}'\n",
            deploy.strip_prefix(s)?.display(),
            which,
            if hotfix { "yes" } else { "no" },
        );
        let _ = Command::new("chattr").arg("-i").arg(&deploy).status();
    }
    env += &format!("WB_COUNT='{}'\n", entries.len());
    fs::write(build.join("entries.env"), env)?;
    // What a GRUB menu built by libostree lists (Debian's 15_ostree runs this).
    let grub = Command::new("ostree")
        .args(["admin", "instutil", &sysroot_arg, "grub2-generate"])
        .env("GRUB2_BOOT_DEVICE_ID", "ktest")
        .env("GRUB2_PREPARE_ROOT_CACHE", "")
        .output()
        .context("ostree admin instutil grub2-generate")?;
    if !grub.status.success() {
        bail!(
            "ostree admin instutil grub2-generate: {}: {}",
            grub.status,
            String::from_utf8_lossy(&grub.stderr)
        );
    }
    fs::write(build.join("grub2.cfg"), &grub.stdout)?;
    Ok(())
}

/// Replay the ext4 journal into the image. The guests power off without
/// unmounting (only `sync`), so recent metadata may sit in the journal only:
/// debugfs does not replay it, and a later mount would replay it over
/// whatever debugfs wrote. `e2fsck -E journal_only` applies it first.
pub fn replay_journal(fs_image: &Path) -> Result<()> {
    let st = Command::new("e2fsck")
        .args(["-y", "-E", "journal_only"])
        .arg(fs_image)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("running e2fsck")?;
    // 0: clean, 1: errors corrected (the replay itself counts as one).
    match st.code() {
        Some(0 | 1) => Ok(()),
        _ => bail!("e2fsck -E journal_only {}: {st}", fs_image.display()),
    }
}

/// Read a file from the ext4 filesystem of a disk, without mounting it.
pub fn debugfs_cat(fs_image: &Path, path: &str) -> Result<String> {
    replay_journal(fs_image)?;
    output(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("cat {path}"))
            .arg(fs_image),
    )
}

/// Run write requests against the ext4 image (`debugfs -w -f`).
fn debugfs_write(fs_image: &Path, requests: &[String]) -> Result<()> {
    replay_journal(fs_image)?;
    let script = fs_image.with_extension("debugfs");
    fs::write(&script, requests.join("\n") + "\n")?;
    let out = Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(fs_image)
        .output()?;
    let _ = fs::remove_file(&script);
    let err = String::from_utf8_lossy(&out.stderr);
    // debugfs exits 0 even when a request fails; its messages name the request.
    let bad: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
        .collect();
    if !out.status.success() || !bad.is_empty() {
        bail!("debugfs on {}: {}", fs_image.display(), bad.join("; "));
    }
    Ok(())
}

/// Create directories in the ext4 image (e.g. the hotfix markers).
pub fn mkdirs(fs_image: &Path, dirs: &[String]) -> Result<()> {
    debugfs_write(
        fs_image,
        &dirs
            .iter()
            .map(|d| format!("mkdir {d}"))
            .collect::<Vec<_>>(),
    )
}

/// Remove a directory tree from the ext4 image.
pub fn remove_tree(fs_image: &Path, dir: &str) -> Result<()> {
    let mut requests = vec![];
    collect_removals(fs_image, dir, &mut requests)?;
    debugfs_write(fs_image, &requests)
}

fn collect_removals(fs_image: &Path, dir: &str, out: &mut Vec<String>) -> Result<()> {
    for (name, mode) in debugfs_ls(fs_image, dir)? {
        if name == "." || name == ".." {
            continue;
        }
        let path = format!("{dir}/{name}");
        if mode.starts_with("04") {
            collect_removals(fs_image, &path, out)?;
        } else {
            out.push(format!("rm {path}"));
        }
    }
    out.push(format!("rmdir {dir}"));
    Ok(())
}

/// The entries of directory `dir` of the ext4 image, as (name, octal mode),
/// `.` and `..` included. `ls -p` prints `/inode/mode/uid/gid/name/size/`.
fn debugfs_ls(fs_image: &Path, dir: &str) -> Result<Vec<(String, String)>> {
    replay_journal(fs_image)?;
    let text = output(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("ls -p {dir}"))
            .arg(fs_image),
    )?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('/').collect();
            (f.len() >= 7 && !f[5].is_empty()).then(|| (f[5].to_string(), f[2].to_string()))
        })
        .collect())
}

/// Copy a disk for one scenario, so scenarios never share state.
pub fn scratch_copy(disk: &Disk, name: &str) -> Result<Disk> {
    let dir = util::work_dir().join("runs").join(name);
    fs::create_dir_all(&dir)?;
    let image = dir.join("disk.img");
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(&disk.image)
        .arg(&image))?;
    let fs_image = if disk.gpt {
        disk.fs_image.clone()
    } else {
        image.clone()
    };
    Ok(Disk {
        image,
        fs_image,
        gpt: disk.gpt,
        meta: disk.meta.clone(),
        twins: Vec::new(),
    })
}

/// Attach a copy of `disk`'s image as one more disk of the same machine.
pub fn add_twin(disk: &mut Disk) -> Result<()> {
    let twin = disk
        .image
        .with_extension(format!("twin{}.img", disk.twins.len() + 1));
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(&disk.image)
        .arg(&twin))?;
    disk.twins.push(twin);
    Ok(())
}

/// Replace (or create) the file `dir/name` in the ext4 image with `content`.
pub fn write_file(fs_image: &Path, dir: &str, name: &str, content: &str) -> Result<()> {
    let local = fs_image.with_extension(format!("{name}.new"));
    fs::write(&local, content)?;
    let exists = output(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("stat {dir}/{name}"))
            .arg(fs_image),
    )
    .map(|o| o.contains("Inode:"))
    .unwrap_or(false);
    let mut req = vec![format!("cd {dir}")];
    if exists {
        req.push(format!("rm {name}"));
    }
    req.push(format!("write {} {name}", local.display()));
    let r = debugfs_write(fs_image, &req);
    let _ = fs::remove_file(&local);
    r
}

/// Turn on `sysroot.readonly` in the repository config (`[sysroot] readonly=true`).
pub fn set_sysroot_readonly(fs_image: &Path) -> Result<()> {
    let mut config = debugfs_cat(fs_image, "/ostree/repo/config")?;
    if !config.ends_with('\n') {
        config.push('\n');
    }
    config.push_str("\n[sysroot]\nreadonly=true\n");
    write_file(fs_image, "/ostree/repo", "config", &config)
}

/// Names in a directory of the ext4 image (for "nothing was written" checks).
pub fn list_dir(fs_image: &Path, dir: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = debugfs_ls(fs_image, dir)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.sort();
    Ok(names)
}

/// The boot loader entries on the ext4 image (`/boot/loader/entries/*.conf`,
/// through the `loader` link), as (file name, `options` line), sorted: what
/// a boot loader reading them would offer after the guest changed them.
pub fn entries_in_image(fs_image: &Path) -> Result<Vec<(String, String)>> {
    let dir = "/boot/loader/entries";
    let mut out = vec![];
    for name in list_dir(fs_image, dir)? {
        if !name.ends_with(".conf") {
            continue;
        }
        let text = debugfs_cat(fs_image, &format!("{dir}/{name}"))?;
        let options = text
            .lines()
            .find_map(|l| l.strip_prefix("options "))
            .with_context(|| format!("no options line in {dir}/{name} of {}", fs_image.display()))?
            .trim()
            .to_string();
        out.push((name, options));
    }
    Ok(out)
}
