//! The superblock and partition-table probes, checked against `blkid` on
//! image files made by the real mkfs tools (no mounting, no root needed).
//! The tools are installed by `scripts/install-deps.sh`; a missing tool fails
//! the test rather than skipping it, so CI cannot pass without checking.

use std::path::{Path, PathBuf};
use std::process::Command;

use switchroot::probe::{self, FsType};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("switchroot-probe-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `blkid -p -o export` of a file, as key → value.
fn blkid(path: &Path) -> std::collections::HashMap<String, String> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn image(dir: &Path, size_mb: u64) -> PathBuf {
    let img = dir.join("fs.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(size_mb << 20).unwrap();
    img
}

fn head(path: &Path) -> Vec<u8> {
    let mut d = std::fs::read(path).unwrap();
    d.truncate(probe::PROBE_LEN);
    d
}

fn check(name: &str, want: FsType, mkfs: impl FnOnce(&Path, &Path)) {
    let dir = tmpdir(name);
    let img = image(&dir, 300);
    mkfs(&dir, &img);
    let b = blkid(&img);
    let info = probe::probe_fs(&head(&img)).unwrap_or_else(|| panic!("{name}: not recognised"));
    assert_eq!(info.fstype, want, "{name}");
    assert_eq!(
        Some(info.uuid.as_str()),
        b.get("UUID").map(String::as_str),
        "{name} uuid"
    );
    assert_eq!(
        std::str::from_utf8(&info.label).unwrap(),
        b.get("LABEL").map(String::as_str).unwrap_or(""),
        "{name} label"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ext4_matches_blkid() {
    check("ext4", FsType::Ext4, |_, img| {
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "osroot"])
            .arg(img));
    });
}

#[test]
fn xfs_matches_blkid() {
    check("xfs", FsType::Xfs, |_, img| {
        run(Command::new("mkfs.xfs")
            .args(["-q", "-f", "-L", "xroot"])
            .arg(img));
    });
}

#[test]
fn btrfs_matches_blkid() {
    check("btrfs", FsType::Btrfs, |_, img| {
        run(Command::new("mkfs.btrfs")
            .args(["-q", "-f", "-L", "broot"])
            .arg(img));
    });
}

#[test]
fn erofs_matches_blkid() {
    check("erofs", FsType::Erofs, |dir, img| {
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("usr")).unwrap();
        std::fs::write(src.join("usr/hello"), "hi").unwrap();
        let _ = std::fs::remove_file(img);
        run(Command::new("mkfs.erofs")
            // erofs-utils 1.5 (Debian 12) cannot set a label; the UUID is checked.
            .args(["-U", "0c2b0ad9-6f8e-4d2c-9f0e-0123456789ab"])
            .arg(img)
            .arg(&src));
    });
}

#[test]
fn vfat_matches_blkid() {
    check("vfat", FsType::Vfat, |_, img| {
        run(Command::new("mkfs.vfat")
            .args(["-F", "32", "-n", "EFI", "-i", "1234ABCD"])
            .arg(img));
    });
}

#[test]
fn gpt_partitions_match_blkid() {
    let (dir, img) = partitioned("gpt", GPT_SCRIPT);
    let data = std::fs::read(&img).unwrap();
    let header = probe::parse_gpt_header(&data[512..1024]).expect("GPT header");
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(&img)
        .output()
        .unwrap();
    let json = String::from_utf8(out.stdout).unwrap();
    for n in 0..2usize {
        let off = header.entries_lba as usize * 512 + n * header.entry_size as usize;
        let part = probe::parse_gpt_entry(&data[off..off + 128]).unwrap();
        // sfdisk prints the partition GUID in upper case.
        assert!(
            json.contains(&part.uuid.to_uppercase()),
            "partition {n}: {} not in {json}",
            part.uuid
        );
        let name = std::str::from_utf8(&part.label).unwrap();
        assert!(
            json.contains(&format!("\"name\": \"{name}\"")),
            "partition {n} name {name}"
        );
    }
    assert_eq!(
        probe::parse_gpt_entry(&data[header.entries_lba as usize * 512..][..128])
            .unwrap()
            .uuid
            .as_str(),
        "2f6b2a3c-1d4e-4f5a-8b9c-0d1e2f3a4b5c"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A disk image partitioned by sfdisk from `script`.
fn partitioned(name: &str, script: &str) -> (PathBuf, PathBuf) {
    let dir = tmpdir(name);
    let img = image(&dir, 40);
    let mut child = Command::new("sfdisk")
        .arg("--quiet")
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    (dir, img)
}

/// `probe::partition_ids` on an image file.
fn ids_of(img: &Path, number: u32) -> Option<(String, Option<String>)> {
    let data = std::fs::read(img).unwrap();
    let mut read = |off: u64, buf: &mut [u8]| {
        let off = off as usize;
        match data.get(off..off + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    };
    probe::partition_ids(&mut read, data.len() as u64, number).map(|(u, l)| {
        (
            u.as_str().to_string(),
            l.map(|l| String::from_utf8(l.to_vec()).unwrap()),
        )
    })
}

const GPT_SCRIPT: &str = "label: gpt\n\
    start=2048, size=20480, name=\"root-a\", uuid=2f6b2a3c-1d4e-4f5a-8b9c-0d1e2f3a4b5c\n\
    start=22528, size=10240, name=\"data\"\n";

#[test]
fn gpt_primary_damaged_backup_used() {
    let (dir, img) = partitioned("gpt-backup", GPT_SCRIPT);
    let want = Some((
        "2f6b2a3c-1d4e-4f5a-8b9c-0d1e2f3a4b5c".to_string(),
        Some("root-a".to_string()),
    ));
    assert_eq!(ids_of(&img, 1), want);
    // Damage the primary header (its CRC no longer matches): the backup,
    // at the disk's last sector, still says the same.
    let mut data = std::fs::read(&img).unwrap();
    data[512 + 40] ^= 0xff;
    std::fs::write(&img, &data).unwrap();
    assert_eq!(ids_of(&img, 1), want);
    // sfdisk (libfdisk) reads the same partition from the backup.
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(&img)
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        json.contains("2F6B2A3C-1D4E-4F5A-8B9C-0D1E2F3A4B5C"),
        "{json}"
    );
    // Both damaged: no GPT, and a protective MBR has no PARTUUID of its own.
    let last = data.len() - 512;
    data[last + 40] ^= 0xff;
    std::fs::write(&img, &data).unwrap();
    assert_eq!(ids_of(&img, 1), None);
    // A damaged entry array (its CRC in the header no longer matches).
    let (_, img2) = partitioned("gpt-entries", GPT_SCRIPT);
    let mut data = std::fs::read(&img2).unwrap();
    data[1024 + 60] ^= 0xff; // a byte of entry 1's name, primary array only
    std::fs::write(&img2, &data).unwrap();
    assert_eq!(ids_of(&img2, 1), want, "the backup array is used");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(img2.parent().unwrap());
}

#[test]
fn stale_gpt_header_over_an_mbr_disk() {
    // An MBR disk (what blkid reports: PTTYPE=dos, PTUUID=12345678) whose
    // sector 1 still holds a valid-looking GPT header from an earlier life.
    let (dir, gpt) = partitioned("stale-gpt-src", GPT_SCRIPT);
    let (_, img) = partitioned(
        "stale-gpt",
        "label: dos\nlabel-id: 0x12345678\nstart=2048, size=20480, type=83\n",
    );
    let mut data = std::fs::read(&img).unwrap();
    let old = std::fs::read(&gpt).unwrap();
    data[512..1024].copy_from_slice(&old[512..1024]);
    std::fs::write(&img, &data).unwrap();
    let b = blkid(&img);
    assert_eq!(b.get("PTTYPE").map(String::as_str), Some("dos"), "{b:?}");
    assert_eq!(ids_of(&img, 1), Some(("12345678-01".to_string(), None)));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(img.parent().unwrap());
}
