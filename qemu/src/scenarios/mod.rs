//! The boot scenarios, each one boot or a sequence of boots on its own copy
//! of a test disk, and the summary table.
//!
//! `run` holds what every scenario uses; `base`, `distro`, `xz` and
//! `way_back` the scenarios themselves, by the images they boot; `arm64`
//! those of `--arch aarch64`.

mod arm64;
mod base;
mod composefs;
mod distro;
mod run;
mod way_back;
mod xz;

use std::time::Instant;

use anyhow::Result;

use crate::arch;
use crate::boot::Echo;
use crate::disk;
use crate::kernel::{self, Kernel};
use crate::lab::{Lab, Mode};
use crate::util;
use run::{Report, Run, ScenarioFn};

/// Every scenario, in order: the lab's own images, the distributions'
/// images, the compressed modules.
pub fn all() -> Vec<(&'static str, ScenarioFn)> {
    let mut v = base::base();
    v.extend(distro::scenarios());
    v.extend(xz::scenarios());
    v.extend(way_back::scenarios());
    v.extend(composefs::scenarios());
    v
}

/// The scenarios of this run's architecture: [`all`] on x86_64, the lab's;
/// the aarch64 ones (few enough to be their own subset) on aarch64.
pub fn for_arch() -> Vec<(&'static str, ScenarioFn)> {
    match arch::current().name {
        n if n == arch::AARCH64.name => arm64::scenarios(),
        _ => all(),
    }
}

/// The representative subset `make qemu-test` boots on the kernels other
/// than the lab's: our `/init`, `init=` without initramfs, hotfix
/// persistence, a failure, a composefs root (each kernel's own fallbacks).
pub const SUBSET: &[&str] = &[
    "1 initramfs /init",
    "2 no initramfs (init=), twice",
    "5a hotfix /usr persists, initramfs",
    "7a failure: wrong ostree=",
    composefs::PLAIN,
];

/// Which scenarios a run takes.
pub enum Filter {
    All,
    /// Names containing one of these texts (`--only A,B`).
    Containing(Vec<String>),
    /// [`SUBSET`].
    Subset,
}

impl Filter {
    pub fn from_opts(only: Option<&str>, subset: bool) -> Filter {
        match (only, subset) {
            (_, true) => Filter::Subset,
            (Some(o), false) => Filter::Containing(
                o.split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            (None, false) => Filter::All,
        }
    }

    fn takes(&self, name: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Containing(t) => t.iter().any(|t| name.contains(t.as_str())),
            // Another architecture's scenarios are all in its subset.
            Filter::Subset => SUBSET.contains(&name) || !arch::current().is_lab(),
        }
    }
}

/// Why scenario `name` does not run on `kernel` (the matrix's kernel-specific
/// scenarios), or `None`.
pub fn skip_reason(name: &str, kernel: &Kernel) -> Option<&'static str> {
    let default = kernel.label == kernel::DEFAULT;
    if name.starts_with("11a ") && !default {
        // 11a boots its own kernel (bookworm's 6.12), whatever the lab's is.
        return Some("boots its own 6.12 kernel: run with the lab's 6.1 only");
    }
    if name.starts_with("11b ") && kernel.decompresses_modules() {
        return Some("this kernel decompresses modules (CONFIG_MODULE_DECOMPRESS=y)");
    }
    if name == composefs::PLAIN {
        return crate::cfsdisk::kernel_runs_composefs(kernel);
    }
    if name.starts_with("13") {
        return crate::cfsdisk::kernel_fit(kernel);
    }
    None
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Side by side: our initramfs and the busybox + C reference, same kernel and disk.
fn comparison(lab: &Lab, rounds: usize) -> Result<Vec<String>> {
    let d = disk::scratch_copy(&lab.disk, "compare")?;
    let mut rows = vec![];
    for (mode, image) in [
        (Mode::Ours, lab.ours.clone()),
        (Mode::Reference, lab.reference()?),
    ] {
        let (mut init, mut total) = (vec![], vec![]);
        for i in 0..rounds {
            let append = lab.cmdline(&d, mode, "B", "ktest.step=compare");
            let o = lab.boot(
                &d,
                mode,
                &append,
                &format!("compare-{}-{i}", mode.label()),
                None,
            )?;
            init.extend(o.initramfs_ms);
            total.extend(o.kernel_to_init_ms);
        }
        let gz = std::fs::metadata(&image)?.len();
        rows.push(format!(
            "{:<34} {:>12} {:>14} {:>16}",
            format!(
                "{} ({})",
                mode.label(),
                image.file_name().unwrap_or_default().to_string_lossy()
            ),
            util::human(gz),
            ms(median(init)),
            ms(median(total))
        ));
    }
    Ok(rows)
}

/// Run the scenarios `filter` takes on the kernel `choice` names, print the table.
pub fn run_all(filter: &Filter, choice: Option<&str>, verbose: bool) -> Result<bool> {
    let started = Instant::now();
    let lab = Lab::prepare(
        if verbose {
            Echo::Interesting
        } else {
            Echo::Nothing
        },
        choice,
    )?;
    let kname = lab.kernel.describe();
    println!(
        "qemu-harness: kernel {kname} ({}), {} scenarios, logs in {}/",
        lab.accel,
        for_arch().len(),
        util::logs_rel()
    );
    let mut reports = vec![];
    let mut skipped = vec![];
    for (name, f) in for_arch() {
        if !filter.takes(name) {
            continue;
        }
        if let Some(why) = skip_reason(name, &lab.kernel) {
            println!("  {name:<42} skipped on {}: {why}", lab.kernel.label);
            skipped.push(name);
            continue;
        }
        let mut run = Run::new(&lab, name);
        if let Err(e) = f(&mut run) {
            run.note(format!("harness error: {e:#}"));
        }
        let ok = run.r.problems.is_empty();
        println!(
            "  {:<42} {} ({} boots, {:.1}s)",
            name,
            if ok { "ok" } else { "FAIL" },
            run.r.boots,
            run.r.wall.as_secs_f64()
        );
        reports.push(run.r);
    }
    // The reference image is the host's busybox and C tool: x86_64 only.
    let compare = if matches!(filter, Filter::All) && arch::current().is_lab() {
        let rounds = std::env::var("KTEST_COMPARE_BOOTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        comparison(&lab, rounds)?
    } else {
        vec![]
    };

    println!();
    println!("kernel {kname}");
    println!(
        "{:<42} {:>5}  {:<6} {:>13} {:>13}",
        "scenario", "boots", "result", "initramfs ms", "to init ms"
    );
    println!("{}", "-".repeat(84));
    for r in &reports {
        println!(
            "{:<42} {:>5}  {:<6} {:>13} {:>13}",
            r.name,
            r.boots,
            if r.problems.is_empty() { "ok" } else { "FAIL" },
            ms(r.initramfs_ms),
            ms(r.to_init_ms)
        );
    }
    // The distro-built images: the first boot of their scenario.
    let distro: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            let img = r.initrd.as_ref()?;
            let size = std::fs::metadata(img).ok()?.len();
            Some(format!(
                "{:<34} {:>12} {:>14} {:>16}",
                format!(
                    "{} ({})",
                    img.file_name().unwrap_or_default().to_string_lossy(),
                    r.name.split_whitespace().next().unwrap_or_default()
                ),
                util::human(size),
                ms(r.initramfs_ms),
                ms(r.to_init_ms)
            ))
        })
        .collect();
    if !compare.is_empty() || !distro.is_empty() {
        println!();
        println!(
            "{:<34} {:>12} {:>14} {:>16}",
            "initramfs (same kernel and disk)", "size (gzip)", "initramfs ms", "kernel→init ms"
        );
        println!("{}", "-".repeat(79));
        for row in compare.iter().chain(&distro) {
            println!("{row}");
        }
    }
    if !compare.is_empty() {
        println!(
            "(medians of {} boots each, TCG; times from ktest's RD_TIMESTAMP and /proc/uptime)",
            {
                std::env::var("KTEST_COMPARE_BOOTS")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(3)
            }
        );
    }
    if !distro.is_empty() {
        println!(
            "(distro-built images, by scenario: one boot each; dracut's systemd passes no \
             RD_TIMESTAMP to a non-systemd init, hence no initramfs ms)"
        );
    }
    let failed: Vec<&Report> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
    if !failed.is_empty() {
        println!();
        for r in &failed {
            println!("FAIL {}", r.name);
            for p in &r.problems {
                println!("     {p}");
            }
        }
    }
    println!();
    println!(
        "total {:.0}s on kernel {}",
        started.elapsed().as_secs_f64(),
        lab.kernel.label
    );
    println!(
        "{} passed, {} failed{} (kernel {})",
        reports.len() - failed.len(),
        failed.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(", {} skipped", skipped.len())
        },
        lab.kernel.version
    );
    Ok(failed.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subset_names_existing_scenarios() {
        let names: Vec<&str> = all().iter().map(|(n, _)| *n).collect();
        for s in SUBSET {
            assert!(names.contains(s), "{s:?} is no scenario");
        }
        let taken: Vec<&&str> = names.iter().filter(|n| Filter::Subset.takes(n)).collect();
        assert_eq!(taken.len(), SUBSET.len());
    }

    #[test]
    fn only_takes_any_of_several_texts() {
        let f = Filter::from_opts(Some("5a hotfix,7a failure"), false);
        let names: Vec<&str> = all()
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| f.takes(n))
            .collect();
        assert_eq!(
            names,
            [
                "5a hotfix /usr persists, initramfs",
                "7a failure: wrong ostree="
            ]
        );
        assert!(matches!(Filter::from_opts(None, false), Filter::All));
        assert!(matches!(Filter::from_opts(Some("x"), true), Filter::Subset));
    }

    fn kernel(label: &str, decompress: bool) -> Kernel {
        let root = std::env::temp_dir().join(format!(
            "qemu-harness-skip-{label}-{decompress}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(root.join("boot")).unwrap();
        let config = if decompress {
            "CONFIG_MODULE_DECOMPRESS=y\n"
        } else {
            ""
        };
        std::fs::write(root.join("boot/config-v"), config).unwrap();
        Kernel {
            label: label.into(),
            version: "v".into(),
            vmlinuz: root.join("boot/vmlinuz-v"),
            modules: root.join("lib/modules/v"),
            root,
        }
    }

    #[test]
    fn kernel_specific_scenarios() {
        let k510 = kernel("5.10", false);
        let k61 = kernel("6.1", false);
        let k612 = kernel("6.12", true);
        let a = "11a xz module, kernel 6.12 decompresses";
        let b = "11b xz module, kernel cannot decompress";
        assert!(skip_reason(a, &k61).is_none());
        assert!(skip_reason(a, &k510).is_some() && skip_reason(a, &k612).is_some());
        assert!(skip_reason(b, &k61).is_none() && skip_reason(b, &k510).is_none());
        assert!(skip_reason(b, &k612).is_some());
        for (n, _) in all() {
            // 13x: the kernel's config decides (cfsdisk::kernel_fit).
            if !n.starts_with("11a ") && !n.starts_with("11b ") && !n.starts_with("13") {
                assert!(skip_reason(n, &k510).is_none() && skip_reason(n, &k612).is_none());
            }
        }
        for k in [k510, k61, k612] {
            let _ = std::fs::remove_dir_all(&k.root);
        }
    }
}
