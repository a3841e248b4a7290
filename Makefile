# ostree-switchroot: build, test, benchmark and install.
#
#   make                 static release builds of ostree-prepare-root and ostree-unlock
#   make deps            install what the build and the tests need (root, Debian 12):
#                        the packages of scripts/packages.txt, the musl target,
#                        nightly + cargo-fuzz
#   make test            every test, stage by stage (see `test:` below)
#   make demo            the README's story: four real boots under QEMU
#   make bench           benchmark against ostree's C ostree-prepare-root (root)
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
RELEASE := target/$(TARGET)/release

# Crates: BIN_CRATES are built as the static release binaries (the library
# crates they depend on, such as a shared core, come with them);
# MUSL_LINT_CRATES also get clippy on the release target.
BIN_CRATES := ostree-switchroot ostree-unlock
MUSL_LINT_CRATES := otcore ostree-switchroot ostree-unlock
# Cargo features of the release build and its lint, e.g.
# `make FEATURES=ostree-switchroot/foo` (qualified: several crates are built).
FEATURES ?=
CARGO_FEATURES = $(if $(FEATURES), --features "$(FEATURES)")

PREPARE_ROOT := $(RELEASE)/ostree-prepare-root
UNLOCK := $(RELEASE)/ostree-unlock
# ostree-prepare-root without the PID 1 modes (--no-default-features): the
# service-mode step dracut, systemd units and mkinitcpio call. Built in a
# target directory of its own, as it has the same name.
# ostree-unlock with the crash-hook feature, for the crash tests only.
CRASH_HOOK_DIR := target/crash-hook
UNLOCK_CRASH_HOOK := $(CRASH_HOOK_DIR)/$(TARGET)/release/ostree-unlock
SERVICE_ONLY_DIR := target/service-only
SERVICE_ONLY := $(SERVICE_ONLY_DIR)/$(TARGET)/release/ostree-prepare-root

# Size budgets of the static binaries (stripped): 100 KiB with the PID 1
# modes (96 KiB until the boot deadlines and soft dependencies, PID 1 code
# only), 64 KiB without, 448 KiB for ostree-unlock.
PREPARE_ROOT_MAX_BYTES := 102400
SERVICE_ONLY_MAX_BYTES := 65536
UNLOCK_MAX_BYTES := 458752
# The fuzz targets of fuzz/, and the seconds each runs in `make test`.
FUZZ_TARGETS := cmdline config json probe gvariant bootparams modules_dep unlock_files resolve
FUZZ_SECONDS ?= 15

CHECK_DEPS := TARGET=$(TARGET) scripts/check-deps.sh

.PHONY: all build service-only crash-hook deps test lint unit size install-list fuzz fuzz-smoke mountns bench install clean \
	qemu-harness ktest kernel qemu-prep qemu-test demo

all: build

# The prebuilt Rust core and musl's libc.a bring unwind tables (.eh_frame,
# ~13 KiB) that a panic=abort binary never reads: drop them after linking.
build:
	@$(CHECK_DEPS) build
	cargo build --release --locked --target $(TARGET) $(addprefix -p ,$(BIN_CRATES))$(CARGO_FEATURES)
	objcopy --remove-section=.eh_frame $(PREPARE_ROOT)
	objcopy --remove-section=.eh_frame $(UNLOCK)

$(PREPARE_ROOT): build

crash-hook:
	@$(CHECK_DEPS) build
	cargo build --release --locked --target $(TARGET) -p ostree-unlock --features crash-hook --target-dir $(CRASH_HOOK_DIR)

service-only:
	@$(CHECK_DEPS) build
	cargo build --release --locked --target $(TARGET) -p ostree-switchroot --no-default-features --target-dir $(SERVICE_ONLY_DIR)
	objcopy --remove-section=.eh_frame $(SERVICE_ONLY)

deps:
	TARGET=$(TARGET) scripts/install-deps.sh

# Every stage, in order: host checks, then boots under QEMU.
test: deps lint unit size install-list fuzz-smoke mountns qemu-test

lint:
	@$(CHECK_DEPS) build
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings
	cargo clippy --locked --release --target $(TARGET) $(addprefix -p ,$(MUSL_LINT_CRATES))$(CARGO_FEATURES) -- -D warnings
	cargo clippy --locked --all-targets -p ostree-switchroot --no-default-features -- -D warnings
	cargo clippy --locked --all-targets -p ostree-unlock --features crash-hook -- -D warnings
	if [ -x scripts/lint-shell.sh ]; then scripts/lint-shell.sh; fi

unit:
	cargo test --locked
	cargo test --locked -p ostree-switchroot --no-default-features

size: build service-only
	scripts/check-binary.sh $(PREPARE_ROOT) $(PREPARE_ROOT_MAX_BYTES)
	scripts/check-binary.sh $(SERVICE_ONLY) $(SERVICE_ONLY_MAX_BYTES)
	scripts/check-binary.sh $(UNLOCK) $(UNLOCK_MAX_BYTES)

install-list:
	tests/install-list.sh

mountns: build crash-hook
	tests/mountns/run.sh --impl $(PREPARE_ROOT)
	tests/mountns/pid1.sh --impl $(PREPARE_ROOT)
	tests/mountns/unlock.sh --unlock $(UNLOCK) --unlock-crash $(UNLOCK_CRASH_HOOK) --prepare $(PREPARE_ROOT)

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
		if cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) >$$log 2>&1; then \
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

# ---- QEMU boots: qemu-test (part of `make test`), qemu-matrix ----------------
# The kernel matrix: Debian's cloud kernels 5.10 (bullseye), 6.1 (the lab's,
# this machine's suite) and 6.12 (trixie); the other suites' packages are
# fetched through a private apt state in .cache/qemu/apt/ (see qemu/README.md).
QEMU_KERNELS := 5.10 6.1 6.12
# Kernels qemu-test boots the representative subset on (scenarios 1, 2, 5a, 7a).
QEMU_SUBSET_KERNELS := 5.10 6.12

# Every scenario on the lab's 6.1, then the subset on the others; every run
# is made, the target fails if one of them failed.
qemu-test: qemu-prep
	@rc=0; $(QEMU_HARNESS) test || rc=1; \
	for k in $(QEMU_SUBSET_KERNELS); do \
		$(QEMU_HARNESS) test --kernel $$k --subset || rc=1; \
	done; exit $$rc

# Every scenario on every kernel (11a only with 6.1; 11b only on kernels that
# cannot decompress modules). Not part of `make test`: about 3 times qemu-test.
.PHONY: qemu-matrix
qemu-matrix: qemu-prep
	@rc=0; for k in $(QEMU_KERNELS); do \
		$(QEMU_HARNESS) test --kernel $$k || rc=1; \
	done; exit $$rc
# ---- end of the QEMU targets -------------------------------------------------

# The README's main command, for a fresh machine: like `make test`, it
# begins with `make deps`.
demo: deps qemu-prep
	@$(QEMU_HARNESS) demo

bench: build
	bench/run.sh $(PREPARE_ROOT)

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
