#!/usr/bin/env bash
# VM test runner (issue 6, kernel matrix): boots Debian's own kernel under
# QEMU (software emulation) with a busybox initramfs holding a static sensor,
# runs `sensor probe --json` and a smoke run inside, and brings the results
# back to the host. Entry point: `make test-vm`.
#
# Stages (each timed): deps, download (kernel .deb), static build, initramfs,
# boot+run (per kernel). Results land in $OUT/<kernel>/ (console.log plus one
# file per marked section, summary.json). Exit non-zero if any kernel's run
# failed (markers missing, a step's exit code non-zero, no exec/open event).
#
# Environment:
#   SENSOR_VM_KERNELS   apt packages to boot, space-separated (default linux-image-amd64)
#   SENSOR_VM_CACHE     where kernel .debs are kept (default /var/cache/sensor-vm)
#   SENSOR_VM_TIMEOUT   hard wall-clock limit per QEMU boot, seconds (default 300)
#   SENSOR_VM_STEP_TIMEOUT  limit per step inside the guest, seconds (default 120)
#   SENSOR_VM_SKIP_BUILD=1  reuse the existing static binary
#   CARGO_TARGET_DIR    default /work/main/target-vm (repo-relative: $ROOT/target-vm)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KERNELS=${SENSOR_VM_KERNELS:-linux-image-amd64}
CACHE=${SENSOR_VM_CACHE:-/var/cache/sensor-vm}
QEMU_TIMEOUT=${SENSOR_VM_TIMEOUT:-300}
STEP_TIMEOUT=${SENSOR_VM_STEP_TIMEOUT:-120}
export CARGO_TARGET_DIR=${SENSOR_VM_TARGET_DIR:-$ROOT/target-vm}
TRIPLE=x86_64-unknown-linux-gnu
OUT=$CARGO_TARGET_DIR/vm
export PATH=$HOME/.cargo/bin:$PATH

declare -a TIMES=()
now() { date +%s%N; }
timed() { # label cmd...
  local label=$1 t0 t1 rc=0
  shift
  t0=$(now)
  "$@" || rc=$?
  t1=$(now)
  TIMES+=("$(printf '%-34s %7s s%s' "$label" "$(((t1 - t0) / 1000000000)).$((((t1 - t0) / 100000000) % 10))" "$([[ $rc -ne 0 ]] && echo "  (exit $rc)")")")
  return $rc
}
print_times() {
  echo
  echo "== wall time per stage =="
  printf '  %s\n' "${TIMES[@]}"
}
trap print_times EXIT

mkdir -p "$OUT"

# --- deps -------------------------------------------------------------------
timed "deps (apt-get if missing)" "$HERE/deps.sh"

# --- download ---------------------------------------------------------------
declare -A VMLINUZ=()
fetch_all() {
  local k
  for k in $KERNELS; do
    VMLINUZ[$k]=$(SENSOR_VM_KERNEL_META=$k "$HERE/fetch-kernel.sh" "$CACHE")
    echo "vm: $k -> ${VMLINUZ[$k]}" >&2
  done
}
timed "download kernel(s)" fetch_all

# --- static build -----------------------------------------------------------
BIN=$CARGO_TARGET_DIR/$TRIPLE/release/sensor
build_static() {
  if [[ ${SENSOR_VM_SKIP_BUILD:-0} == 1 && -x $BIN ]]; then
    echo "vm: SENSOR_VM_SKIP_BUILD=1, reusing $BIN" >&2
  else
    # --target makes RUSTFLAGS apply to the sensor only, not to build scripts
    # (which run on the host and stay dynamically linked)
    (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release -p sensor --target "$TRIPLE")
  fi
  # a static binary has no program interpreter (PT_INTERP) and no NEEDED libs
  if readelf -l "$BIN" | grep -q INTERP || readelf -d "$BIN" | grep -q NEEDED; then
    echo "vm: $BIN is not statically linked:" >&2
    readelf -d "$BIN" | grep NEEDED >&2 || true
    return 1
  fi
}
timed "static build (cargo)" build_static

# --- initramfs ----------------------------------------------------------------
INITRD=$OUT/initramfs.cpio.gz
make_initramfs() {
  local stage=$OUT/initramfs
  rm -rf "$stage"
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc}
  cp /bin/busybox "$stage/bin/busybox"
  ln -s busybox "$stage/bin/sh"
  # no debug info in the guest: smaller initramfs, faster boot under TCG
  strip --strip-debug -o "$stage/bin/sensor" "$BIN"
  install -m 0755 "$HERE/init.sh" "$stage/init"
  # the kernel opens /dev/console for init's stdio before init can mount devtmpfs
  mknod -m 0600 "$stage/dev/console" c 5 1
  mknod -m 0666 "$stage/dev/null" c 1 3
  echo "root:x:0:0:root:/:/bin/sh" >"$stage/etc/passwd"
  echo "root:x:0:" >"$stage/etc/group"
  (cd "$stage" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 >"$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  echo "vm: initramfs $INITRD ($(du -h "$INITRD" | cut -f1))" >&2
}
timed "initramfs" make_initramfs

# --- boot + run ---------------------------------------------------------------
# the host kernel's probe too, for the side-by-side (not a pass/fail criterion)
if [[ $(id -u) -eq 0 ]]; then
  "$BIN" probe --json >"$OUT/host-probe.json" 2>"$OUT/host-probe.stderr" || true
fi

fail=0
declare -a SUMMARIES=()
for k in $KERNELS; do
  dir=$OUT/$k
  rm -rf "$dir" && mkdir -p "$dir"
  boot() {
    # -accel tcg: KVM exists here but nested boots hang in early boot.
    # `timeout` is the hard limit; -no-reboot + panic=-1 turn a guest panic
    # (e.g. init dying) into a QEMU exit instead of a reboot loop.
    timeout --kill-after=10 "$QEMU_TIMEOUT" \
      qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -nographic -no-reboot \
      -kernel "${VMLINUZ[$k]}" -initrd "$INITRD" \
      -append "console=ttyS0 lsm=lockdown,capability,landlock,bpf panic=-1 quiet sensor_vm.timeout=$STEP_TIMEOUT" \
      </dev/null >"$dir/console.log" 2>"$dir/qemu.stderr"
  }
  qrc=0
  timed "boot+run $k" boot || qrc=$?
  if [[ $qrc -eq 124 || $qrc -eq 137 ]]; then
    echo "vm: $k: QEMU killed after the hard timeout of ${QEMU_TIMEOUT}s" >&2
  elif [[ $qrc -ne 0 ]]; then
    echo "vm: $k: QEMU exited $qrc: $(cat "$dir/qemu.stderr")" >&2
  fi
  set +e
  SUMMARIES+=("$(python3 "$HERE/extract.py" "$dir/console.log" "$dir" "$k ($(basename "${VMLINUZ[$k]}"))" 2>&1)")
  erc=$?
  set -e
  [[ $erc -ne 0 || $qrc -ne 0 ]] && fail=1
done

echo
echo "==================== sensor VM kernel matrix ===================="
if [[ -s $OUT/host-probe.json ]]; then
  echo "== host ($(uname -r)) =="
  python3 "$HERE/extract.py" --probe-json "$OUT/host-probe.json" host || true
fi
for s in "${SUMMARIES[@]}"; do
  echo "$s"
done
echo "results: $OUT/<kernel>/ (console.log, probe.json, run.stderr, events.jsonl, dmesg, summary.json)"
if [[ $fail -ne 0 ]]; then
  echo "test-vm: FAILED" >&2
  exit 1
fi
echo "test-vm: OK"
