# ostree-switchroot: build, test, benchmark and install.
#
#   make                 static release builds of ostree-prepare-root and ostree-unlock
#   make test            every test (unit, size, mount namespaces, fuzz smoke)
#   make bench           benchmark against ostree's C ostree-prepare-root
#   make install DESTDIR=... PREFIX=/usr
#   make deps            install what the tests need (Debian packages, musl, cargo-fuzz)

PREFIX ?= /usr
DESTDIR ?=
TARGET := x86_64-unknown-linux-musl
RELEASE := target/$(TARGET)/release
PREPARE_ROOT := $(RELEASE)/ostree-prepare-root
UNLOCK := $(RELEASE)/ostree-unlock

# Size budgets of the static binaries (stripped): 96 KiB and 448 KiB.
PREPARE_ROOT_MAX_BYTES := 98304
UNLOCK_MAX_BYTES := 458752
# Seconds each fuzz target runs in `make test`.
FUZZ_SECONDS ?= 20

.PHONY: all build deps test unit lint size mountns install-list fuzz-smoke bench install clean

all: build

# The prebuilt Rust core and musl's libc.a bring unwind tables (.eh_frame,
# ~13 KiB) that a panic=abort binary never reads: drop them after linking.
build:
	@scripts/install-deps.sh build
	cargo build --release --locked --target $(TARGET) -p ostree-switchroot -p ostree-unlock
	objcopy --remove-section=.eh_frame $(PREPARE_ROOT)
	objcopy --remove-section=.eh_frame $(UNLOCK)

$(PREPARE_ROOT): build

deps:
	scripts/install-deps.sh all

test: deps lint unit size install-list fuzz-smoke mountns

lint:
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings
	cargo clippy --locked --release --target $(TARGET) -p ostree-switchroot -- -D warnings

unit:
	cargo test --locked

size: build
	scripts/check-binary.sh $(PREPARE_ROOT) $(PREPARE_ROOT_MAX_BYTES)
	scripts/check-binary.sh $(UNLOCK) $(UNLOCK_MAX_BYTES)

install-list:
	tests/install-list.sh

mountns: build
	tests/mountns/run.sh --impl $(PREPARE_ROOT)
	tests/mountns/pid1.sh --impl $(PREPARE_ROOT)
	tests/mountns/unlock.sh --unlock $(UNLOCK) --prepare $(PREPARE_ROOT)

# libFuzzer is chatty: keep its log, print one line per target (and the log's
# tail if it finds a crash).
fuzz-smoke:
	@mkdir -p target/fuzz-logs
	@cd fuzz && for t in cmdline config; do \
		log=../target/fuzz-logs/$$t.log; \
		if cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) >$$log 2>&1; then \
			echo "ok - fuzz $$t: $$(grep -o 'Done [0-9]* runs' $$log | tail -1), no crash"; \
		else \
			tail -40 $$log; echo "not ok - fuzz $$t crashed (log: target/fuzz-logs/$$t.log)"; exit 1; \
		fi; \
	done

bench: build
	bench/run.sh $(PREPARE_ROOT)

install: build
	scripts/install.sh "$(DESTDIR)" "$(PREFIX)" $(PREPARE_ROOT) $(UNLOCK)

clean:
	cargo clean

# Boot tests under QEMU and the demo (qemu/ and ktest/ crates).
-include qemu/qemu.mk
