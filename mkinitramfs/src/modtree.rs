//! A kernel's module tree as depmod describes it, and the modules an image
//! needs: the names asked for, resolved as modprobe resolves them (module
//! name, then `modules.alias`), their dependencies (`modules.dep`) and soft
//! dependencies (`modules.softdep`, `pre:` and `post:`), in the order
//! modprobe would load them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::glob::{alias_normalize, fnmatch, modname_normalize};

/// The name of a module file: `kernel/fs/overlayfs/overlay.ko.xz` → `overlay`
/// (up to the first `.`, `-` spelled `_`, as kmod's `path_to_modname`).
pub fn name_of_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split('.').next().unwrap_or(base);
    modname_normalize(stem)
}

/// One line of `modules.dep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepLine {
    /// The module's file, relative to the tree (`kernel/fs/x.ko.zst`).
    pub path: String,
    /// Its module name (normalised).
    pub name: String,
    /// Every module it depends on, transitively, as listed: the last one
    /// listed is loaded first.
    pub deps: Vec<String>,
    /// The line as written, for the image's own `modules.dep`.
    pub raw: String,
}

/// `softdep NAME pre: A B post: C`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftDep {
    pub pre: Vec<String>,
    pub post: Vec<String>,
}

/// Parse `modules.softdep` (and the same lines of a modprobe.d file):
/// module name (normalised) → its soft dependencies. Later lines for the
/// same module are added to earlier ones; other lines are ignored.
pub fn parse_softdeps(text: &str) -> BTreeMap<String, SoftDep> {
    let mut out: BTreeMap<String, SoftDep> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("softdep") {
            continue;
        }
        let Some(name) = words.next() else { continue };
        let entry = out.entry(modname_normalize(name)).or_default();
        // Names before any `pre:`/`post:` are ignored, as kmod does.
        let mut side: Option<bool> = None; // Some(true): pre
        for w in words {
            match w {
                "pre:" => side = Some(true),
                "post:" => side = Some(false),
                _ => match side {
                    Some(true) => entry.pre.push(w.to_string()),
                    Some(false) => entry.post.push(w.to_string()),
                    None => {}
                },
            }
        }
    }
    out
}

/// `alias PATTERN MODULE` lines: (normalised pattern, module name, raw line).
fn parse_aliases(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            if w.next() != Some("alias") {
                return None;
            }
            let (pat, module) = (w.next()?, w.next()?);
            Some((
                alias_normalize(pat),
                modname_normalize(module),
                l.trim().to_string(),
            ))
        })
        .collect()
}

/// What a name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Module files (indexes into [`ModTree::lines`]), in the order of
    /// `modules.dep` (which is `modules.order`'s: the priority depmod gives
    /// each module in the alias index modprobe searches).
    Modules(Vec<usize>),
    /// Built into the kernel (`modules.builtin`, `modules.builtin.alias`):
    /// nothing to load.
    Builtin,
    Missing,
}

/// Errors reading a tree or resolving the modules asked for.
#[derive(Debug)]
pub enum Error {
    Io(PathBuf, io::Error),
    /// A `modules.dep` line names a dependency that has no line of its own.
    BrokenDep {
        module: String,
        dep: String,
    },
    /// Names asked for that the tree does not have: (name, close names).
    Missing(PathBuf, Vec<(String, Vec<String>)>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Io(p, e) if e.kind() == io::ErrorKind::NotFound && p.ends_with("modules.dep") => {
                write!(
                    f,
                    "{}: not found (is {} a kernel's modules directory? depmod -b ROOT KVER writes it)",
                    p.display(),
                    p.parent().unwrap_or(p).display()
                )
            }
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::BrokenDep { module, dep } => write!(
                f,
                "modules.dep: {module} depends on {dep}, which has no line of its own (run depmod again)"
            ),
            Error::Missing(dir, names) => {
                for (i, (name, close)) in names.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(
                        f,
                        "module {name} not found in {}/modules.dep nor as an alias in modules.alias",
                        dir.display()
                    )?;
                    if !close.is_empty() {
                        write!(f, " (close names: {})", close.join(", "))?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

/// The module tree of one kernel (`lib/modules/KVER` or `usr/lib/modules/KVER`).
#[derive(Debug, Clone, Default)]
pub struct ModTree {
    pub dir: PathBuf,
    /// `modules.dep`, in the file's order.
    pub lines: Vec<DepLine>,
    by_name: BTreeMap<String, usize>,
    by_path: BTreeMap<String, usize>,
    aliases: Vec<(String, String, String)>,
    builtin: BTreeSet<String>,
    builtin_aliases: Vec<(String, String, String)>,
    pub softdeps: BTreeMap<String, SoftDep>,
}

/// The files of a tree [`ModTree::from_texts`] reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Texts<'a> {
    pub dep: &'a str,
    pub alias: &'a str,
    pub softdep: &'a str,
    pub builtin: &'a str,
    pub builtin_alias: &'a str,
    /// `modules.builtin.modinfo`: `MODULE.KEY=VALUE` strings, NUL-separated;
    /// its `alias=` keys are the aliases of built-in modules (depmod does
    /// not always write `modules.builtin.alias` as text).
    pub builtin_modinfo: &'a str,
}

/// A file of the tree, or "" when it does not exist (only `modules.dep` is required).
fn read_optional(dir: &Path, name: &str) -> Result<String, Error> {
    let p = dir.join(name);
    match fs::read(&p) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::Io(p, e)),
    }
}

impl ModTree {
    /// Read the depmod files of `dir`: `modules.dep` (required),
    /// `modules.alias`, `modules.softdep`, `modules.builtin`,
    /// `modules.builtin.alias`, `modules.builtin.modinfo` (when present).
    pub fn open(dir: &Path) -> Result<ModTree, Error> {
        let dep_path = dir.join("modules.dep");
        let dep = fs::read(&dep_path).map_err(|e| Error::Io(dep_path.clone(), e))?;
        let dep = String::from_utf8_lossy(&dep);
        let others: Vec<String> = [
            "modules.alias",
            "modules.softdep",
            "modules.builtin",
            "modules.builtin.alias",
            "modules.builtin.modinfo",
        ]
        .iter()
        .map(|n| read_optional(dir, n))
        .collect::<Result<_, _>>()?;
        let mut t = ModTree::from_texts(&Texts {
            dep: &dep,
            alias: &others[0],
            softdep: &others[1],
            builtin: &others[2],
            builtin_alias: &others[3],
            builtin_modinfo: &others[4],
        });
        t.dir = dir.to_path_buf();
        Ok(t)
    }

    pub fn from_texts(t: &Texts) -> ModTree {
        let mut tree = ModTree::default();
        for raw in t.dep.lines() {
            let Some((path, deps)) = raw.split_once(':') else {
                continue;
            };
            let path = path.trim().to_string();
            let name = name_of_path(&path);
            let i = tree.lines.len();
            // The first line of a name wins, as the first match in modprobe's index.
            tree.by_name.entry(name.clone()).or_insert(i);
            tree.by_path.insert(path.clone(), i);
            tree.lines.push(DepLine {
                path,
                name,
                deps: deps.split_whitespace().map(str::to_string).collect(),
                raw: raw.trim_end().to_string(),
            });
        }
        tree.aliases = parse_aliases(t.alias);
        tree.softdeps = parse_softdeps(t.softdep);
        tree.builtin = t
            .builtin
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(name_of_path)
            .collect();
        tree.builtin_aliases = parse_aliases(t.builtin_alias);
        for entry in t.builtin_modinfo.split('\0') {
            let Some((key, value)) = entry.split_once('=') else {
                continue;
            };
            if let Some(module) = key.strip_suffix(".alias") {
                tree.builtin_aliases.push((
                    alias_normalize(value),
                    modname_normalize(module),
                    format!("alias {value} {module}"),
                ));
            }
        }
        tree
    }

    /// Resolve a name as modprobe does: a module of `modules.dep` by that
    /// name; else every module an alias pattern matching it names; else a
    /// module built into the kernel (by name or alias).
    pub fn lookup(&self, name: &str) -> Found {
        let n = alias_normalize(name.trim());
        if let Some(&i) = self.by_name.get(&n) {
            return Found::Modules(vec![i]);
        }
        let mut hits: BTreeSet<usize> = BTreeSet::new();
        let mut builtin = false;
        for (pat, module, _) in &self.aliases {
            if fnmatch(pat, &n) {
                match self.by_name.get(module) {
                    Some(&i) => {
                        hits.insert(i);
                    }
                    None => builtin |= self.builtin.contains(module),
                }
            }
        }
        if !hits.is_empty() {
            return Found::Modules(hits.into_iter().collect());
        }
        if builtin
            || self.builtin.contains(&n)
            || self.builtin_aliases.iter().any(|(p, _, _)| fnmatch(p, &n))
        {
            return Found::Builtin;
        }
        Found::Missing
    }

    /// Module names close to `name` (for an error message): the same
    /// letters but a few, or containing it; built-in modules included.
    pub fn close_names(&self, name: &str) -> Vec<String> {
        let n = modname_normalize(name);
        let limit = (n.len() / 4).clamp(1, 3);
        let mut scored: Vec<(usize, &str)> = self
            .by_name
            .keys()
            .chain(self.builtin.iter())
            .filter_map(|m| {
                let d = distance(&n, m);
                let contains = n.len() >= 3 && (m.contains(n.as_str()) || n.contains(m.as_str()));
                (d <= limit || contains).then_some((d, m.as_str()))
            })
            .collect();
        scored.sort();
        scored
            .into_iter()
            .take(5)
            .map(|(_, m)| m.to_string())
            .collect()
    }

    /// The index of the line of a dependency path.
    fn dep_index(&self, of: usize, path: &str) -> Result<usize, Error> {
        self.by_path
            .get(path.trim())
            .copied()
            .ok_or_else(|| Error::BrokenDep {
                module: self.lines[of].path.clone(),
                dep: path.to_string(),
            })
    }

    /// The modules to load for `wanted` (names or aliases), with their
    /// dependencies and soft dependencies, in modprobe's load order.
    pub fn plan(&self, wanted: &[String]) -> Result<Plan, Error> {
        let mut st = Walk {
            visited: vec![false; self.lines.len()],
            placed: vec![false; self.lines.len()],
            plan: Plan::default(),
        };
        let mut missing = vec![];
        for w in wanted {
            match self.lookup(w) {
                Found::Modules(ms) => {
                    for m in ms {
                        self.probe_list(m, &mut st)?;
                    }
                }
                Found::Builtin => st.plan.builtin.push(w.clone()),
                Found::Missing => missing.push((w.clone(), self.close_names(w))),
            }
        }
        if !missing.is_empty() {
            return Err(Error::Missing(self.dir.clone(), missing));
        }
        Ok(st.plan)
    }

    /// kmod's `__kmod_module_get_probe_list`: the dependencies in load
    /// order (the reverse of the listed order), each with its soft
    /// dependencies around it, then the module with its own.
    fn probe_list(&self, i: usize, st: &mut Walk) -> Result<(), Error> {
        if st.visited[i] {
            return Ok(());
        }
        st.visited[i] = true;
        for dep in self.lines[i].deps.iter().rev() {
            let d = self.dep_index(i, dep)?;
            self.with_softdeps(d, st)?;
        }
        self.with_softdeps(i, st)
    }

    /// kmod's `__kmod_module_fill_softdep`: `pre:` modules (each with its
    /// own probe list), the module, `post:` modules.
    fn with_softdeps(&self, i: usize, st: &mut Walk) -> Result<(), Error> {
        let name = &self.lines[i].name;
        let soft = self.softdeps.get(name);
        if let Some(s) = soft {
            self.soft(i, &s.pre, "pre", st)?;
        }
        if !st.placed[i] {
            st.placed[i] = true;
            st.visited[i] = true;
            st.plan.order.push(i);
        }
        if let Some(s) = soft {
            self.soft(i, &s.post, "post", st)?;
        }
        Ok(())
    }

    fn soft(&self, of: usize, names: &[String], side: &str, st: &mut Walk) -> Result<(), Error> {
        for n in names {
            match self.lookup(n) {
                Found::Modules(ms) => {
                    st.plan
                        .soft_used
                        .insert((self.lines[of].name.clone(), n.clone()));
                    for m in ms {
                        self.probe_list(m, st)?;
                    }
                }
                Found::Builtin => {}
                Found::Missing => {
                    let w = format!(
                        "soft dependency {n} ({side}: of {}) not found in modules.dep nor modules.alias; left out",
                        self.lines[of].name
                    );
                    if !st.plan.warnings.contains(&w) {
                        st.plan.warnings.push(w);
                    }
                }
            }
        }
        Ok(())
    }

    /// The `modules.dep` lines of the planned modules, in the file's order.
    pub fn dep_subset(&self, plan: &Plan) -> Vec<&str> {
        let set: BTreeSet<usize> = plan.order.iter().copied().collect();
        set.into_iter()
            .map(|i| self.lines[i].raw.as_str())
            .collect()
    }

    /// `modules.alias` lines whose module is in the plan, in the file's order.
    pub fn alias_subset(&self, plan: &Plan) -> Vec<&str> {
        let names: BTreeSet<&str> = plan
            .order
            .iter()
            .map(|&i| self.lines[i].name.as_str())
            .collect();
        self.aliases
            .iter()
            .filter(|(_, m, _)| names.contains(m.as_str()))
            .map(|(_, _, raw)| raw.as_str())
            .collect()
    }

    /// `modules.softdep` lines of the planned modules, keeping only the
    /// soft dependencies that were found (so /init never looks for one
    /// the image does not hold).
    pub fn softdep_subset(&self, plan: &Plan) -> Vec<String> {
        let mut out = vec![];
        let mut names: Vec<&str> = plan
            .order
            .iter()
            .map(|&i| self.lines[i].name.as_str())
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let Some(s) = self.softdeps.get(name) else {
                continue;
            };
            let keep = |v: &[String]| -> Vec<String> {
                v.iter()
                    .filter(|d| plan.soft_used.contains(&(name.to_string(), (*d).clone())))
                    .cloned()
                    .collect()
            };
            let (pre, post) = (keep(&s.pre), keep(&s.post));
            if pre.is_empty() && post.is_empty() {
                continue;
            }
            let mut line = format!("softdep {name}");
            if !pre.is_empty() {
                line += &format!(" pre: {}", pre.join(" "));
            }
            if !post.is_empty() {
                line += &format!(" post: {}", post.join(" "));
            }
            out.push(line);
        }
        out
    }
}

struct Walk {
    visited: Vec<bool>,
    placed: Vec<bool>,
    plan: Plan,
}

/// What [`ModTree::plan`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indexes into [`ModTree::lines`], in load order, each once.
    pub order: Vec<usize>,
    /// Names asked for that are built into the kernel.
    pub builtin: Vec<String>,
    /// Soft dependencies that were not found.
    pub warnings: Vec<String>,
    /// (module, soft dependency name) pairs that resolved.
    pub soft_used: BTreeSet<(String, String)>,
}

/// Levenshtein distance of two short names.
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's arm64 kernel in small: ext4 needs crc16 and mbcache and a
    /// crc32c implementation it asks for by alias, softly.
    const DEP: &str = "kernel/fs/ext4/ext4.ko.xz: kernel/fs/mbcache.ko.xz kernel/lib/crc16.ko.xz kernel/fs/jbd2/jbd2.ko.xz\n\
kernel/fs/mbcache.ko.xz:\n\
kernel/lib/crc16.ko.xz:\n\
kernel/fs/jbd2/jbd2.ko.xz:\n\
kernel/crypto/crc32c_generic.ko.xz:\n\
kernel/arch/arm64/crypto/crc32c-arm64.ko.xz:\n\
kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz kernel/drivers/virtio/virtio.ko.xz\n\
kernel/drivers/virtio/virtio.ko.xz:\n\
kernel/drivers/virtio/virtio_ring.ko.xz:\n\
kernel/fs/overlayfs/overlay.ko.xz:\n";
    const ALIAS: &str = "# Aliases extracted from modules themselves.\n\
alias crypto-crc32c-generic crc32c_generic\n\
alias crypto-crc32c crc32c_generic\n\
alias crypto-crc32c crc32c_arm64\n\
alias virtio:d00000002v* virtio_blk\n\
alias fs-overlay overlay\n\
alias fs-ext4 ext4\n";
    const SOFTDEP: &str = "# Soft dependencies extracted from modules themselves.\n\
softdep ext4 pre: crypto-crc32c\n\
softdep virtio_blk post: no-such-module\n";

    fn tree() -> ModTree {
        ModTree::from_texts(&Texts {
            dep: DEP,
            alias: ALIAS,
            softdep: SOFTDEP,
            builtin: "kernel/fs/vfat.ko\nkernel/crypto/md5.ko\n",
            builtin_alias: "alias fs-vfat vfat\n",
            builtin_modinfo:
                "md5.file=crypto/md5\0md5.alias=crypto-md5\0md5.alias=md5\0md5.license=GPL\0",
        })
    }

    fn names(t: &ModTree, p: &Plan) -> Vec<String> {
        p.order.iter().map(|&i| t.lines[i].name.clone()).collect()
    }

    #[test]
    fn softdep_lines() {
        let s = parse_softdeps("softdep a pre: b c post: d\nsoftdep x-y post: z pre: w\nsoftdep q ignored pre: r\nnot a line\nsoftdep a post: e\n");
        assert_eq!(
            s["a"],
            SoftDep {
                pre: vec!["b".into(), "c".into()],
                post: vec!["d".into(), "e".into()]
            }
        );
        assert_eq!(
            s["x_y"],
            SoftDep {
                pre: vec!["w".into()],
                post: vec!["z".into()]
            }
        );
        assert_eq!(
            s["q"],
            SoftDep {
                pre: vec!["r".into()],
                post: vec![]
            }
        );
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn names_of_compressed_files() {
        for p in ["a/ext4.ko", "a/ext4.ko.xz", "a/ext4.ko.zst", "ext4.ko.gz"] {
            assert_eq!(name_of_path(p), "ext4");
        }
        assert_eq!(name_of_path("x/crc32c-arm64.ko.xz"), "crc32c_arm64");
    }

    #[test]
    fn lookup_by_name_alias_and_builtin() {
        let t = tree();
        let idx = |n: &str| t.lines.iter().position(|l| l.name == n).unwrap();
        assert_eq!(
            t.lookup("virtio-blk"),
            Found::Modules(vec![idx("virtio_blk")])
        );
        assert_eq!(t.lookup("fs-overlay"), Found::Modules(vec![idx("overlay")]));
        // Both modules an alias names, as modprobe loads all, in the order
        // of modules.dep (modules.order), as modprobe's alias index has them.
        assert_eq!(
            t.lookup("crypto-crc32c"),
            Found::Modules(vec![idx("crc32c_generic"), idx("crc32c_arm64")])
        );
        assert_eq!(
            t.lookup("virtio:d00000002v00001AF4"),
            Found::Modules(vec![idx("virtio_blk")])
        );
        assert_eq!(t.lookup("vfat"), Found::Builtin);
        assert_eq!(t.lookup("fs-vfat"), Found::Builtin);
        assert_eq!(t.lookup("crypto-md5"), Found::Builtin);
        assert_eq!(t.lookup("nope"), Found::Missing);
    }

    #[test]
    fn load_order_with_deps_and_softdeps() {
        let t = tree();
        let p = t
            .plan(&[
                "ext4".into(),
                "virtio_blk".into(),
                "overlay".into(),
                "ext4".into(),
            ])
            .unwrap();
        assert_eq!(
            names(&t, &p),
            [
                // ext4's deps, last listed first; its pre: softdep; ext4.
                "jbd2",
                "crc16",
                "mbcache",
                "crc32c_generic",
                "crc32c_arm64",
                "ext4",
                "virtio",
                "virtio_ring",
                "virtio_blk",
                "overlay"
            ]
        );
        assert_eq!(
            p.warnings,
            ["soft dependency no-such-module (post: of virtio_blk) not found in modules.dep nor modules.alias; left out"]
        );
        assert_eq!(t.softdep_subset(&p), ["softdep ext4 pre: crypto-crc32c"]);
        assert_eq!(
            t.alias_subset(&p).len(),
            6,
            "every alias of a module in the image"
        );
        // modules.dep lines in the file's order.
        let sub = t.dep_subset(&p);
        assert_eq!(sub.len(), 10);
        assert!(sub[0].starts_with("kernel/fs/ext4/ext4.ko.xz:"));
    }

    #[test]
    fn pre_softdeps_of_dependencies_come_before_them() {
        let t = ModTree::from_texts(&Texts {
            dep: "m.ko: d.ko\nd.ko:\ns.ko: sd.ko\nsd.ko:\np.ko:\n",
            softdep: "softdep d pre: s post: p\n",
            ..Texts::default()
        });
        let p = t.plan(&["m".into()]).unwrap();
        assert_eq!(names(&t, &p), ["sd", "s", "d", "p", "m"]);
        // A soft dependency cycle ends.
        let t = ModTree::from_texts(&Texts {
            dep: "a.ko:\nb.ko:\n",
            softdep: "softdep a pre: b\nsoftdep b pre: a\n",
            ..Texts::default()
        });
        assert_eq!(names(&t, &t.plan(&["a".into()]).unwrap()), ["b", "a"]);
    }

    #[test]
    fn missing_modules_are_named_with_close_names() {
        let t = tree();
        let e = t
            .plan(&["overlayy".into(), "ext4".into(), "zzzzzz".into()])
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("module overlayy not found"), "{msg}");
        assert!(msg.contains("(close names: overlay)"), "{msg}");
        assert!(msg.contains("module zzzzzz not found"), "{msg}");
        assert!(
            !msg.lines().nth(1).unwrap().contains("close names"),
            "{msg}"
        );
        assert_eq!(
            t.close_names("virtio"),
            ["virtio", "virtio_blk", "virtio_ring"]
        );
    }

    #[test]
    fn broken_dep_is_an_error() {
        let t = ModTree::from_texts(&Texts {
            dep: "a.ko: gone.ko\n",
            ..Texts::default()
        });
        assert!(matches!(
            t.plan(&["a".into()]),
            Err(Error::BrokenDep { .. })
        ));
    }
}
