#!/usr/bin/env bash
# Installs the Debian packages the sensor needs to build and test, if missing.
# Idempotent; runs apt-get only when something is absent.
set -euo pipefail

PACKAGES=(
  clang-19 llvm-19 libbpf-dev bpftool   # compile the C eBPF programs (CO-RE)
  build-essential pkg-config            # host C compiler for build scripts
  sqlite3                               # audit/outbox tamper tests use the CLI
  iproute2                              # network-namespace tests
  procps psmisc                         # ps/pkill used by tests
  openssh-client socat ncat kmod        # default-rule e2e tests: ssh, reverse-shell tools, insmod
  python3 util-linux                    # default-rule e2e tests: memfd exec, unshare/nsenter
  nginx-light curl                      # topology tests: a reverse proxy in a namespace, HTTP clients
  redis-server postgresql               # L7 tests: real Redis and PostgreSQL servers in a namespace
  git make                              # the noise test's ordinary workload (git, make, cc)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root (sudo make ...)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found; install Rust 1.95 (rustup) first" >&2
  exit 1
fi
