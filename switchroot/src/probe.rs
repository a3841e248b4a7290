//! Identifying filesystems and partitions from raw bytes, as `blkid` does,
//! for `root=UUID=`, `LABEL=`, `PARTUUID=` and `PARTLABEL=` without udev.
//! Pure functions over byte slices; `rootdev` does the reading.

use core::fmt::Write;

/// How many bytes of a device [`probe_fs`] needs (btrfs keeps its
/// superblock at 64 KiB).
pub const PROBE_LEN: usize = 0x10000 + 4096;

/// A filesystem type we can recognise (and the name `mount(2)` wants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    Ext4,
    Xfs,
    Btrfs,
    Erofs,
    Vfat,
}

impl FsType {
    pub fn name(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Xfs => "xfs",
            FsType::Btrfs => "btrfs",
            FsType::Erofs => "erofs",
            FsType::Vfat => "vfat",
        }
    }
}

/// A UUID as `blkid` prints it (36 characters, or 9 for FAT's `XXXX-XXXX`).
pub type UuidText = heapless::String<36>;
/// A volume or partition label.
pub type Label = heapless::Vec<u8, 256>;

/// What a superblock tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsInfo {
    pub fstype: FsType,
    pub uuid: UuidText,
    pub label: Label,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// `8-4-4-4-12` lowercase hex of 16 bytes in storage order (ext4, xfs, btrfs, erofs).
pub fn uuid_text(b: &[u8]) -> UuidText {
    let mut s = UuidText::new();
    for (i, byte) in b.iter().take(16).enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            let _ = s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// A GUID as GPT stores it: the first three fields are little-endian.
pub fn guid_text(b: &[u8]) -> UuidText {
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut bytes = [0u8; 16];
    for (d, &i) in bytes.iter_mut().zip(order.iter()) {
        *d = b[i];
    }
    uuid_text(&bytes)
}

/// A fixed-size, NUL- (or space-) padded label field.
fn label_from(field: &[u8], trim_spaces: bool) -> Label {
    let mut end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    if trim_spaces {
        while end > 0 && field[end - 1] == b' ' {
            end -= 1;
        }
    }
    Label::from_slice(&field[..end]).unwrap_or_default()
}

fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Recognise the filesystem whose first bytes are `data` (at least
/// [`PROBE_LEN`] bytes for btrfs; shorter input just cannot match it).
pub fn probe_fs(data: &[u8]) -> Option<FsInfo> {
    let info = |fstype, uuid, label| {
        Some(FsInfo {
            fstype,
            uuid,
            label,
        })
    };
    // ext2/3/4: superblock at 1024, magic 0xEF53 at +0x38.
    if data.len() >= 2048 && le16(data, 1024 + 0x38) == 0xEF53 {
        let sb = &data[1024..2048];
        return info(
            FsType::Ext4,
            uuid_text(&sb[0x68..0x78]),
            label_from(&sb[0x78..0x88], false),
        );
    }
    // XFS: "XFSB" at 0, uuid at 32, 12-byte label at 108.
    if data.len() >= 512 && &data[..4] == b"XFSB" {
        return info(
            FsType::Xfs,
            uuid_text(&data[32..48]),
            label_from(&data[108..120], false),
        );
    }
    // EROFS: magic 0xE0F5E1E2 at 1024, uuid at +48, 16-byte volume name at +64.
    if data.len() >= 1024 + 128 && le32(data, 1024) == 0xE0F5_E1E2 {
        let sb = &data[1024..];
        let uuid = if all_zero(&sb[48..64]) {
            UuidText::new()
        } else {
            uuid_text(&sb[48..64])
        };
        return info(FsType::Erofs, uuid, label_from(&sb[64..80], false));
    }
    // btrfs: superblock at 64 KiB, magic "_BHRfS_M" at +0x40, fsid at +0x20, label at +0x12b.
    if data.len() >= 0x10000 + 0x22b && &data[0x10040..0x10048] == b"_BHRfS_M" {
        let sb = &data[0x10000..];
        return info(
            FsType::Btrfs,
            uuid_text(&sb[0x20..0x30]),
            label_from(&sb[0x12b..0x22b], false),
        );
    }
    probe_vfat(data)
}

/// FAT12/16/32: a boot sector with a BIOS parameter block.
fn probe_vfat(d: &[u8]) -> Option<FsInfo> {
    if d.len() < 512 || d[510] != 0x55 || d[511] != 0xAA {
        return None;
    }
    let bytes_per_sector = le16(d, 11);
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) || d[13] == 0 {
        return None;
    }
    // FAT32 has no 16-bit FAT size and its extended BPB at 64; FAT12/16 at 36.
    let (ebpb, sig_at) = if le16(d, 22) == 0 { (64, 82) } else { (36, 54) };
    if &d[sig_at..sig_at + 3] != b"FAT" || d[ebpb + 2] != 0x29 {
        return None;
    }
    let serial = le32(d, ebpb + 3);
    let mut uuid = UuidText::new();
    let _ = write!(uuid, "{:04X}-{:04X}", serial >> 16, serial & 0xffff);
    let mut label = label_from(&d[ebpb + 7..ebpb + 18], true);
    if label.as_slice() == b"NO NAME" {
        label.clear();
    }
    Some(FsInfo {
        fstype: FsType::Vfat,
        uuid,
        label,
    })
}

/// A GPT header: where the partition entries are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptHeader {
    pub entries_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
}

/// Parse the GPT header found at LBA 1 (`sector` is that sector).
pub fn parse_gpt_header(sector: &[u8]) -> Option<GptHeader> {
    if sector.len() < 92 || &sector[..8] != b"EFI PART" {
        return None;
    }
    let h = GptHeader {
        entries_lba: le64(sector, 72),
        entry_count: le32(sector, 80),
        entry_size: le32(sector, 84),
    };
    (h.entry_size >= 128 && h.entry_count > 0).then_some(h)
}

/// One GPT partition entry: its unique GUID and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPart {
    pub uuid: UuidText,
    pub label: Label,
}

/// Parse a 128-byte GPT entry; `None` for an unused slot.
pub fn parse_gpt_entry(e: &[u8]) -> Option<GptPart> {
    if e.len() < 128 || all_zero(&e[..16]) {
        return None;
    }
    // The name is UTF-16LE, NUL-padded; encode it as UTF-8.
    let mut label = Label::new();
    let units = e[56..128]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    for ch in char::decode_utf16(units) {
        let ch = ch.unwrap_or(char::REPLACEMENT_CHARACTER);
        if ch == '\0' {
            break;
        }
        let mut buf = [0u8; 4];
        let _ = label.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    Some(GptPart {
        uuid: guid_text(&e[16..32]),
        label,
    })
}

/// The PARTUUID of MBR partition `number` (1-based): `SSSSSSSS-PP`.
pub fn mbr_partuuid(sector0: &[u8], number: u32) -> Option<UuidText> {
    if sector0.len() < 512 || sector0[510] != 0x55 || sector0[511] != 0xAA {
        return None;
    }
    let sig = le32(sector0, 440);
    if sig == 0 {
        return None;
    }
    let mut s = UuidText::new();
    let _ = write!(s, "{sig:08x}-{number:02x}");
    Some(s)
}

/// CRC-32 (IEEE 802.3, reflected), as GPT checksums its header and entries.
pub fn crc32(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Largest partition entry array we read (the usual one is 16 KiB).
const MAX_ENTRIES_BYTES: u64 = 1 << 20;

/// Reads `buf.len()` bytes of the disk at `offset`; false if it could not.
pub type DiskRead<'a> = &'a mut dyn FnMut(u64, &mut [u8]) -> bool;

/// A GPT header at `lba` that is what it claims: signature, its own CRC,
/// its own location, and the CRC of its entry array. The array's bounds
/// are checked before it is read (a header's numbers may overflow).
fn valid_gpt_at(read: DiskRead<'_>, lba: u64, lba_size: u64) -> Option<GptHeader> {
    let mut sector = [0u8; 512];
    if !read(lba.checked_mul(lba_size)?, &mut sector) {
        return None;
    }
    let h = parse_gpt_header(&sector)?;
    let size = le32(&sector, 12) as usize;
    if !(92..=512).contains(&size) || le64(&sector, 24) != lba {
        return None;
    }
    let mut copy = [0u8; 512];
    copy[..size].copy_from_slice(&sector[..size]);
    copy[16..20].fill(0);
    if crc32(0, &copy[..size]) != le32(&sector, 16) {
        return None;
    }
    let total = u64::from(h.entry_count).checked_mul(u64::from(h.entry_size))?;
    if total > MAX_ENTRIES_BYTES || h.entry_size % 8 != 0 {
        return None;
    }
    let start = h.entries_lba.checked_mul(lba_size)?;
    let mut crc = 0;
    let mut chunk = [0u8; 4096];
    let mut done = 0u64;
    while done < total {
        let n = (total - done).min(chunk.len() as u64) as usize;
        if !read(start.checked_add(done)?, &mut chunk[..n]) {
            return None;
        }
        crc = crc32(crc, &chunk[..n]);
        done += n as u64;
    }
    (crc == le32(&sector, 88)).then_some(h)
}

/// The GPT of a disk of `disk_size` bytes, as the kernel and blkid find it:
/// a protective (or hybrid) MBR, then the primary header, or the backup
/// header at the disk's last sector when the primary is damaged; each
/// with valid checksums. Also the sector size it was found with.
pub fn find_gpt(read: DiskRead<'_>, disk_size: u64) -> Option<(GptHeader, u64)> {
    let mut mbr = [0u8; 512];
    if !read(0, &mut mbr) || mbr[510] != 0x55 || mbr[511] != 0xAA {
        return None;
    }
    // One of the four MBR entries is of type 0xEE (GPT protective).
    if !(0..4).any(|i| mbr[446 + 16 * i + 4] == 0xEE) {
        return None;
    }
    for lba_size in [512u64, 4096] {
        if let Some(h) = valid_gpt_at(read, 1, lba_size) {
            return Some((h, lba_size));
        }
        let last = (disk_size / lba_size).checked_sub(1)?;
        if let Some(h) = valid_gpt_at(read, last, lba_size) {
            return Some((h, lba_size));
        }
    }
    None
}

/// The PARTUUID and PARTLABEL (GPT), or the PARTUUID (MBR), of partition
/// `number` (1-based) of a disk of `disk_size` bytes.
pub fn partition_ids(
    read: DiskRead<'_>,
    disk_size: u64,
    number: u32,
) -> Option<(UuidText, Option<Label>)> {
    if number == 0 {
        return None;
    }
    if let Some((h, lba_size)) = find_gpt(read, disk_size) {
        if number > h.entry_count {
            return None;
        }
        let off = h
            .entries_lba
            .checked_mul(lba_size)?
            .checked_add(u64::from(number - 1).checked_mul(u64::from(h.entry_size))?)?;
        let mut entry = [0u8; 128];
        if !read(off, &mut entry) {
            return None;
        }
        return parse_gpt_entry(&entry).map(|p| (p.uuid, Some(p.label)));
    }
    let mut mbr = [0u8; 512];
    if !read(0, &mut mbr) {
        return None;
    }
    mbr_partuuid(&mbr, number).map(|u| (u, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn guid_byte_order() {
        let raw: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            uuid_text(&raw).as_str(),
            "00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
        assert_eq!(
            guid_text(&raw).as_str(),
            "03020100-0504-0706-0809-0a0b0c0d0e0f"
        );
    }

    #[test]
    fn ext4_superblock() {
        let mut d = vec![0u8; 4096];
        d[1024 + 0x38..1024 + 0x3a].copy_from_slice(&0xEF53u16.to_le_bytes());
        d[1024 + 0x68..1024 + 0x78].copy_from_slice(&[0xab; 16]);
        d[1024 + 0x78..1024 + 0x7e].copy_from_slice(b"osroot");
        let i = probe_fs(&d).unwrap();
        assert_eq!(i.fstype, FsType::Ext4);
        assert_eq!(i.label.as_slice(), b"osroot");
        assert!(i.uuid.starts_with("abababab-abab"));
    }

    #[test]
    fn garbage_is_nothing() {
        assert_eq!(probe_fs(&[0u8; PROBE_LEN]), None);
        assert_eq!(probe_fs(&[0xffu8; 100]), None);
        assert_eq!(probe_fs(&[]), None);
        assert_eq!(parse_gpt_header(&[0u8; 512]), None);
        assert_eq!(parse_gpt_entry(&[0u8; 128]), None);
    }

    #[test]
    fn gpt_entry_name() {
        let mut e = [0u8; 128];
        e[0] = 1;
        e[16..32].copy_from_slice(&[0x11; 16]);
        for (i, c) in "root-a".encode_utf16().enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&c.to_le_bytes());
        }
        let p = parse_gpt_entry(&e).unwrap();
        assert_eq!(p.label.as_slice(), b"root-a");
        assert_eq!(p.uuid.as_str(), "11111111-1111-1111-1111-111111111111");
    }

    #[test]
    fn mbr_partuuid_format() {
        let mut s = [0u8; 512];
        s[440..444].copy_from_slice(&0x1234abcdu32.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        assert_eq!(mbr_partuuid(&s, 2).unwrap().as_str(), "1234abcd-02");
    }
}
