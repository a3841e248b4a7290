# ostree-switchroot: build, test, benchmark and install.
#
#   make                 static release builds of ostree-prepare-root and ostree-unlock
#                        (TARGET=aarch64-unknown-linux-musl, ...: see TARGETS below)
#   make matrix          every target of TARGETS: build, size, smoke run under qemu-user,
#                        and (root) the namespace suites run.sh and pid1.sh under it
#   make deps            install what the build and the tests need (root, Debian 12):
#                        the packages of scripts/packages.txt, the musl target,
#                        the pinned nightly (RUST_NIGHTLY) + cargo-fuzz
#   make test            every test, stage by stage (see `test:` below)
#   make demo            the README's story: four real boots under QEMU
#   make qemu-matrix     every QEMU scenario on every test kernel (5.10, 6.1, 6.12);
#                        make test runs all of them on 6.1 and a subset on the others
#   make bench           benchmark against ostree's C ostree-prepare-root (root):
#                        the plain boot, then composefs (make bench-composefs: alone)
#   make fuzz            every fuzz target for 5 minutes (make test runs 15 s of each)
#   make install DESTDIR=... PREFIX=/usr
#
# Building never installs anything: `make`, `make ktest`, `make lint`,
# `make fuzz-smoke` and `make kernel` check what they need
# (scripts/check-deps.sh) and, if something is missing, say how to install it
# and fail. Only `make deps` installs; `make test` and
# `make demo` begin with it (it installs only what is missing) so that the
# README's two commands work on a fresh machine.

PREFIX ?= /usr
DESTDIR ?=
TARGET ?= x86_64-unknown-linux-musl
RELEASE = target/$(TARGET)/release

# The targets `make matrix` builds, checks and runs, and `make lint` lints.
TARGETS := x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
	armv7-unknown-linux-musleabihf riscv64gc-unknown-linux-musl
# Per target: the prefix of its binutils (Debian's cross binutils, which come
# with the cross gcc that .cargo/config.toml names as its linker), and the
# qemu-user emulator that runs its binaries here (none for the machine's own).
CROSS_aarch64-unknown-linux-musl := aarch64-linux-gnu-
CROSS_armv7-unknown-linux-musleabihf := arm-linux-gnueabihf-
CROSS_riscv64gc-unknown-linux-musl := riscv64-linux-gnu-
QEMU_aarch64-unknown-linux-musl := qemu-aarch64-static
QEMU_armv7-unknown-linux-musleabihf := qemu-arm-static
QEMU_riscv64gc-unknown-linux-musl := qemu-riscv64-static
# Targets with no prebuilt standard library: `core` is built from source
# (nightly, rust-src) and musl is Debian's, fetched into .cache/cross/TARGET
# (scripts/fetch-cross-musl.sh).
BUILD_STD_TARGETS := armv7-unknown-linux-musleabihf riscv64gc-unknown-linux-musl
# The nightly of those builds and of cargo-fuzz, a dated one: pinned in
# scripts/targets.sh, which make deps installs it from.
RUST_NIGHTLY := $(shell sed -n 's/^RUST_NIGHTLY=//p' scripts/targets.sh)
# 32-bit targets whose musl has a 64-bit time_t: musl's libc.a, against which
# scripts/check-time64.sh checks the binaries (linked with their symbols).
TIME64_LIBC_armv7-unknown-linux-musleabihf := .cache/cross/armv7-unknown-linux-musleabihf/root/usr/lib/arm-linux-musleabihf/libc.a

BUILD_STD = $(filter $(TARGET),$(BUILD_STD_TARGETS))
CARGO_T = cargo$(if $(BUILD_STD), +$(RUST_NIGHTLY))
TARGET_FLAGS = --target $(TARGET)$(if $(BUILD_STD), -Zbuild-std=core)
OBJCOPY = $(CROSS_$(TARGET))objcopy
QEMU_USER = $(QEMU_$(TARGET))
FETCH_MUSL = $(if $(BUILD_STD),scripts/fetch-cross-musl.sh $(TARGET))
# After linking: check time64 where it applies, then strip and drop the
# unwind tables (.eh_frame, padded to whole pages by .cargo/eh-frame-pages.ld,
# never read by a panic=abort binary; the C start files and libc bring them).
# Into a new file: cargo's copy is a hard link of its own output in deps/,
# which objcopy would change in place, and which cargo links again on every
# build (so the check sees the binary as linked, every time).
define finish_binaries
$(if $(TIME64_LIBC_$(TARGET)),NM=$(CROSS_$(TARGET))nm scripts/check-time64.sh $(TIME64_LIBC_$(TARGET)) $(1))
for b in $(1); do $(OBJCOPY) --strip-all --remove-section=.eh_frame $$b $$b.tmp && mv -f $$b.tmp $$b || exit 1; done
endef

# Crates: BIN_CRATES are built as the static release binaries (the library
# crates they depend on, such as a shared core, come with them);
# MUSL_LINT_CRATES also get clippy on the release target.
BIN_CRATES := ostree-switchroot ostree-unlock
MUSL_LINT_CRATES := otcore ostree-switchroot ostree-unlock
# Cargo features of the release build and its lint, e.g.
# `make FEATURES=ostree-switchroot/foo` (qualified: several crates are built).
FEATURES ?=
CARGO_FEATURES = $(if $(FEATURES), --features "$(FEATURES)")

PREPARE_ROOT = $(RELEASE)/ostree-prepare-root
UNLOCK = $(RELEASE)/ostree-unlock
# ostree-prepare-root without the PID 1 modes (--no-default-features): the
# service-mode step dracut, systemd units and mkinitcpio call. Built in a
# target directory of its own, as it has the same name.
# ostree-unlock with the crash-hook feature, for the crash tests only.
CRASH_HOOK_DIR := target/crash-hook
UNLOCK_CRASH_HOOK = $(CRASH_HOOK_DIR)/$(TARGET)/release/ostree-unlock
SERVICE_ONLY_DIR := target/service-only
SERVICE_ONLY = $(SERVICE_ONLY_DIR)/$(TARGET)/release/ostree-prepare-root
# ostree-prepare-root with signature checks (`[composefs] enabled = signed`,
# the signed feature: Ed25519): too large for the default build's budget.
SIGNED_DIR := target/signed
SIGNED = $(SIGNED_DIR)/$(TARGET)/release/ostree-prepare-root

# Size budgets of the static binaries (stripped), per target: the default
# build (PID 1 modes and composefs), the service-only build, the signed
# build (default + signature checks), ostree-unlock; the measured sizes are in
# README ("Targets"). x86_64: 128 KiB (100 KiB until composefs, which costs
# about 16 KB), 64 KiB, 152 KiB (Ed25519 and the commit checks: about 33 KB);
# aarch64: 128, 66, 144; armv7 (ARM instructions, not Thumb): 132, 78, 176;
# riscv64: 128, 64, 156; ostree-unlock 448 KiB everywhere.
PREPARE_ROOT_MAX_x86_64-unknown-linux-musl := 131072
SERVICE_ONLY_MAX_x86_64-unknown-linux-musl := 65536
SIGNED_MAX_x86_64-unknown-linux-musl := 155648
UNLOCK_MAX_x86_64-unknown-linux-musl := 458752
PREPARE_ROOT_MAX_aarch64-unknown-linux-musl := 131072
SERVICE_ONLY_MAX_aarch64-unknown-linux-musl := 67584
SIGNED_MAX_aarch64-unknown-linux-musl := 147456
UNLOCK_MAX_aarch64-unknown-linux-musl := 458752
PREPARE_ROOT_MAX_armv7-unknown-linux-musleabihf := 135168
SERVICE_ONLY_MAX_armv7-unknown-linux-musleabihf := 79872
SIGNED_MAX_armv7-unknown-linux-musleabihf := 180224
UNLOCK_MAX_armv7-unknown-linux-musleabihf := 458752
PREPARE_ROOT_MAX_riscv64gc-unknown-linux-musl := 131072
SERVICE_ONLY_MAX_riscv64gc-unknown-linux-musl := 65536
SIGNED_MAX_riscv64gc-unknown-linux-musl := 159744
UNLOCK_MAX_riscv64gc-unknown-linux-musl := 458752
PREPARE_ROOT_MAX_BYTES = $(PREPARE_ROOT_MAX_$(TARGET))
SERVICE_ONLY_MAX_BYTES = $(SERVICE_ONLY_MAX_$(TARGET))
SIGNED_MAX_BYTES = $(SIGNED_MAX_$(TARGET))
UNLOCK_MAX_BYTES = $(UNLOCK_MAX_$(TARGET))
# The fuzz targets of fuzz/, and the seconds each runs in `make test`.
FUZZ_TARGETS := cmdline config json probe gvariant bootparams modules_dep unlock_files resolve signed
FUZZ_SECONDS ?= 15

CHECK_DEPS = TARGET=$(TARGET) scripts/check-deps.sh

.PHONY: all build service-only signed crash-hook deps test lint lint-target unit size smoke matrix mountns-qemu-user install-list fuzz fuzz-smoke mountns bench bench-composefs install clean \
	qemu-harness ktest kernel qemu-prep qemu-test demo

all: build

build:
	@$(CHECK_DEPS) build
	$(FETCH_MUSL)
	$(CARGO_T) build --release --locked $(TARGET_FLAGS) $(addprefix -p ,$(BIN_CRATES))$(CARGO_FEATURES)
	$(call finish_binaries,$(PREPARE_ROOT) $(UNLOCK))

$(PREPARE_ROOT): build

crash-hook:
	@$(CHECK_DEPS) build
	$(FETCH_MUSL)
	$(CARGO_T) build --release --locked $(TARGET_FLAGS) -p ostree-unlock --features crash-hook --target-dir $(CRASH_HOOK_DIR)

service-only:
	@$(CHECK_DEPS) build
	$(FETCH_MUSL)
	$(CARGO_T) build --release --locked $(TARGET_FLAGS) -p ostree-switchroot --no-default-features --target-dir $(SERVICE_ONLY_DIR)
	$(call finish_binaries,$(SERVICE_ONLY))

signed:
	@$(CHECK_DEPS) build
	$(FETCH_MUSL)
	$(CARGO_T) build --release --locked $(TARGET_FLAGS) -p ostree-switchroot --features signed --target-dir $(SIGNED_DIR)
	$(call finish_binaries,$(SIGNED))

deps:
	TARGET=$(TARGET) scripts/install-deps.sh

# Every stage, in order: host checks, then boots under QEMU.
# `matrix` builds, size-checks and runs every other target too.
test: deps lint unit size matrix install-list fuzz-smoke mountns qemu-test

# The host's checks, then clippy on the release build of every target of
# TARGETS, with and without the PID 1 modes.
lint:
	@$(CHECK_DEPS) build
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings
	cargo clippy --locked --all-targets -p ostree-switchroot --no-default-features -- -D warnings
	cargo clippy --locked --all-targets -p ostree-switchroot --features signed -- -D warnings
	cargo clippy --locked --all-targets -p ostree-unlock --features crash-hook -- -D warnings
	for t in $(TARGETS); do $(MAKE) --no-print-directory lint-target TARGET=$$t || exit 1; done
	if [ -x scripts/lint-shell.sh ]; then scripts/lint-shell.sh; fi

lint-target:
	@$(CHECK_DEPS) build
	$(CARGO_T) clippy --locked --release $(TARGET_FLAGS) $(addprefix -p ,$(MUSL_LINT_CRATES))$(CARGO_FEATURES) -- -D warnings
	$(CARGO_T) clippy --locked --release $(TARGET_FLAGS) -p ostree-switchroot --no-default-features -- -D warnings
	$(CARGO_T) clippy --locked --release $(TARGET_FLAGS) -p ostree-switchroot --features signed -- -D warnings

unit:
	cargo test --locked
	cargo test --locked -p ostree-switchroot --no-default-features
	cargo test --locked -p ostree-switchroot --features signed

size: build service-only signed
	scripts/check-binary.sh $(PREPARE_ROOT) "$(PREPARE_ROOT_MAX_BYTES)" $(TARGET)
	scripts/check-binary.sh $(SERVICE_ONLY) "$(SERVICE_ONLY_MAX_BYTES)" $(TARGET)
	scripts/check-binary.sh $(SIGNED) "$(SIGNED_MAX_BYTES)" $(TARGET)
	scripts/check-binary.sh $(UNLOCK) "$(UNLOCK_MAX_BYTES)" $(TARGET)

# Run the binaries of TARGET under qemu-user (scripts/smoke-qemu-user.sh):
# --help, and a --dry-run of ostree-prepare-root over a small sysroot.
smoke: build service-only
	@$(CHECK_DEPS) smoke
	scripts/smoke-qemu-user.sh "$(QEMU_USER)" $(PREPARE_ROOT) $(SERVICE_ONLY) $(UNLOCK)

# Every target of TARGETS: build (both flavours), size budgets, smoke runs,
# and the service-mode and PID 1 namespace suites under qemu-user (root).
# With the service-mode suite under qemu-user for the targets that are not
# booted under QEMU (armv7, riscv64: about 80 s each); `make
# mountns-qemu-user TARGET=T` runs both suites for any target (about 3 min).
matrix:
	for t in $(TARGETS); do $(MAKE) --no-print-directory size smoke TARGET=$$t || exit 1; done
	for t in $(QEMU_USER_SUITE_TARGETS); do $(MAKE) --no-print-directory mountns-qemu-user SUITES=run TARGET=$$t || exit 1; done

# The namespace suites of ostree-prepare-root (tests/mountns: run.sh, the
# service mode; pid1.sh, the PID 1 modes; as root) with TARGET's binary run
# by its qemu-user emulator, named rather than left to binfmt_misc, which a
# container may lack. Nothing for the host's own target: `make mountns`.
# SUITES=run runs only run.sh. pid1.sh's composefs scenarios need the
# composefs reference (scripts/fetch-composefs-ref.sh).
QEMU_USER_SUITE_TARGETS := armv7-unknown-linux-musleabihf riscv64gc-unknown-linux-musl
SUITES ?= run pid1
mountns-qemu-user: build
	@$(CHECK_DEPS) smoke
	$(if $(and $(QEMU_USER),$(filter run,$(SUITES))),tests/mountns/run.sh --impl $(PREPARE_ROOT) --impl-wrapper $(QEMU_USER))
	$(if $(and $(QEMU_USER),$(filter pid1,$(SUITES))),scripts/fetch-composefs-ref.sh && tests/mountns/pid1.sh --impl $(PREPARE_ROOT) --impl-wrapper $(QEMU_USER))

install-list:
	tests/install-list.sh

# composefs.sh compares with ostree 2026.4's C tool, from a Debian chroot
# that scripts/fetch-composefs-ref.sh builds once in .cache/composefs-ref
# (measured: 196 s, 53 MB downloaded, 192 MB on disk the first time; a
# no-op after). The suite takes about 80 s alone, 100-200 s with --impl.
# COMPOSEFS_MODE=--ref-only checks only the reference against its recorded
# results (tests/mountns/composefs-expected). pid1.sh's and unlock.sh's
# composefs scenarios use the same chroot (fetched first).
COMPOSEFS_MODE ?= --impl $(PREPARE_ROOT) --signed-impl $(SIGNED)

mountns: build signed crash-hook
	scripts/fetch-composefs-ref.sh
	tests/mountns/run.sh --impl $(PREPARE_ROOT)
	tests/mountns/pid1.sh --impl $(PREPARE_ROOT)
	tests/mountns/unlock.sh --unlock $(UNLOCK) --unlock-crash $(UNLOCK_CRASH_HOOK) --prepare $(PREPARE_ROOT)
	tests/mountns/composefs.sh $(COMPOSEFS_MODE)

# Every fuzz target for a while (5 minutes each by default); the corpus
# grows under fuzz/corpus/TARGET (not committed), a crash lands in
# fuzz/artifacts/TARGET and becomes a unit test.
fuzz: FUZZ_SECONDS = 300
fuzz: fuzz-smoke

# libFuzzer is chatty: keep its log, print one line per target (and the log's
# tail if it finds a crash).
fuzz-smoke:
	@$(CHECK_DEPS) fuzz
	@mkdir -p target/fuzz-logs
	@cd fuzz && for t in $(FUZZ_TARGETS); do \
		log=../target/fuzz-logs/$$t.log; \
		if cargo +$(RUST_NIGHTLY) fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) >$$log 2>&1; then \
			echo "ok - fuzz $$t: $$(grep -o 'Done [0-9]* runs' $$log | tail -1), no crash"; \
		else \
			tail -40 $$log; echo "not ok - fuzz $$t crashed (log: target/fuzz-logs/$$t.log)"; exit 1; \
		fi; \
	done

# Boot tests under QEMU (crates qemu/ and ktest/, see qemu/README.md):
# qemu-test boots every scenario and ends with `N passed, M failed`; the
# demo tells the README's story in four boots.
QEMU_HARNESS := target/debug/qemu-harness

qemu-harness:
	cargo build --locked -q -p qemu-harness

# The guest agent, a static musl binary.
ktest:
	@$(CHECK_DEPS) build
	cargo build --release --locked -q --target $(TARGET) -p ktest

# Debian's cloud kernel, fetched (apt-get download) and unpacked into
# .cache/qemu/kernel, never installed. The check covers the packages the
# boots need (QEMU, dracut, busybox-static, ...).
kernel: qemu-harness
	@$(CHECK_DEPS) packages
	$(QEMU_HARNESS) kernel

qemu-prep: build ktest kernel

# The aarch64 boots (qemu-harness --arch aarch64): the guest binaries
# (ostree-prepare-root, ostree-unlock, ktest) built for aarch64; the kernels
# are fetched by the harness itself (arm64 packages, private apt state).
QEMU_ARCH_TARGET := aarch64-unknown-linux-musl
.PHONY: qemu-prep-aarch64
qemu-prep-aarch64: qemu-prep
	$(MAKE) --no-print-directory build ktest TARGET=$(QEMU_ARCH_TARGET)
	$(QEMU_HARNESS) kernel --arch aarch64
	$(QEMU_HARNESS) kernel --arch aarch64 --kernel 6.1-cloud

# ---- QEMU boots: qemu-test (part of `make test`), qemu-matrix ----------------
# The kernel matrix: Debian's cloud kernels 5.10 (bullseye), 6.1 (the lab's,
# this machine's suite) and 6.12 (trixie); the other suites' packages are
# fetched through a private apt state in .cache/qemu/apt/ (see qemu/README.md).
QEMU_KERNELS := 5.10 6.1 6.12
# Kernels qemu-test boots the representative subset on (scenarios 1, 2, 5a, 7a).
QEMU_SUBSET_KERNELS := 5.10 6.12

# The composefs boots (scenarios 13a-13f: fs-verity, signed commits) need
# a kernel with CONFIG_FS_VERITY (the lab's 6.1 and the host's lack it) and
# a disk made by ostree 2026.4, from the chroot mountns uses as its reference;
# 13c-13f boot the signed build (make signed) as /init.
QEMU_COMPOSEFS_KERNEL := 6.12
.PHONY: qemu-prep-composefs
qemu-prep-composefs: signed
	scripts/fetch-composefs-ref.sh

# Every scenario on the lab's 6.1, then the subset on the others, the
# composefs scenarios on 6.12, then the aarch64 scenarios (A1-A4: Debian's
# generic and cloud arm64 kernels, the hotfix, a failure); every run is
# made, the target fails if one of them failed.
qemu-test: qemu-prep qemu-prep-aarch64 qemu-prep-composefs
	@rc=0; $(QEMU_HARNESS) test || rc=1; \
	for k in $(QEMU_SUBSET_KERNELS); do \
		$(QEMU_HARNESS) test --kernel $$k --subset || rc=1; \
	done; \
	$(QEMU_HARNESS) test --kernel $(QEMU_COMPOSEFS_KERNEL) --only composefs || rc=1; \
	$(QEMU_HARNESS) test --arch aarch64 || rc=1; exit $$rc

# Every scenario on every kernel (11a only with 6.1; 11b only on kernels that
# cannot decompress modules), then the aarch64 scenarios. Not part of `make
# test`: about 3 times qemu-test.
.PHONY: qemu-matrix
qemu-matrix: qemu-prep qemu-prep-aarch64 qemu-prep-composefs
	@rc=0; for k in $(QEMU_KERNELS); do \
		$(QEMU_HARNESS) test --kernel $$k || rc=1; \
	done; \
	$(QEMU_HARNESS) test --arch aarch64 || rc=1; exit $$rc
# ---- end of the QEMU targets -------------------------------------------------

# The README's main command, for a fresh machine: like `make test`, it
# begins with `make deps`.
demo: deps qemu-prep
	@$(QEMU_HARNESS) demo

# Two tables: the plain boot against the machine's C tool (ostree 2022.7),
# then composefs against ostree 2026.4's (the chroot composefs.sh uses;
# fetched once, a no-op after). bench-composefs: the second alone.
bench: build
	bench/run.sh $(PREPARE_ROOT)
	scripts/fetch-composefs-ref.sh
	bench/run.sh --composefs $(PREPARE_ROOT)

bench-composefs: build
	scripts/fetch-composefs-ref.sh
	bench/run.sh --composefs $(PREPARE_ROOT)

# ostree-mkinitramfs, the initramfs builder: a tool of the build host (std,
# the host's own target, not musl). `make install` installs it; the QEMU
# harness builds every image of ours with it (qemu-prep builds it).
MKINITRAMFS := target/release/ostree-mkinitramfs
.PHONY: mkinitramfs
mkinitramfs:
	cargo build --release --locked -p ostree-mkinitramfs
qemu-prep: mkinitramfs
install: mkinitramfs

install: build
	scripts/install.sh "$(DESTDIR)" "$(PREFIX)" $(PREPARE_ROOT) $(UNLOCK) $(MKINITRAMFS)

clean:
	cargo clean
