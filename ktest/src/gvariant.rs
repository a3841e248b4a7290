//! A tiny reader for the GVariant `a{sv}` of `/run/ostree-booted`.
//!
//! ktest checks what `ostree-prepare-root` wrote independently of the writer's
//! code, so this is a second implementation of the serialisation rules
//! (GVariant specification, "Serialisation"), just enough for `b`, `s` and
//! `(tt)` values:
//! - a container's framing offsets are 0, 1, 2, 4 or 8 bytes wide, the
//!   smallest width in which the container's total size fits;
//! - an array of variable-size elements ends with one end offset per element;
//! - a dict entry `{sv}` is the key (with its NUL), padding to 8, the variant,
//!   then one offset: the key's end;
//! - a variant is its value, a NUL byte, then its type string.

/// A value found in the dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    U64Pair(u64, u64),
    Str(String),
    /// Any other type, kept as its type string.
    Other(String),
}

fn offset_width(container_len: usize) -> usize {
    match container_len {
        0 => 0,
        1..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

fn read_offset(bytes: &[u8], at: usize, width: usize) -> Result<usize, String> {
    let raw = bytes
        .get(at..at + width)
        .ok_or_else(|| format!("framing offset at {at} out of bounds"))?;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(raw);
    Ok(u64::from_le_bytes(le) as usize)
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Parse a serialised `a{sv}`; entries in stored order.
pub fn parse_asv(bytes: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let w = offset_width(bytes.len());
    if w == 0 {
        return Ok(Vec::new()); // the empty array
    }
    let table = read_offset(bytes, bytes.len() - w, w)?;
    if table > bytes.len() || (bytes.len() - table) % w != 0 {
        return Err(format!(
            "bad offset table start {table} for {} bytes",
            bytes.len()
        ));
    }
    let count = (bytes.len() - table) / w;
    let mut out = Vec::with_capacity(count);
    let mut start = 0;
    for i in 0..count {
        let end = read_offset(bytes, table + i * w, w)?;
        if start > end || end > table {
            return Err(format!("entry {i} spans {start}..{end}, past {table}"));
        }
        out.push(parse_entry(&bytes[start..end])?);
        start = align8(end);
    }
    Ok(out)
}

fn parse_entry(e: &[u8]) -> Result<(String, Value), String> {
    let w = offset_width(e.len());
    if w == 0 || e.len() < w {
        return Err("empty dict entry".into());
    }
    let key_end = read_offset(e, e.len() - w, w)?;
    if key_end == 0 || key_end > e.len() - w || e[key_end - 1] != 0 {
        return Err(format!("bad key end {key_end}"));
    }
    let key = String::from_utf8_lossy(&e[..key_end - 1]).into_owned();
    let var_start = align8(key_end);
    let variant = e
        .get(var_start..e.len() - w)
        .ok_or_else(|| format!("variant of {key} out of bounds"))?;
    let nul = variant
        .iter()
        .rposition(|&b| b == 0)
        .ok_or_else(|| format!("variant of {key} has no type"))?;
    let (value, ty) = (&variant[..nul], &variant[nul + 1..]);
    let value = match ty {
        b"b" if value.len() == 1 => Value::Bool(value[0] != 0),
        b"(tt)" if value.len() == 16 => Value::U64Pair(
            u64::from_le_bytes(value[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(value[8..].try_into().unwrap_or_default()),
        ),
        b"s" if value.last() == Some(&0) => {
            Value::Str(String::from_utf8_lossy(&value[..value.len() - 1]).into_owned())
        }
        // A bytestring (`ay` with its NUL), as GLib's g_variant_new_bytestring.
        b"ay" if value.last() == Some(&0) => {
            Value::Str(String::from_utf8_lossy(&value[..value.len() - 1]).into_owned())
        }
        _ => Value::Other(String::from_utf8_lossy(ty).into_owned()),
    };
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_an_empty_dict() {
        assert_eq!(parse_asv(b"").unwrap(), vec![]);
    }

    /// Bytes GLib 2.74 produced for
    /// `{'backing-root-device-inode': <(uint64 66306, uint64 1234)>, 'sysroot-ro': <false>}`.
    #[test]
    fn reads_glib_bytes() {
        let bytes = include_bytes!("../../otcore/testdata/ostree-booted.gvariant");
        assert_eq!(
            parse_asv(bytes).unwrap(),
            vec![
                (
                    "backing-root-device-inode".into(),
                    Value::U64Pair(66306, 1234)
                ),
                ("sysroot-ro".into(), Value::Bool(false)),
            ]
        );
    }

    #[test]
    fn single_bool() {
        let mut b = b"sysroot-ro\0".to_vec();
        b.extend_from_slice(&[0; 5]);
        b.extend_from_slice(&[1, 0, b'b', 0x0b, 0x14]);
        assert_eq!(
            parse_asv(&b).unwrap(),
            vec![("sysroot-ro".into(), Value::Bool(true))]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"\xff"[..],
            b"abc",
            b"\x00\x00\x00\x09",
            b"x\0\0\0\0\0\0\0\x01\x00b\x01\x10",
        ] {
            let _ = parse_asv(bad);
        }
        assert!(parse_asv(b"\xff").is_err());
    }
}
