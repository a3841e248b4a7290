//! The ways back from a hotfix, booted: `ostree-unlock --hotfix` with its
//! pristine clone; then a new deployment made by the real `ostree`. At each
//! stage every boot entry on the disk is booted in turn and must boot what
//! it says (see `disk::WayBack`).

use anyhow::Result;

use super::run::{Run, ScenarioFn, OURS};
use crate::disk::{self, WayBack, WAY_BACK_FILE};
use crate::lab::Mode;

pub fn scenarios() -> Vec<(&'static str, ScenarioFn)> {
    vec![
        (
            "12a way back: clone and pristine entry after --hotfix",
            |r| every_entry(r, WayBack::Hotfixed),
        ),
        ("12b way back: the clone after a new deployment", |r| {
            every_entry(r, WayBack::Redeployed)
        }),
    ]
}

/// One boot entry of the way-back disk, and what it must boot.
struct Entry {
    file: String,
    options: String,
    deploy: String,
    which: String,
    hotfixed: bool,
}

impl Entry {
    fn pristine(&self) -> bool {
        is_pristine(&self.file, &self.options)
    }
}

/// Whether the boot entry in file `file` with options `options` is the
/// "(pristine)" entry of ostree-unlock: the deployment without its hotfix.
pub(super) fn is_pristine(file: &str, options: &str) -> bool {
    file.starts_with("pristine-")
        || options
            .split_whitespace()
            .any(|a| a == "ostree.prepare-root.hotfix=0")
}

/// The command line a boot loader makes of an entry's `options`, with
/// ktest's checks: `/` is deployment `which` (its directory `deploy`, when
/// known), with the hotfix (`/usr` writable, `file` there) or pristine
/// (`file` absent).
pub(super) fn entry_cmdline(
    options: &str,
    step: &str,
    which: &str,
    deploy: Option<&str>,
    with_hotfix: bool,
    file: &str,
) -> String {
    let usr = if with_hotfix {
        format!("ktest.usr=rw ktest.exists={file}")
    } else {
        format!("ktest.absent={file}")
    };
    let root = deploy.map_or_else(String::new, |d| format!(" ktest.root={d}"));
    format!(
        "console={} panic=-1 rd.emergency=poweroff {options} ktest.step={step} \
         ktest.deployment={which}{root} {usr} {OURS}",
        crate::arch::current().console,
    )
}

fn every_entry(r: &mut Run, stage: WayBack) -> Result<()> {
    let base = disk::ensure_way_back(&r.lab.kernel, stage)?;
    let d = r.disk(&base)?;
    let n: usize = d.get("WB_COUNT").parse().unwrap_or(0);
    let entries: Vec<Entry> = (0..n)
        .map(|i| {
            let get = |k: &str| d.get(&format!("WB{i}_{k}")).to_string();
            Entry {
                file: get("FILE"),
                options: get("OPTIONS"),
                deploy: get("DEPLOY"),
                which: get("WHICH"),
                hotfixed: get("HOTFIXED") == "yes",
            }
        })
        .collect();
    let listing: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} -> {} ({}{})",
                e.file,
                e.deploy,
                e.which,
                if e.hotfixed { ", hotfixed" } else { "" }
            )
        })
        .collect();
    let listing = listing.join("; ");
    let hotfixed: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.hotfixed && !e.pristine())
        .collect();
    r.check(
        hotfixed.len() == 1 && hotfixed[0].which == "B",
        format!("exactly one regular entry boots the hotfixed deployment B: {listing}"),
    );
    let Some(hot) = hotfixed.first() else {
        return Ok(());
    };
    // The clone: another deployment of B's commit, no hotfix of its own.
    let clones: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.which == "B" && e.deploy != hot.deploy && !e.hotfixed)
        .collect();
    r.check(
        clones.len() == 1,
        format!(
            "one entry boots a pristine clone of B, found {}: {listing}",
            clones.len()
        ),
    );
    // ostree-unlock's own entry, until libostree rewrites the entries (the
    // new deployment): then it is gone, never wrong.
    let pristine: Vec<&Entry> = entries.iter().filter(|e| e.pristine()).collect();
    let want_pristine = usize::from(stage == WayBack::Hotfixed);
    r.check(
        pristine.len() == want_pristine && pristine.iter().all(|e| e.deploy == hot.deploy),
        format!(
            "{want_pristine} pristine entry, booting the hotfixed deployment itself: {listing}"
        ),
    );
    let letters: &[&str] = match stage {
        WayBack::Hotfixed => &["A"],
        WayBack::Redeployed => &["A", "C"],
    };
    for letter in letters {
        r.check(
            entries.iter().any(|e| e.which == *letter),
            format!("deployment {letter} keeps its entry: {listing}"),
        );
    }
    // GRUB menus built from libostree's list show the clone.
    let grub = std::fs::read_to_string(base.image.with_file_name("grub2.cfg"))?;
    for c in &clones {
        let target = c
            .options
            .split_whitespace()
            .find(|a| a.starts_with("ostree="))
            .unwrap_or("ostree=?");
        r.check(
            grub.lines()
                .any(|l| l.trim_start().starts_with("linux ") && l.contains(target)),
            format!("grub2-generate lists the clone ({target})"),
        );
    }
    // Boot each entry as the boot loader would, and check what / is.
    for (i, e) in entries.iter().enumerate() {
        let with_hotfix = e.hotfixed && !e.pristine();
        let step = format!("entry-{i}");
        let append = entry_cmdline(
            &e.options,
            &step,
            &e.which,
            Some(&e.deploy),
            with_hotfix,
            WAY_BACK_FILE,
        );
        r.expect_ok_append(&d, Mode::Ours, &append, &step, None)?;
    }
    Ok(())
}
