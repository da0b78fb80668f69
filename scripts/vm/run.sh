#!/usr/bin/env bash
# VM test runner (issue 6, kernel matrix): boots Debian's own kernel (6.1,
# which has BPF trampolines, BPF LSM and kprobes; the build machines' kernel
# has none of them) under QEMU with software emulation, on the host's own
# root filesystem, and runs inside it: `sensor probe --json` and the
# sensor's kernel e2e test binaries. Results come back through a shared
# directory; a failed step fails the run. Entry points:
# `make test-vm`, and `make test` after the host's tests.
#
# Why the host's root filesystem (virtme-ng style: 9p, read-only, tmpfs on
# the writable places) instead of a busybox initramfs with static binaries:
# the e2e tests exec real tools (bash, dash, python3, setpriv, unshare, ip)
# and assert Debian paths (/usr/bin/echo), and they run the sensor binary the
# host's `cargo build` already made. So the guest runs the very binaries the
# host tests ran, and the VM stage needs no second (static, release) build,
# which cost ~15 min cold. The initramfs only loads the guest kernel's virtio
# and 9p modules and switches root (init.sh).
#
# Stages (each timed): deps, download (kernel .deb, cached), build (the
# debug sensor + the e2e test binaries: a no-op after `make test`'s build),
# initramfs, boot+run per kernel, report. Results: $OUT/<kernel>/ (console.log,
# share/: probe.json, steps, test-*.log, dmesg.txt; summary.json).
#
# Environment:
#   SENSOR_VM_KERNELS   apt packages to boot, space-separated (default linux-image-amd64)
#   SENSOR_VM_CACHE     where kernel .debs are kept (default /var/cache/sensor-vm)
#   SENSOR_VM_TESTS     e2e test targets to run inside (default "kernel_events security_syscalls")
#   SENSOR_VM_EXPECT    mechanisms the guest kernel must get, checked by the
#                       e2e test and the report (default "file.open=fexit connect.unix=fexit")
#   SENSOR_VM_TIMEOUT   hard wall-clock limit per QEMU boot, seconds (default 2400)
#   SENSOR_VM_STEP_TIMEOUT  limit per step inside the guest, seconds (default 1200)
#   SENSOR_VM_CPUS / SENSOR_VM_MEM  guest CPUs (default: host CPUs, max 4) / MiB (default 2048)
#   CARGO_TARGET_DIR    as for cargo (default $ROOT/target); results go to its vm/ dir
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KERNELS=${SENSOR_VM_KERNELS:-linux-image-amd64}
CACHE=${SENSOR_VM_CACHE:-/var/cache/sensor-vm}
TESTS=${SENSOR_VM_TESTS:-kernel_events security_syscalls}
EXPECT=${SENSOR_VM_EXPECT:-file.open=fexit connect.unix=fexit}
QEMU_TIMEOUT=${SENSOR_VM_TIMEOUT:-2400}
STEP_TIMEOUT=${SENSOR_VM_STEP_TIMEOUT:-1200}
CPUS=${SENSOR_VM_CPUS:-$(($(nproc) > 4 ? 4 : $(nproc)))}
MEM=${SENSOR_VM_MEM:-2048}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/vm
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
  echo "== VM stage: wall time per step =="
  printf '  %s\n' "${TIMES[@]}"
}
trap print_times EXIT

[[ $(id -u) -eq 0 ]] || { echo "test-vm: must run as root (QEMU exports / and the tests load eBPF)" >&2; exit 1; }
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

# --- build --------------------------------------------------------------------
# The debug build `make test` made (nothing to do after it) plus the test
# binaries; their paths come from cargo's JSON messages.
SENSOR_BIN=$TARGET/debug/sensor
TEST_BINS=
build() {
  local args=() t
  for t in $TESTS; do args+=(--test "$t"); done
  (cd "$ROOT" && cargo build -p sensor)
  TEST_BINS=$(cd "$ROOT" && cargo test -p sensor-e2e --no-run --message-format=json "${args[@]}" |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' | tr '\n' ' ')
  [[ -x $SENSOR_BIN ]] || { echo "vm: $SENSOR_BIN missing after the build" >&2; return 1; }
  [[ $(wc -w <<<"$TEST_BINS") -eq $(wc -w <<<"$TESTS") ]] ||
    { echo "vm: expected test binaries for '$TESTS', cargo gave '$TEST_BINS'" >&2; return 1; }
  echo "vm: sensor $SENSOR_BIN; tests $TEST_BINS" >&2
}
timed "build (cargo, debug)" build

# --- initramfs (per kernel: it carries that kernel's modules) ------------------
# The modules to load, dependencies first, from each module's own `depends`.
module_order() { # modules_dir names...
  local dir=$1 seen=" " out=()
  shift
  add() {
    local name=$1 f dep
    [[ $seen == *" $name "* ]] && return 0
    seen+="$name "
    f=$(find "$dir" -name "$name.ko" -o -name "$(tr _ - <<<"$name").ko" | head -n1)
    [[ -n $f ]] || { echo "vm: module $name not in $dir" >&2; return 1; }
    for dep in $(modinfo -F depends "$f" | tr ',' ' '); do add "$dep" || return 1; done
    out+=("${f#"$dir"/}")
  }
  for n in "$@"; do add "$n" || return 1; done
  printf '%s\n' "${out[@]}"
}
make_initramfs() { # kernel initrd
  local k=$1 initrd=$2 stage=$OUT/initramfs-$1 moddir mods
  moddir=$(ls -d "$(dirname "${VMLINUZ[$k]}")"/../lib/modules/*)
  rm -rf "$stage"
  mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lib/modules}
  cp /bin/busybox "$stage/bin/busybox"
  ln -s busybox "$stage/bin/sh"
  mods=$(module_order "$moddir" virtio_pci 9pnet_virtio 9p)
  (cd "$moddir" && cp --parents $mods "$stage/lib/modules/")
  echo "$mods" >"$stage/modules.order"
  install -m 0755 "$HERE/init.sh" "$stage/init"
  # the kernel opens /dev/console for init's stdio before init can mount devtmpfs
  mknod -m 0600 "$stage/dev/console" c 5 1
  (cd "$stage" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  echo "vm: initramfs $initrd ($(du -h "$initrd" | cut -f1)): $(tr '\n' ' ' <<<"$mods")" >&2
}

# --- host side of the side-by-side -------------------------------------------
"$SENSOR_BIN" probe --json >"$OUT/host-probe.json" 2>"$OUT/host-probe.stderr" ||
  echo "vm: sensor probe on the host failed (see $OUT/host-probe.stderr)" >&2

# --- boot + run ---------------------------------------------------------------
fail=0
declare -a REPORTS=()
for k in $KERNELS; do
  dir=$OUT/$k
  share=$dir/share
  rm -rf "$dir" && mkdir -p "$share"
  initrd=$OUT/initramfs-$k.cpio.gz
  timed "initramfs $k" make_initramfs "$k" "$initrd"
  cat >"$share/plan.env" <<EOF
SENSOR_BIN='$SENSOR_BIN'
TESTS='$TEST_BINS'
TEST_CWD='$ROOT/tests'
STEP_TIMEOUT='$STEP_TIMEOUT'
EXPECT_MECHANISMS='$EXPECT'
EOF
  boot() {
    # -accel tcg: KVM exists here but nested boots hang in early boot.
    # The host's / is exported read-only (multidevs=remap: it spans several
    # filesystems); the result directory read-write. `timeout` is the hard
    # limit; -no-reboot + panic=-1 turn a guest panic (e.g. the guest script
    # dying as PID 1) into a QEMU exit instead of a reboot loop.
    timeout --kill-after=10 "$QEMU_TIMEOUT" \
      qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$CPUS" -m "$MEM" \
      -nographic -no-reboot -nic none \
      -kernel "${VMLINUZ[$k]}" -initrd "$initrd" \
      -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
      -virtfs "local,path=$share,mount_tag=sensorout,security_model=none" \
      -append "console=ttyS0 lsm=lockdown,capability,landlock,bpf panic=-1 quiet sensor_vm.guest=$HERE/guest.sh sensor_vm.keep=$ROOT,$TARGET" \
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
  REPORTS+=("$(python3 "$HERE/report.py" "$dir" "$k ($(basename "${VMLINUZ[$k]}"))" "$EXPECT" 2>&1)")
  rrc=$?
  set -e
  [[ $rrc -ne 0 || $qrc -ne 0 ]] && fail=1
done

echo
echo "==================== sensor kernel matrix ===================="
python3 "$HERE/report.py" --probe-json "$OUT/host-probe.json" "host ($(uname -r))" || true
for r in "${REPORTS[@]}"; do
  echo "$r"
done
echo "results: $OUT/<kernel>/ (console.log, share/: probe.json, steps, test-*.log, dmesg.txt)"
if [[ $fail -ne 0 ]]; then
  echo "test-vm: FAILED" >&2
  exit 1
fi
echo "test-vm: OK"
