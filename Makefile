# Entry points for a fresh Debian machine (run as root: eBPF needs it).
#   sudo make run    install build deps, build, run the sensor with embedded defaults
#   sudo make test   install build deps, build, run every test
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: deps build run test test-unit test-kernel bench lint

deps:
	./scripts/install-deps.sh

build: deps
	$(CARGO) build --release -p sensor

run: build
	./target/release/sensor run --events-out -

# Unit tests first (fast, no root), then the kernel/end-to-end tests, which
# run the real sensor binary as root and fail loudly if eBPF cannot load.
test: deps
	$(CARGO) build -p sensor
	$(CARGO) test --workspace --no-fail-fast -- --test-threads=2

bench: deps
	$(CARGO) build --release -p sensor
	$(CARGO) run --release -p sensor-e2e --bin sensor-bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Kernel matrix (issue 6): boot Debian's 6.1 kernel under QEMU (TCG) with a
# busybox initramfs holding a static sensor; run `sensor probe` and a smoke run
# inside. Not part of `make test` (yet). See scripts/vm/run.sh for knobs.
.PHONY: test-vm
test-vm: deps
	./scripts/vm/run.sh
