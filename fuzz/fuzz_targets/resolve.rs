//! ostree= resolution over a tree the input describes: never a panic or a
//! hang, and a success is always a deployment directory of the tree.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use otcore::deploy::{self, Kind, SysrootFs};
use otcore::sys::Errno;

/// A tree: path -> None (a directory) or Some(target) (a symlink).
struct Tree(BTreeMap<Vec<u8>, Option<Vec<u8>>>);

impl SysrootFs for Tree {
    fn kind(&self, rel: &[u8]) -> Result<Kind, Errno> {
        match self.0.get(rel) {
            Some(None) => Ok(Kind::Dir),
            Some(Some(_)) => Ok(Kind::Symlink),
            None => Err(Errno::NOENT),
        }
    }
    fn readlink<'b>(&self, rel: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], Errno> {
        let t = self.0.get(rel).cloned().flatten().ok_or(Errno::INVAL)?;
        let n = t.len().min(buf.len());
        buf[..n].copy_from_slice(&t[..n]);
        Ok(&buf[..n])
    }
    fn list_dir(&self, rel: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<(), Errno> {
        let mut prefix = rel.to_vec();
        prefix.push(b'/');
        for k in self.0.keys() {
            if let Some(rest) = k.strip_prefix(prefix.as_slice()) {
                if !rest.contains(&b'/') {
                    f(rest);
                }
            }
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    // Lines: "path" (a directory) or "path>target" (a symlink); the first
    // line is the ostree= value.
    let mut lines = data.split(|&b| b == b'\n');
    let target = lines.next().unwrap_or_default();
    let mut tree = Tree(BTreeMap::new());
    for dir in [&b"ostree"[..], b"ostree/deploy", b"ostree/deploy/os", b"ostree/deploy/os/deploy",
        b"ostree/deploy/os/deploy/abc.0"] {
        tree.0.insert(dir.to_vec(), None);
    }
    for l in lines.take(64) {
        match l.iter().position(|&b| b == b'>') {
            Some(i) => tree.0.insert(l[..i].to_vec(), Some(l[i + 1..].to_vec())),
            None => tree.0.insert(l.to_vec(), None),
        };
    }
    if let Ok(d) = deploy::resolve(&tree, target) {
        let rel = d.rel().as_bytes();
        assert!(rel.starts_with(b"ostree/deploy/"), "{:?}", String::from_utf8_lossy(rel));
        assert_eq!(tree.kind(rel), Ok(Kind::Dir));
    }
    let _ = deploy::list_deployments(&tree);
});
