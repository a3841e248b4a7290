//! `[composefs] enabled = signed`: the deployment's commit must carry an
//! Ed25519 signature by one of the initramfs's keys, and the composefs image
//! must have the fs-verity digest that the signed commit names.
//!
//! What is signed is the raw `.commit` object; the signatures are its
//! detached metadata (`.commitmeta`, an `a{sv}`) under
//! `ostree.sign.ed25519`, an `aay` of 64-byte signatures, any of which may
//! match any key. The image digest is `ostree.composefs.digest.v0` (`ay`,
//! 32 bytes) in the commit's own metadata. A commit that bootc made when it
//! imported a container has no detached metadata; its parent, the base
//! commit it was built from, is checked instead, and the digest is the base
//! commit's. The same rules as ostree's `ostree-prepare-root`.
//!
//! Pure parsing first ([`parse_keys`], [`Commit`], [`signatures`],
//! [`verify`]); then the thin part that reads the repository
//! ([`verify_commit`]) and measures the image ([`check_image`]).

use core::fmt;

use otcore::gvariant::{self, Member, VarArray};
use otcore::path::Lossy;
use otcore::sys::{self, AsFd, Errno, OFlags};

/// Where the public keys are, unless `[composefs] keypath` says otherwise.
pub const DEFAULT_KEYPATH: &[u8] = b"/etc/ostree/initramfs-root-binding.key";
/// The detached metadata key of the signatures.
pub const SIGNATURE_KEY: &str = "ostree.sign.ed25519";
/// The commit metadata key of the composefs image's fs-verity digest.
pub const DIGEST_KEY: &str = "ostree.composefs.digest.v0";
/// The commit metadata key that marks a commit bootc made from a container.
pub const IMAGE_CONFIG_KEY: &str = "ostree.container.image-config";

pub const KEY_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;
pub const DIGEST_LEN: usize = 32;
/// Keys accepted from one key file (more is an error, never a truncation).
pub const MAX_KEYS: usize = 16;
/// Largest key file read: 16 keys of 44 characters, CRLF and blank lines.
pub const KEYFILE_MAX: usize = 4096;

/// A raw Ed25519 public key.
pub type Key = [u8; KEY_LEN];
/// The keys of a key file, in their order.
pub type Keys = heapless::Vec<Key, MAX_KEYS>;
/// A commit checksum: SHA-256, 64 lowercase hex digits.
pub type Checksum = [u8; 64];

/// Why the public key file is of no use: its path, and what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyError<'a> {
    pub path: &'a [u8],
    pub problem: KeyFileError,
}

/// What is wrong with a key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileError {
    /// It cannot be read.
    Read(Errno),
    /// A line (1-based) is bad.
    Line { line: u32, what: KeyLineError },
    /// More than [`MAX_KEYS`] keys.
    TooMany,
    /// No key.
    NoKeys,
}

/// Why signed composefs cannot go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedError {
    /// The deployment's name does not start with a commit checksum.
    BadChecksum,
    /// A repository object cannot be opened or read.
    Repo {
        op: &'static str,
        object: Object,
        errno: Errno,
    },
    /// A commit object is not a valid `(a{sv}aya(say)sstayay)`.
    MalformedCommit(Object),
    /// Detached metadata that is not a valid `a{sv}` of `aay` signatures.
    MalformedCommitmeta(Object),
    /// Neither the commit nor (for a bootc commit) its base has detached
    /// metadata.
    NoCommitmeta {
        commit: Checksum,
        base: Option<Checksum>,
    },
    /// The detached metadata has no `ostree.sign.ed25519` of type `aay`.
    NoSignatures(Object),
    /// A signature is not 64 bytes (0-based index).
    SignatureLength { index: usize, len: usize },
    /// No signature matches any key.
    NoValidSignature { signatures: usize, keys: usize },
    /// The signed commit has no `ostree.composefs.digest.v0` of type `ay`.
    NoDigest(Checksum),
    /// The digest is not 32 bytes.
    DigestLength { commit: Checksum, len: usize },
    /// The image has no fs-verity (or its filesystem has none).
    ImageNoVerity { errno: Errno },
    /// Measuring the image failed otherwise.
    ImageMeasure { errno: Errno },
    /// The image's fs-verity digest is not SHA-256.
    ImageAlgorithm { algorithm: u16, len: usize },
    /// The image is not the one the signed commit names.
    DigestMismatch {
        expected: [u8; DIGEST_LEN],
        actual: [u8; DIGEST_LEN],
    },
}

/// What is wrong with a line of the key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLineError {
    /// Not base64 (the standard alphabet, `=` padding to 4 characters).
    NotBase64,
    /// Decodes to this many bytes, not 32.
    Length(usize),
}

/// A repository object: `objects/XX/REST.EXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    pub checksum: Checksum,
    pub ext: &'static str,
}

impl Object {
    fn commit(checksum: &Checksum) -> Object {
        Object {
            checksum: *checksum,
            ext: "commit",
        }
    }

    fn commitmeta(checksum: &Checksum) -> Object {
        Object {
            checksum: *checksum,
            ext: "commitmeta",
        }
    }

    /// The path relative to the repository, into `buf`.
    fn path<'a>(&self, buf: &'a mut [u8; 96]) -> &'a [u8] {
        let c = &self.checksum;
        let parts: [&[u8]; 6] = [
            b"objects/",
            &c[..2],
            b"/",
            &c[2..],
            b".",
            self.ext.as_bytes(),
        ];
        let mut n = 0;
        for p in parts {
            buf[n..n + p.len()].copy_from_slice(p);
            n += p.len();
        }
        &buf[..n]
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0; 96];
        // Only hex digits and the extension: always UTF-8.
        f.write_str(core::str::from_utf8(self.path(&mut buf)).unwrap_or("?"))
    }
}

/// Lowercase hex of `bytes`, as a `Display`.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

fn checksum_str(c: &Checksum) -> &str {
    core::str::from_utf8(c).unwrap_or("?")
}

impl fmt::Display for KeyError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = Lossy(self.path);
        match self.problem {
            KeyFileError::Read(errno) => {
                write!(f, "reading the public key file {path}: {errno}")
            }
            KeyFileError::Line { line, what } => match what {
                KeyLineError::NotBase64 => write!(
                    f,
                    "public key file {path}: line {line} is not base64 (one key per line)"
                ),
                KeyLineError::Length(n) => write!(
                    f,
                    "public key file {path}: line {line} decodes to {n} bytes; an Ed25519 public key is {KEY_LEN}"
                ),
            },
            KeyFileError::TooMany => {
                write!(f, "public key file {path}: more than {MAX_KEYS} keys")
            }
            KeyFileError::NoKeys => write!(f, "public key file {path}: no public keys found"),
        }
    }
}

impl fmt::Display for SignedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SignedError::*;
        match self {
            BadChecksum => f.write_str(
                "signed composefs: the deployment's name does not start with a commit checksum (64 hex digits)",
            ),
            Repo { op, object, errno } => write!(f, "{op} ostree/repo/{object}: {errno}"),
            MalformedCommit(o) => write!(f, "ostree/repo/{o}: not a valid commit object"),
            MalformedCommitmeta(o) => write!(
                f,
                "ostree/repo/{o}: not valid detached metadata (a{{sv}} with {SIGNATURE_KEY} of type aay)"
            ),
            NoCommitmeta { commit, base } => {
                write!(
                    f,
                    "signed composefs: commit {} has no detached metadata (.commitmeta), so no signature",
                    checksum_str(commit)
                )?;
                match base {
                    Some(b) => write!(
                        f,
                        "; nor has its bootc base commit {} (or that commit is missing)",
                        checksum_str(b)
                    ),
                    None => Ok(()),
                }
            }
            NoSignatures(o) => write!(
                f,
                "signed composefs: ostree/repo/{o} has no {SIGNATURE_KEY} signatures"
            ),
            SignatureLength { index, len } => write!(
                f,
                "signed composefs: signature {index} is {len} bytes; an Ed25519 signature is {SIGNATURE_LEN}"
            ),
            NoValidSignature { signatures, keys } => write!(
                f,
                "signed composefs: none of the commit's {signatures} signatures matches any of the {keys} public keys"
            ),
            NoDigest(c) => write!(
                f,
                "signed composefs: commit {} has no {DIGEST_KEY} (byte array) in its metadata",
                checksum_str(c)
            ),
            DigestLength { commit, len } => write!(
                f,
                "signed composefs: commit {}'s {DIGEST_KEY} is {len} bytes, not {DIGEST_LEN}",
                checksum_str(commit)
            ),
            ImageNoVerity { errno } => write!(
                f,
                "composefs image has no fs-verity digest (fs-verity not enabled on it, or not supported by its filesystem or kernel): {errno}"
            ),
            ImageMeasure { errno } => {
                write!(f, "measuring the composefs image's fs-verity digest: {errno}")
            }
            ImageAlgorithm { algorithm, len } => write!(
                f,
                "composefs image's fs-verity digest is not SHA-256 (algorithm {algorithm}, {len} bytes)"
            ),
            DigestMismatch { expected, actual } => write!(
                f,
                "composefs image's fs-verity digest is {}, the signed commit expects {}",
                Hex(actual),
                Hex(expected)
            ),
        }
    }
}

// ---- base64 ----------------------------------------------------------------

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decode standard base64 (RFC 4648: `A-Za-z0-9+/`, padded with `=` to a
/// multiple of 4 characters) into `out`, skipping ASCII whitespace anywhere.
/// Returns the decoded length, which may exceed `out` (what does not fit is
/// not written); `None` if the text is not base64.
pub fn decode_base64(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut acc, mut bits, mut symbols, mut pad, mut len) = (0u32, 0u32, 0usize, 0u32, 0usize);
    for &c in text.iter().filter(|c| !c.is_ascii_whitespace()) {
        symbols += 1;
        if c == b'=' {
            pad += 1;
            continue;
        }
        if pad > 0 {
            return None;
        }
        acc = ((acc << 6) | u32::from(sextet(c)?)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if let Some(slot) = out.get_mut(len) {
                *slot = (acc >> bits) as u8;
            }
            len += 1;
        }
    }
    // Whole groups of four, the last with at most `==`: then its data
    // symbols (2, 3 or 4) make whole bytes. One data symbol and `===`
    // would not.
    (symbols % 4 == 0 && pad <= 2).then_some(len)
}

// ---- key file --------------------------------------------------------------

/// Parse a key file: one base64 Ed25519 public key (32 bytes) per line, as
/// ostree's `ostree-prepare-root` reads it. Lines of only whitespace are
/// skipped. Stricter than upstream (whose GLib decoder skips any stray
/// character, and which checks a key's length only when it gets to it): a
/// line that is not base64, or not 32 bytes, is an error here.
pub fn parse_keys(text: &[u8]) -> Result<Keys, KeyFileError> {
    let mut keys = Keys::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let bad = |what| KeyFileError::Line {
            line: line_no,
            what,
        };
        let mut key = [0u8; KEY_LEN];
        match decode_base64(line, &mut key) {
            None => return Err(bad(KeyLineError::NotBase64)),
            Some(KEY_LEN) => keys.push(key).map_err(|_| KeyFileError::TooMany)?,
            Some(n) => return Err(bad(KeyLineError::Length(n))),
        }
    }
    if keys.is_empty() {
        return Err(KeyFileError::NoKeys);
    }
    Ok(keys)
}

/// Read and parse the key file at `path`.
pub fn load_keys(path: &[u8]) -> Result<Keys, KeyError<'_>> {
    let mut buf = [0u8; KEYFILE_MAX];
    sys::read_file(path, &mut buf)
        .map_err(KeyFileError::Read)
        .and_then(|n| parse_keys(&buf[..n]))
        .map_err(|problem| KeyError { path, problem })
}

// ---- commit and detached metadata -----------------------------------------

/// The members of a commit object, `(a{sv}aya(say)sstayay)`: metadata,
/// parent, related objects, subject, body, timestamp, root tree contents
/// and root tree metadata checksums.
const COMMIT_SHAPE: [Member; 8] = [
    Member::Variable { align: 8 },
    Member::Variable { align: 1 },
    Member::Variable { align: 1 },
    Member::Variable { align: 1 },
    Member::Variable { align: 1 },
    Member::Fixed { size: 8, align: 8 },
    Member::Variable { align: 1 },
    Member::Variable { align: 1 },
];

/// What a commit object says that matters here.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    /// The commit's metadata, an `a{sv}`.
    pub metadata: &'a [u8],
    /// The parent's checksum (raw; empty for none).
    pub parent: &'a [u8],
}

impl<'a> Commit<'a> {
    /// `None` if `bytes` is not a commit object.
    pub fn parse(bytes: &'a [u8]) -> Option<Commit<'a>> {
        let [metadata, parent, ..] = gvariant::tuple_members(bytes, &COMMIT_SHAPE)?;
        Some(Commit { metadata, parent })
    }

    /// `ostree.composefs.digest.v0`: `Ok(None)` when absent (or not an
    /// `ay`), `Err(len)` when not 32 bytes.
    pub fn composefs_digest(&self) -> Result<Option<[u8; DIGEST_LEN]>, usize> {
        match gvariant::lookup_typed(self.metadata, DIGEST_KEY, b"ay") {
            None => Ok(None),
            Some(d) => d.try_into().map(Some).map_err(|_| d.len()),
        }
    }

    /// For a commit bootc made from a container (its metadata has an
    /// `ostree.container.image-config` string), the base commit it was
    /// made from: its parent, as lowercase hex.
    pub fn bootc_base(&self) -> Option<Checksum> {
        gvariant::lookup_typed(self.metadata, IMAGE_CONFIG_KEY, b"s")?;
        let parent: &[u8; 32] = self.parent.try_into().ok()?;
        let mut hex = [0u8; 64];
        for (i, b) in parent.iter().enumerate() {
            hex[2 * i] = HEX_DIGITS[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX_DIGITS[usize::from(b & 15)];
        }
        Some(hex)
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Why [`signatures`] found none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitmetaError {
    /// Not an `a{sv}`, or its `aay` is malformed.
    Malformed,
    /// No `ostree.sign.ed25519` of type `aay`.
    NoSignatures,
}

/// The `ostree.sign.ed25519` signatures of detached metadata (an `a{sv}`),
/// of any length (checked by [`verify`]).
pub fn signatures(commitmeta: &[u8]) -> Result<VarArray<'_>, CommitmetaError> {
    // An empty a{sv} is zero bytes; anything else must be a dictionary.
    if !commitmeta.is_empty() && VarArray::new(commitmeta, 8).is_none() {
        return Err(CommitmetaError::Malformed);
    }
    let sigs = gvariant::lookup_typed(commitmeta, SIGNATURE_KEY, b"aay")
        .ok_or(CommitmetaError::NoSignatures)?;
    VarArray::new(sigs, 1).ok_or(CommitmetaError::Malformed)
}

/// One Ed25519 verification, strict on encodings (`ed25519-compact`:
/// canonical S, canonical points, no small-order public key).
fn ed25519_verify(key: &Key, signature: &[u8; SIGNATURE_LEN], message: &[u8]) -> bool {
    let key = ed25519_compact::PublicKey::new(*key);
    let signature = ed25519_compact::Signature::new(*signature);
    key.verify(message, &signature).is_ok()
}

/// Check `payload` against the signatures: `Ok(i)` when one of them is by
/// `keys[i]` (the first such key). Every signature must be 64 bytes. A key
/// that is not a valid curve point matches nothing (as with libsodium).
pub fn verify(
    payload: &[u8],
    signatures: &VarArray<'_>,
    keys: &[Key],
) -> Result<usize, SignedError> {
    for (index, s) in signatures.clone().enumerate() {
        if s.len() != SIGNATURE_LEN {
            return Err(SignedError::SignatureLength {
                index,
                len: s.len(),
            });
        }
    }
    for (k, key) in keys.iter().enumerate() {
        for s in signatures.clone() {
            if let Ok(s) = s.try_into() {
                if ed25519_verify(key, s, payload) {
                    return Ok(k);
                }
            }
        }
    }
    Err(SignedError::NoValidSignature {
        signatures: signatures.len(),
        keys: keys.len(),
    })
}

// ---- the repository and the image -----------------------------------------

/// What [`verify_commit`] established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The fs-verity digest the composefs image must have.
    pub digest: [u8; DIGEST_LEN],
    /// Which key (index in the key file) signed.
    pub key: usize,
    /// The bootc base commit whose signature and digest were used, when the
    /// deployment's own commit has no detached metadata.
    pub base: Option<Checksum>,
}

/// The commit checksum at the start of a deployment directory's name
/// (`CHECKSUM.SERIAL`), checked to be 64 lowercase hex digits.
pub fn deployment_checksum(name: &[u8]) -> Result<Checksum, SignedError> {
    let c = name.split(|&b| b == b'.').next().unwrap_or(b"");
    let c: Checksum = c.try_into().map_err(|_| SignedError::BadChecksum)?;
    if !c.iter().all(|b| HEX_DIGITS.contains(b)) {
        return Err(SignedError::BadChecksum);
    }
    Ok(c)
}

/// Map a repository object; `Ok(None)` if it does not exist.
fn map_object(
    repo: sys::BorrowedFd<'_>,
    object: Object,
) -> Result<Option<sys::Mapping>, SignedError> {
    let mut buf = [0; 96];
    let err = |op, errno| SignedError::Repo { op, object, errno };
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = match sys::open_beneath(repo, object.path(&mut buf), flags, 0) {
        Err(Errno::NOENT) => return Ok(None),
        r => r.map_err(|e| err("opening", e))?,
    };
    sys::map_fd(&fd).map(Some).map_err(|e| err("reading", e))
}

/// Check the signature of the deployment's commit `checksum` in the
/// repository `repo` (an open `ostree/repo` directory; no symlink inside it
/// is followed) against `keys`, and return the image digest it names.
pub fn verify_commit(
    repo: impl AsFd,
    checksum: &Checksum,
    keys: &[Key],
) -> Result<Verified, SignedError> {
    let repo = repo.as_fd();
    let main = map_object(repo, Object::commit(checksum))?.ok_or(SignedError::Repo {
        op: "opening",
        object: Object::commit(checksum),
        errno: Errno::NOENT,
    })?;
    let main_meta = map_object(repo, Object::commitmeta(checksum))?;
    let main_commit = Commit::parse(main.bytes())
        .ok_or(SignedError::MalformedCommit(Object::commit(checksum)))?;
    // Kept alive for as long as the bytes below are used.
    let (base_commit, base_meta);
    let (signed, meta, signed_sum, base) = match &main_meta {
        Some(m) => (main.bytes(), m, *checksum, None),
        None => {
            let base_sum = main_commit.bootc_base();
            let no_meta = SignedError::NoCommitmeta {
                commit: *checksum,
                base: base_sum,
            };
            let Some(b) = base_sum else {
                return Err(no_meta);
            };
            base_commit = map_object(repo, Object::commit(&b))?;
            let Some(bc) = &base_commit else {
                return Err(no_meta);
            };
            base_meta = map_object(repo, Object::commitmeta(&b))?;
            let Some(bm) = &base_meta else {
                return Err(no_meta);
            };
            (bc.bytes(), bm, b, Some(b))
        }
    };
    let meta_object = Object::commitmeta(&signed_sum);
    let sigs = signatures(meta.bytes()).map_err(|e| match e {
        CommitmetaError::Malformed => SignedError::MalformedCommitmeta(meta_object),
        CommitmetaError::NoSignatures => SignedError::NoSignatures(meta_object),
    })?;
    let key = verify(signed, &sigs, keys)?;
    let commit =
        Commit::parse(signed).ok_or(SignedError::MalformedCommit(Object::commit(&signed_sum)))?;
    let digest = match commit.composefs_digest() {
        Ok(Some(d)) => d,
        Ok(None) => return Err(SignedError::NoDigest(signed_sum)),
        Err(len) => {
            return Err(SignedError::DigestLength {
                commit: signed_sum,
                len,
            })
        }
    };
    Ok(Verified { digest, key, base })
}

/// The fs-verity digest of an open composefs image (SHA-256).
pub fn image_digest(image: impl AsFd) -> Result<[u8; DIGEST_LEN], SignedError> {
    let d = sys::measure_verity(image).map_err(|errno| match errno {
        Errno::NODATA | Errno::OPNOTSUPP | Errno::NOTTY => SignedError::ImageNoVerity { errno },
        errno => SignedError::ImageMeasure { errno },
    })?;
    let alg = SignedError::ImageAlgorithm {
        algorithm: d.algorithm,
        len: d.bytes().len(),
    };
    if d.algorithm != sys::FS_VERITY_HASH_ALG_SHA256 {
        return Err(alg);
    }
    d.bytes().try_into().map_err(|_| alg)
}

/// Check that the open composefs image is the one `expected` names.
pub fn check_image(image: impl AsFd, expected: &[u8; DIGEST_LEN]) -> Result<(), SignedError> {
    let actual = image_digest(image)?;
    if actual != *expected {
        return Err(SignedError::DigestMismatch {
            expected: *expected,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    const BASE: &[u8] = include_bytes!("../../tests/fixtures/signed/base.commit");
    const BASE_META: &[u8] = include_bytes!("../../tests/fixtures/signed/base.commitmeta");
    const DERIVED: &[u8] = include_bytes!("../../tests/fixtures/signed/derived.commit");
    const NODIGEST: &[u8] = include_bytes!("../../tests/fixtures/signed/nodigest.commit");
    const CHILD: &[u8] = include_bytes!("../../tests/fixtures/signed/child.commit");
    const NODIGEST_META: &[u8] = include_bytes!("../../tests/fixtures/signed/nodigest.commitmeta");
    const KEY1: &[u8] = include_bytes!("../../tests/fixtures/signed/key1.pub");
    const KEY2: &[u8] = include_bytes!("../../tests/fixtures/signed/key2.pub");
    const KEY3: &[u8] = include_bytes!("../../tests/fixtures/signed/key3.pub");
    const EXPECTED: &str = include_str!("../../tests/fixtures/signed/expected.txt");

    /// A value of expected.txt (`name value` lines).
    fn expected(name: &str) -> &'static str {
        EXPECTED
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap()
    }

    fn checksum(name: &str) -> Checksum {
        expected(name).as_bytes().try_into().unwrap()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn key(text: &[u8]) -> Key {
        parse_keys(text).unwrap()[0]
    }

    /// An `aay` as GVariant serialises it (1-byte offsets: small arrays).
    fn aay(items: &[&[u8]]) -> Vec<u8> {
        let mut out: Vec<u8> = items.concat();
        let mut end = 0;
        for i in items {
            end += i.len();
            out.push(end as u8);
        }
        assert!(out.len() < 256);
        out
    }

    fn b64(text: &str) -> Option<Vec<u8>> {
        let mut out = [0u8; 16];
        let n = decode_base64(text.as_bytes(), &mut out)?;
        Some(out[..n.min(16)].to_vec())
    }

    #[test]
    fn base64() {
        assert_eq!(b64("").unwrap(), b"");
        assert_eq!(b64("Zg==").unwrap(), b"f");
        assert_eq!(b64("Zm8=").unwrap(), b"fo");
        assert_eq!(b64("Zm9v").unwrap(), b"foo");
        assert_eq!(b64("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(b64(" Zm9v\tYm\rFy\r").unwrap(), b"foobar");
        assert_eq!(b64("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        // Missing or extra padding, data after padding, foreign alphabets.
        for bad in [
            "Zg", "Zg=", "Zm9", "Z===", "====", "Zg==Zg==", "Zg=a", "Zm9-", "Zm9_", "#Zm9v",
        ] {
            assert_eq!(b64(bad), None, "{bad}");
        }
        // The length is counted past the end of the output.
        let mut small = [0u8; 2];
        assert_eq!(decode_base64(b"Zm9vYmFy", &mut small), Some(6));
        assert_eq!(&small, b"fo");
    }

    #[test]
    fn key_files() {
        assert_eq!(parse_keys(KEY1).unwrap().len(), 1);
        // Several keys, blank lines, CRLF, no final newline.
        let mut text = Vec::new();
        text.extend_from_slice(b"\n  \r\n");
        text.extend_from_slice(KEY1.trim_ascii_end());
        text.extend_from_slice(b"\r\n\n\t");
        text.extend_from_slice(KEY2.trim_ascii_end());
        let keys = parse_keys(&text).unwrap();
        assert_eq!(&keys[..], [key(KEY1), key(KEY2)]);
        assert_ne!(key(KEY1), key(KEY2));

        let line = |line, what| Err(KeyFileError::Line { line, what });
        assert_eq!(parse_keys(b""), Err(KeyFileError::NoKeys));
        assert_eq!(parse_keys(b"\n \n\r\n"), Err(KeyFileError::NoKeys));
        assert_eq!(
            parse_keys(b"# a comment\n"),
            line(1, KeyLineError::NotBase64)
        );
        // 31 and 33 bytes; 64 bytes (a private key's seed and public key).
        let k31 = b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
        assert_eq!(parse_keys(k31), line(1, KeyLineError::Length(31)));
        let mut text = KEY1.to_vec();
        text.extend_from_slice(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        assert_eq!(parse_keys(&text), line(2, KeyLineError::Length(33)));
        let k64 = [b'A'; 88];
        assert_eq!(parse_keys(&k64), line(1, KeyLineError::Length(66)));
        let many: Vec<u8> = KEY1.repeat(MAX_KEYS + 1);
        assert_eq!(parse_keys(&many), Err(KeyFileError::TooMany));
        assert_eq!(parse_keys(&KEY1.repeat(MAX_KEYS)).unwrap().len(), MAX_KEYS);
    }

    #[test]
    fn commits_as_ostree_writes_them() {
        let base = Commit::parse(BASE).unwrap();
        let digest = base.composefs_digest().unwrap().unwrap();
        assert_eq!(digest.to_vec(), unhex(expected("digest-base")));
        assert!(base.parent.is_empty());
        assert_eq!(base.bootc_base(), None);

        let derived = Commit::parse(DERIVED).unwrap();
        let digest = derived.composefs_digest().unwrap().unwrap();
        assert_eq!(digest.to_vec(), unhex(expected("digest-derived")));
        assert_eq!(derived.bootc_base(), Some(checksum("base")));

        // A parent, but no image config: not bootc's.
        let child = Commit::parse(CHILD).unwrap();
        assert_eq!(child.parent, unhex(expected("base")));
        assert_eq!(child.bootc_base(), None);

        let nodigest = Commit::parse(NODIGEST).unwrap();
        assert_eq!(nodigest.composefs_digest(), Ok(None));
        assert_eq!(nodigest.bootc_base(), None);

        // Cut short anywhere: an error or a lookup miss, never a panic.
        for n in 0..DERIVED.len() {
            if let Some(c) = Commit::parse(&DERIVED[..n]) {
                let _ = (c.composefs_digest(), c.bootc_base());
            }
        }
    }

    #[test]
    fn detached_metadata_as_glib_writes_it() {
        let sigs: Vec<&[u8]> = signatures(BASE_META).unwrap().collect();
        assert_eq!(sigs.len(), 2);
        assert!(sigs.iter().all(|s| s.len() == SIGNATURE_LEN));
        assert_eq!(signatures(NODIGEST_META).unwrap().len(), 1);
        // An empty a{sv} (zero bytes), and a commit instead of metadata.
        assert_eq!(signatures(b"").unwrap_err(), CommitmetaError::NoSignatures);
        assert!(signatures(BASE).is_err());
        for n in 0..BASE_META.len() {
            let _ = signatures(&BASE_META[..n]).map(|s| s.count());
        }
    }

    #[test]
    fn signatures_by_the_right_keys_only() {
        let sigs = signatures(BASE_META).unwrap();
        let (k1, k2, k3) = (key(KEY1), key(KEY2), key(KEY3));
        // The base commit is signed by key 2, then key 1.
        assert_eq!(verify(BASE, &sigs, &[k1]), Ok(0));
        assert_eq!(verify(BASE, &sigs, &[k2]), Ok(0));
        assert_eq!(verify(BASE, &sigs, &[k3, k1]), Ok(1));
        assert_eq!(verify(BASE, &sigs, &[k3, k3, k2, k1]), Ok(2));
        let none = Err(SignedError::NoValidSignature {
            signatures: 2,
            keys: 1,
        });
        assert_eq!(verify(BASE, &sigs, &[k3]), none);
        // Another commit's signature does not carry over.
        let other = signatures(NODIGEST_META).unwrap();
        assert_eq!(verify(NODIGEST, &other, &[k1]), Ok(0));
        assert!(verify(BASE, &other, &[k1]).is_err());
        assert!(verify(NODIGEST, &other, &[k2]).is_err());
        // Any byte of the commit changed.
        for i in [0, BASE.len() / 2, BASE.len() - 1] {
            let mut tampered = BASE.to_vec();
            tampered[i] ^= 1;
            assert!(verify(&tampered, &sigs, &[k1, k2]).is_err(), "byte {i}");
        }
        // No signatures, no keys.
        let empty = aay(&[]);
        let zero = VarArray::new(&empty, 1).unwrap();
        assert!(verify(BASE, &zero, &[k1]).is_err());
        assert!(verify(BASE, &sigs, &[]).is_err());
    }

    #[test]
    fn signatures_must_be_64_bytes_and_canonical() {
        let good: Vec<&[u8]> = signatures(BASE_META).unwrap().collect();
        let k1 = key(KEY1);
        for len in [0, 63, 65] {
            let odd = vec![7u8; len];
            let data = aay(&[&odd, good[1]]);
            let sigs = VarArray::new(&data, 1).unwrap();
            assert_eq!(
                verify(BASE, &sigs, &[k1]),
                Err(SignedError::SignatureLength { index: 0, len })
            );
        }
        // S + L: the same signature in a non-canonical form (libsodium
        // refuses it; a lax verifier accepts it).
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut malleated = good[1].to_vec();
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(malleated[32 + i]) + u16::from(L[i]) + carry;
            malleated[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        let data = aay(&[&malleated]);
        let sigs = VarArray::new(&data, 1).unwrap();
        assert!(verify(BASE, &sigs, &[k1]).is_err());
        // A key that is no curve point (y = p) and the identity (small
        // order) match nothing.
        let mut not_a_point = [0xffu8; 32];
        not_a_point[0] = 0xed;
        not_a_point[31] = 0x7f;
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let all = signatures(BASE_META).unwrap();
        assert!(verify(BASE, &all, &[not_a_point, identity]).is_err());
    }

    /// RFC 8032, section 7.1, test 1 (the empty message).
    #[test]
    fn rfc8032_test_1() {
        let pk: Key = unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .try_into()
            .unwrap();
        let sig = unhex(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        );
        let data = aay(&[&sig]);
        let sigs = VarArray::new(&data, 1).unwrap();
        assert_eq!(verify(b"", &sigs, &[pk]), Ok(0));
        assert!(verify(b"x", &sigs, &[pk]).is_err());
    }

    /// A repository with some of the fixtures' objects.
    struct Repo(std::path::PathBuf, sys::Fd);

    impl Repo {
        fn new(name: &str, objects: &[(&str, &str, &[u8])]) -> Repo {
            use std::os::unix::ffi::OsStrExt;
            let d = std::env::temp_dir().join(std::format!(
                "switchroot-signed-{}-{name}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&d);
            for (sum, ext, bytes) in objects {
                let sum = expected(sum);
                let dir = d.join("objects").join(&sum[..2]);
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(std::format!("{}.{ext}", &sum[2..])), bytes).unwrap();
            }
            std::fs::create_dir_all(&d).unwrap();
            let fd = sys::open(
                d.as_os_str().as_bytes(),
                OFlags::RDONLY | OFlags::DIRECTORY,
                0,
            )
            .unwrap();
            Repo(d, fd)
        }

        fn verify(&self, sum: &str, keys: &[&[u8]]) -> Result<Verified, SignedError> {
            let keys: Vec<Key> = keys.iter().map(|k| key(k)).collect();
            verify_commit(&self.1, &checksum(sum), &keys)
        }
    }

    impl Drop for Repo {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_whole_check_on_a_repository() {
        let base_digest: [u8; 32] = unhex(expected("digest-base")).try_into().unwrap();
        let all = Repo::new(
            "all",
            &[
                ("base", "commit", BASE),
                ("base", "commitmeta", BASE_META),
                ("derived", "commit", DERIVED),
                ("nodigest", "commit", NODIGEST),
                ("nodigest", "commitmeta", NODIGEST_META),
            ],
        );
        assert_eq!(
            all.verify("base", &[KEY3, KEY1]),
            Ok(Verified {
                digest: base_digest,
                key: 1,
                base: None
            })
        );
        // bootc: no signature of its own; the base commit's signature, and
        // the base commit's digest (not the derived commit's).
        assert_eq!(
            all.verify("derived", &[KEY2]),
            Ok(Verified {
                digest: base_digest,
                key: 0,
                base: Some(checksum("base"))
            })
        );
        assert!(matches!(
            all.verify("derived", &[KEY3]),
            Err(SignedError::NoValidSignature { .. })
        ));
        assert_eq!(
            all.verify("nodigest", &[KEY1]),
            Err(SignedError::NoDigest(checksum("nodigest")))
        );
        let e = all.verify("nodigest", &[KEY1]).unwrap_err().to_string();
        assert!(e.contains("has no ostree.composefs.digest.v0"), "{e}");

        // The base commit's detached metadata, then the base commit, missing.
        for (name, objects) in [
            (
                "nobasemeta",
                &[("base", "commit", BASE), ("derived", "commit", DERIVED)][..],
            ),
            ("nobase", &[("derived", "commit", DERIVED)][..]),
        ] {
            let r = Repo::new(name, objects);
            assert_eq!(
                r.verify("derived", &[KEY1]),
                Err(SignedError::NoCommitmeta {
                    commit: checksum("derived"),
                    base: Some(checksum("base"))
                })
            );
        }
        // A child commit without detached metadata: its signed parent is
        // no fallback, as it is not bootc's.
        let r = Repo::new(
            "child",
            &[
                ("base", "commit", BASE),
                ("base", "commitmeta", BASE_META),
                ("child", "commit", CHILD),
            ],
        );
        assert_eq!(
            r.verify("child", &[KEY1]),
            Err(SignedError::NoCommitmeta {
                commit: checksum("child"),
                base: None
            })
        );
        // A plain commit without detached metadata.
        let r = Repo::new("nometa", &[("base", "commit", BASE)]);
        let e = r.verify("base", &[KEY1]).unwrap_err();
        assert_eq!(
            e,
            SignedError::NoCommitmeta {
                commit: checksum("base"),
                base: None
            }
        );
        assert!(e.to_string().contains("has no detached metadata"));
        // Detached metadata without signatures (an empty a{sv}).
        let r = Repo::new(
            "nosigs",
            &[("base", "commit", BASE), ("base", "commitmeta", b"")],
        );
        assert!(matches!(
            r.verify("base", &[KEY1]),
            Err(SignedError::NoSignatures(_))
        ));
        // No commit at all.
        let r = Repo::new("empty", &[]);
        let e = r.verify("base", &[KEY1]).unwrap_err();
        assert!(matches!(
            e,
            SignedError::Repo {
                errno: Errno::NOENT,
                ..
            }
        ));
        let base = expected("base");
        let want = std::format!(
            "opening ostree/repo/objects/{}/{}.commit: ",
            &base[..2],
            &base[2..]
        );
        assert!(e.to_string().starts_with(&want), "{e}");
    }

    #[test]
    fn no_symlink_is_followed_in_the_repository() {
        let r = Repo::new("symlink", &[("base", "commit", BASE)]);
        let base = expected("base");
        let dir = r.0.join("objects").join(&base[..2]);
        std::fs::write(dir.join("elsewhere"), BASE_META).unwrap();
        std::os::unix::fs::symlink(
            "elsewhere",
            dir.join(std::format!("{}.commitmeta", &base[2..])),
        )
        .unwrap();
        assert!(matches!(
            r.verify("base", &[KEY1]),
            Err(SignedError::Repo {
                errno: Errno::LOOP,
                ..
            })
        ));
    }

    #[test]
    fn deployment_names() {
        let base = expected("base");
        assert_eq!(
            deployment_checksum(std::format!("{base}.0").as_bytes()),
            Ok(checksum("base"))
        );
        assert_eq!(deployment_checksum(base.as_bytes()), Ok(checksum("base")));
        for bad in [
            std::format!("{}.0", base.to_uppercase()),
            std::format!("{}.0", &base[1..]),
            std::format!("{base}0.0"),
            "../x".into(),
            "".into(),
        ] {
            assert_eq!(
                deployment_checksum(bad.as_bytes()),
                Err(SignedError::BadChecksum)
            );
        }
    }

    #[test]
    fn a_plain_file_is_no_verity_image() {
        let r = Repo::new("image", &[("base", "commit", BASE)]);
        let base = expected("base");
        let path = std::format!("objects/{}/{}.commit", &base[..2], &base[2..]);
        let fd = sys::open_beneath(&r.1, path.as_bytes(), OFlags::RDONLY, 0).unwrap();
        let e = check_image(&fd, &[0; 32]).unwrap_err();
        assert!(matches!(e, SignedError::ImageNoVerity { .. }), "{e:?}");
        assert!(e.to_string().contains("has no fs-verity digest"));
    }

    #[test]
    fn messages() {
        let e = SignedError::DigestMismatch {
            expected: [0xab; 32],
            actual: [0x01; 32],
        };
        assert_eq!(
            e.to_string(),
            std::format!(
                "composefs image's fs-verity digest is {}, the signed commit expects {}",
                "01".repeat(32),
                "ab".repeat(32)
            )
        );
        let e = KeyError {
            path: DEFAULT_KEYPATH,
            problem: KeyFileError::Line {
                line: 3,
                what: KeyLineError::Length(31),
            },
        };
        assert_eq!(
            e.to_string(),
            "public key file /etc/ostree/initramfs-root-binding.key: line 3 decodes to 31 bytes; an Ed25519 public key is 32"
        );
        assert!(core::mem::size_of::<SignedError>() <= 160);
    }

    #[test]
    fn key_file_on_disk() {
        use std::os::unix::ffi::OsStrExt;
        let p = std::env::temp_dir().join(std::format!("switchroot-keys-{}", std::process::id()));
        let path = p.as_os_str().as_bytes();
        assert_eq!(
            load_keys(path).unwrap_err().problem,
            KeyFileError::Read(Errno::NOENT)
        );
        std::fs::write(&p, [KEY1, KEY2].concat()).unwrap();
        assert_eq!(load_keys(path).unwrap().len(), 2);
        std::fs::write(&p, b"\n").unwrap();
        let e = load_keys(path).unwrap_err();
        std::fs::remove_file(&p).unwrap();
        assert!(e.to_string().ends_with(": no public keys found"), "{e}");
    }
}
