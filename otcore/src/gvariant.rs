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

/// The elements of a serialised array whose elements have a variable size
/// (`aay`, `as`, `a{sv}`, ...): each starts at its type's alignment after
/// the previous one's end; a table of end offsets closes the array. The
/// table is checked when the array is opened, so iterating cannot fail.
#[derive(Debug, Clone)]
pub struct VarArray<'a> {
    data: &'a [u8],
    /// Where the offset table begins (the end of the last element).
    table: usize,
    /// Size of each framing offset.
    z: usize,
    align: usize,
    /// Next element's index, and where the previous element ended.
    next: usize,
    prev_end: usize,
}

impl<'a> VarArray<'a> {
    /// Open `data` as an array of elements aligned to `align` (1, 2, 4 or
    /// 8). `None` if its framing is inconsistent.
    pub fn new(data: &'a [u8], align: usize) -> Option<Self> {
        let z = offset_size_of(data.len());
        let table = if z == 0 {
            0
        } else {
            read_offset(&data[data.len() - z..], z)
        };
        if table > data.len() || (data.len() - table) % z.max(1) != 0 {
            return None;
        }
        let a = VarArray {
            data,
            table,
            z,
            align,
            next: 0,
            prev_end: 0,
        };
        // Every end within the elements' area, none before its start.
        let mut prev = 0;
        for i in 0..a.len() {
            let end = a.end(i);
            if end > table || align_up(prev, align) > end {
                return None;
            }
            prev = end;
        }
        Some(a)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        (self.data.len() - self.table) / self.z.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn end(&self, i: usize) -> usize {
        read_offset(&self.data[self.table + i * self.z..], self.z)
    }
}

impl<'a> Iterator for VarArray<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next >= self.len() {
            return None;
        }
        let start = align_up(self.prev_end, self.align);
        let end = self.end(self.next);
        self.next += 1;
        self.prev_end = end;
        self.data.get(start..end)
    }
}

fn align_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// One member of a tuple's type, for [`tuple_members`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// A fixed-size type (`t`: 8 bytes, aligned to 8).
    Fixed { size: usize, align: usize },
    /// A variable-size type (`s`, `ay`, `a{sv}`, ...) and its alignment.
    Variable { align: usize },
}

/// Split a serialised tuple into its members, given their types. Every
/// variable-size member but the last has its end offset in the framing
/// table at the tuple's end (the first member's offset last). `None` if
/// the framing is inconsistent.
pub fn tuple_members<'a, const N: usize>(
    data: &'a [u8],
    shape: &[Member; N],
) -> Option<[&'a [u8]; N]> {
    let z = offset_size_of(data.len());
    let framed = shape
        .iter()
        .take(N.saturating_sub(1))
        .filter(|m| matches!(m, Member::Variable { .. }))
        .count();
    let body_end = data.len().checked_sub(framed * z)?;
    let mut out = [&data[..0]; N];
    let mut pos = 0;
    let mut offsets = 0;
    for (i, m) in shape.iter().enumerate() {
        let (start, end) = match *m {
            Member::Fixed { size, align } => {
                let start = align_up(pos, align);
                (start, start + size)
            }
            Member::Variable { align } if i + 1 == N => (align_up(pos, align), body_end),
            Member::Variable { align } => {
                offsets += 1;
                let at = data.len() - offsets * z;
                (align_up(pos, align), read_offset(&data[at..], z))
            }
        };
        if start > end || end > body_end {
            return None;
        }
        out[i] = &data[start..end];
        pos = end;
    }
    Some(out)
}

/// Look `key` up in a serialised `a{sv}` and return its value's bytes and
/// type string. Malformed input gives `None`, never a panic.
pub fn lookup<'a>(dict: &'a [u8], key: &str) -> Option<(&'a [u8], &'a [u8])> {
    // Dict entries have the variant's alignment (8).
    for entry in VarArray::new(dict, 8)? {
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
        let variant = entry.get(align_up(key_end, 8)..entry.len() - ez)?;
        let nul = variant.iter().rposition(|&b| b == 0)?;
        return Some((&variant[..nul], &variant[nul + 1..]));
    }
    None
}

/// The value of `key` if it has the type `ty` (such as `b"ay"`).
pub fn lookup_typed<'a>(dict: &'a [u8], key: &str, ty: &[u8]) -> Option<&'a [u8]> {
    lookup(dict, key).and_then(|(v, t)| (t == ty).then_some(v))
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

    fn hex(s: &str) -> std::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The byte strings below are GLib 2.74's serialisations (python3-gi:
    /// `GLib.Variant(type, value).get_data_as_bytes()`).
    #[test]
    fn arrays_of_byte_strings_as_glib_writes_them() {
        // aay [b'ab', b'', b'cde']
        let aay = hex("6162636465020205");
        let items: std::vec::Vec<&[u8]> = VarArray::new(&aay, 1).unwrap().collect();
        assert_eq!(items, [&b"ab"[..], b"", b"cde"]);
        assert_eq!(VarArray::new(&aay, 1).unwrap().len(), 3);
        assert!(VarArray::new(b"", 1).unwrap().is_empty());
        // An end offset past the table, or going backwards, is refused.
        assert!(VarArray::new(&hex("6162636465020605"), 1).is_none());
        assert!(VarArray::new(&hex("6162636465030205"), 1).is_none());
        assert!(VarArray::new(&hex("61626364650209"), 1).is_none());
        for n in 0..aay.len() {
            let _ = VarArray::new(&aay[..n], 1).map(|a| a.count());
        }
    }

    #[test]
    fn tuples_as_glib_writes_them() {
        use Member::*;
        let t = Fixed { size: 8, align: 8 };
        let v = Variable { align: 1 };
        // (ayst) (b'xy', 'hi', 7): two framing offsets, a fixed member last.
        let ayst = hex("787968690000000007000000000000000502");
        let [ay, s, n] = tuple_members(&ayst, &[v, v, t]).unwrap();
        assert_eq!((ay, s), (&b"xy"[..], &b"hi\0"[..]));
        assert_eq!(n, 7u64.to_le_bytes());
        // (sts) ('a', 258, 'bc'): a variable member last, no offset for it.
        let sts = hex("6100000000000000020100000000000062630002");
        let [a, n, bc] = tuple_members(&sts, &[v, t, v]).unwrap();
        assert_eq!((a, bc), (&b"a\0"[..], &b"bc\0"[..]));
        assert_eq!(n, 258u64.to_le_bytes());
        // Cut short, or an offset beyond the data: refused, never a panic.
        for n in 0..ayst.len() {
            let _ = tuple_members(&ayst[..n], &[v, v, t]);
        }
        assert!(tuple_members(&hex("787968690000000007000000000000000519"), &[v, v, t]).is_none());
    }

    #[test]
    fn typed_lookups() {
        // {'d': <[byte 1, 2, 3]>, 's': <[b'\xff\xff\xff', b'q']>}
        let d = hex("640000000000000001020300617902007300000000000000ffffff71030400616179020f23");
        assert_eq!(lookup_typed(&d, "d", b"ay"), Some(&[1u8, 2, 3][..]));
        assert_eq!(lookup_typed(&d, "d", b"s"), None);
        assert_eq!(lookup_typed(&d, "x", b"ay"), None);
        let sigs: std::vec::Vec<&[u8]> = VarArray::new(lookup_typed(&d, "s", b"aay").unwrap(), 1)
            .unwrap()
            .collect();
        assert_eq!(sigs, [&[0xffu8; 3][..], b"q"]);
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
