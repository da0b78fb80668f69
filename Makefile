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
# run the real sensor binary as root and fail loudly if eBPF cannot load;
# then the kernel e2e tests again on Debian's 6.1 kernel in a VM, where the
# fexit variants are used (the host kernel runs the tracepoint paths).
test: deps
	$(CARGO) build -p sensor
	$(CARGO) test --workspace --no-fail-fast -- --test-threads=2
	./scripts/vm/run.sh

bench: deps
	$(CARGO) build --release -p sensor
	$(CARGO) run --release -p sensor-e2e --bin sensor-bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Kernel matrix (issue 6) alone: boot Debian's 6.1 kernel under QEMU (TCG) on
# the host's root filesystem and run `sensor probe` and the kernel e2e tests
# inside (part of `make test`). See scripts/vm/run.sh for knobs.
.PHONY: test-vm
test-vm: deps
	./scripts/vm/run.sh
