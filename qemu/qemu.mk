# Boot tests under QEMU and the demo (crates qemu/ and ktest/).
# Included by the top Makefile; see qemu/README.md.
#
#   make demo         the README's story: four real boots, about 15 s after the builds
#   make qemu-test    every boot scenario, summary table, `N passed, M failed`
#   make qemu-deps    Debian packages for the harness (qemu-system-x86, busybox-static, ...)
#   make ktest        the guest agent, static musl binary
#   make kernel       fetch + unpack Debian's cloud kernel into .cache/qemu/kernel

QEMU_HARNESS := target/debug/qemu-harness
KTEST := $(RELEASE)/ktest

.PHONY: qemu-deps qemu-harness ktest kernel qemu-prep qemu-test demo

qemu-harness:
	cargo build --locked -q -p qemu-harness

# Installs only what is missing (apt-get update first); the list is
# util::APT_PACKAGES in qemu/src/util.rs.
qemu-deps: qemu-harness
	@scripts/install-deps.sh build
	$(QEMU_HARNESS) deps

ktest:
	@scripts/install-deps.sh build
	cargo build --release --locked -q --target $(TARGET) -p ktest

kernel: qemu-deps
	$(QEMU_HARNESS) kernel

qemu-prep: qemu-deps build ktest kernel

qemu-test: qemu-prep
	$(QEMU_HARNESS) test

demo: qemu-prep
	@$(QEMU_HARNESS) demo

# `make test` runs the boot scenarios too.
test: qemu-test
