//! Serialising the `a{sv}` dictionary of `/run/ostree-booted` in GVariant's
//! normal form, into a fixed buffer.
//!
//! GVariant layout rules used here (GVariant specification, "Serialisation"):
//! - an array of variable-size elements stores the elements, each aligned to
//!   the element type's alignment, then a table of their end offsets;
//! - a dict entry `{sv}` stores the key string with its NUL, pads to 8 (the
//!   variant's alignment), stores the variant, then the key's end offset;
//! - a variant stores its value, a NUL byte, then the value's type string;
//! - framing offsets are 1, 2, 4 or 8 bytes: the smallest size in which the
//!   container's total size (body plus offsets) fits.
//!
//! An empty dictionary serialises to zero bytes, which is why the empty
//! `/run/ostree-booted` of older ostree releases parses as a valid `a{sv}`.

#![forbid(unsafe_code)]

/// Largest serialised dictionary; ours is about 150 bytes.
pub const MAX_LEN: usize = 1024;
const MAX_ENTRIES: usize = 8;

/// A value this tool stores in `/run/ostree-booted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// `b`
    Bool(bool),
    /// `(tt)`
    U64Pair(u64, u64),
    /// `s` (must not contain NUL)
    Str(&'a [u8]),
}

/// The serialised dictionary did not fit in [`MAX_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Builds an `a{sv}` into a fixed buffer.
pub struct VarDict {
    buf: heapless::Vec<u8, MAX_LEN>,
    ends: heapless::Vec<usize, MAX_ENTRIES>,
}

fn offset_size(body: usize, count: usize) -> usize {
    // In u64: on 32-bit targets the 4-byte bound is usize::MAX itself (and
    // the sums could wrap).
    let (body, count) = (body as u64, count as u64);
    if body + count == 0 {
        0
    } else if body + count <= 0xff {
        1
    } else if body + 2 * count <= 0xffff {
        2
    } else if body + 4 * count <= 0xffff_ffff {
        4
    } else {
        8
    }
}

impl VarDict {
    pub fn new() -> Self {
        VarDict {
            buf: heapless::Vec::new(),
            ends: heapless::Vec::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        self.buf.extend_from_slice(bytes).map_err(|_| Overflow)
    }

    fn align(&mut self, to: usize) -> Result<(), Overflow> {
        while self.buf.len() % to != 0 {
            self.put(&[0])?;
        }
        Ok(())
    }

    fn put_offset(&mut self, value: usize, size: usize) -> Result<(), Overflow> {
        let le = (value as u64).to_le_bytes();
        self.put(&le[..size])
    }

    /// Append `key: value`. Keys are written in the order given.
    pub fn insert(&mut self, key: &str, value: Value<'_>) -> Result<(), Overflow> {
        // Dict entries have the variant's alignment (8).
        self.align(8)?;
        let entry_start = self.buf.len();
        self.put(key.as_bytes())?;
        self.put(&[0])?;
        let key_end = self.buf.len() - entry_start;
        self.align(8)?;
        match value {
            Value::Bool(b) => self.put(&[b as u8, 0, b'b'])?,
            Value::U64Pair(a, b) => {
                self.put(&a.to_le_bytes())?;
                self.put(&b.to_le_bytes())?;
                self.put(b"\0(tt)")?;
            }
            Value::Str(s) => {
                if s.contains(&0) {
                    return Err(Overflow);
                }
                self.put(s)?;
                self.put(b"\0\0s")?;
            }
        }
        // The key is the only non-last variable-size member: one offset.
        let body = self.buf.len() - entry_start;
        let size = offset_size(body, 1);
        self.put_offset(key_end, size)?;
        self.ends.push(self.buf.len()).map_err(|_| Overflow)
    }

    /// Finish the array: append the element end offsets; returns the bytes.
    pub fn finish(&mut self) -> Result<&[u8], Overflow> {
        let body = self.buf.len();
        let size = offset_size(body, self.ends.len());
        let ends = self.ends.clone();
        for end in ends {
            self.put_offset(end, size)?;
        }
        Ok(&self.buf)
    }
}

impl Default for VarDict {
    fn default() -> Self {
        Self::new()
    }
}

fn read_offset(b: &[u8], size: usize) -> usize {
    let mut v = [0u8; 8];
    v[..size].copy_from_slice(&b[..size]);
    u64::from_le_bytes(v) as usize
}

/// Size of the framing offsets of a container of `len` bytes (the inverse
/// of [`offset_size`], as GVariant readers compute it).
fn offset_size_of(len: usize) -> usize {
    match len {
        0 => 0,
        1..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// Look `key` up in a serialised `a{sv}` and return its value's bytes and
/// type string. Malformed input gives `None`, never a panic.
pub fn lookup<'a>(dict: &'a [u8], key: &str) -> Option<(&'a [u8], &'a [u8])> {
    let z = offset_size_of(dict.len());
    if z == 0 || dict.len() < z {
        return None;
    }
    let table = read_offset(&dict[dict.len() - z..], z);
    if table > dict.len() || (dict.len() - table) % z != 0 {
        return None;
    }
    let mut start = 0usize;
    for i in 0..(dict.len() - table) / z {
        let end = read_offset(&dict[table + i * z..], z);
        if end > table || start > end {
            return None;
        }
        let entry = &dict[start..end];
        start = end.div_ceil(8) * 8;
        let ez = offset_size_of(entry.len());
        if entry.len() < ez {
            return None;
        }
        let key_end = read_offset(&entry[entry.len() - ez..], ez);
        if key_end == 0 || key_end > entry.len() - ez {
            return None;
        }
        if &entry[..key_end - 1] != key.as_bytes() {
            continue;
        }
        let value_start = key_end.div_ceil(8) * 8;
        let variant = entry.get(value_start..entry.len() - ez)?;
        let nul = variant.iter().rposition(|&b| b == 0)?;
        return Some((&variant[..nul], &variant[nul + 1..]));
    }
    None
}

/// The `(tt)` value of `key` (such as `backing-root-device-inode`).
pub fn lookup_u64_pair(dict: &[u8], key: &str) -> Option<(u64, u64)> {
    match lookup(dict, key)? {
        (v, b"(tt)") if v.len() == 16 => {
            let a = u64::from_le_bytes(v[..8].try_into().ok()?);
            let b = u64::from_le_bytes(v[8..].try_into().ok()?);
            Some((a, b))
        }
        _ => None,
    }
}

/// The `b` value of `key`.
pub fn lookup_bool(dict: &[u8], key: &str) -> Option<bool> {
    match lookup(dict, key)? {
        ([b], b"b") => Some(*b != 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_bool_matches_hand_derived_bytes() {
        let mut d = VarDict::new();
        d.insert("sysroot-ro", Value::Bool(true)).unwrap();
        let mut want = b"sysroot-ro\0".to_vec();
        want.extend_from_slice(&[0; 5]);
        want.extend_from_slice(&[1, 0, b'b', 0x0b, 0x14]);
        assert_eq!(d.finish().unwrap(), &want[..]);
    }

    #[test]
    fn reads_back_what_glib_wrote() {
        let glib: &[u8] = include_bytes!("../testdata/ostree-booted.gvariant");
        assert_eq!(
            lookup_u64_pair(glib, "backing-root-device-inode"),
            Some((66306, 1234))
        );
        assert_eq!(lookup_bool(glib, "sysroot-ro"), Some(false));
        assert_eq!(lookup_bool(glib, "missing"), None);
        assert_eq!(lookup(b"", "x"), None);
        for n in 0..glib.len() {
            let _ = lookup(&glib[..n], "sysroot-ro");
        }
        let mut d = VarDict::new();
        d.insert("transient-etc", Value::Str(&[b'x'; 300])).unwrap();
        d.insert("sysroot-ro", Value::Bool(true)).unwrap();
        assert_eq!(lookup_bool(d.finish().unwrap(), "sysroot-ro"), Some(true));
    }

    #[test]
    fn empty_dict_is_empty() {
        assert!(VarDict::new().finish().unwrap().is_empty());
    }

    /// Bytes produced by GLib 2.74 for
    /// `{'backing-root-device-inode': <(uint64 66306, uint64 1234)>, 'sysroot-ro': <false>}`
    /// (python3-gi: `GLib.Variant('a{sv}', {...}).get_data_as_bytes()`).
    #[test]
    fn matches_glib_for_our_keys() {
        let mut d = VarDict::new();
        d.insert("backing-root-device-inode", Value::U64Pair(66306, 1234))
            .unwrap();
        d.insert("sysroot-ro", Value::Bool(false)).unwrap();
        let got = d.finish().unwrap();
        let want: &[u8] = include_bytes!("../testdata/ostree-booted.gvariant");
        assert_eq!(got, want);
    }

    #[test]
    fn large_dict_uses_wider_offsets() {
        let mut d = VarDict::new();
        let long = [b'x'; 300];
        d.insert("transient-etc", Value::Str(&long)).unwrap();
        let out = d.finish().unwrap();
        // 2-byte offsets: entry ends with a 2-byte key offset, array with a 2-byte end.
        let n = out.len();
        assert_eq!(u16::from_le_bytes([out[n - 2], out[n - 1]]) as usize, n - 2);
    }
}
