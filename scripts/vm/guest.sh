#!/bin/bash
# Runs inside the test VM, on the host's own root filesystem (9p, read-only),
# after the initramfs (init.sh) has switched root to it. Sets up what a
# booted system would have, then runs the plan the host wrote into the shared
# result directory: `sensor probe --json` and the sensor's kernel e2e test
# binaries (which start `sensor run` themselves). Every result is a file in that
# directory (mounted read-write from the host); the host reads them after
# QEMU exits (report.py). The last file written is `done`: without it the
# host knows the guest died.
#
#   guest.sh     (the result directory is the 9p tag "sensorout", mounted
#                 at /run/sensor-vm)
#
# plan.env in it (written by run.sh) sets SENSOR_BIN, TESTS (test
# binaries, each run as its own step), TEST_CWD, STEP_TIMEOUT and
# EXPECT_MECHANISMS.
set -u
SHARE=/run/sensor-vm
# PID 1 without an init system: power off through the kernel directly
off() {
  sync
  /bin/busybox poweroff -f 2>/dev/null
  echo 1 >/proc/sys/kernel/sysrq
  echo o >/proc/sysrq-trigger
}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The root is read-only: the writable places a test run needs are tmpfs.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm 2>/dev/null
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# The checkout and the cargo target dir (sensor_vm.keep=DIR,DIR on the kernel
# command line) may live under one of those, e.g. a CI clone in /tmp: a
# second view of the host root (on devtmpfs, which is writable) lets them be
# bound back on top of the tmpfs.
KEEP=
for w in $(cat /proc/cmdline); do
  case $w in sensor_vm.keep=*) KEEP=$(tr , ' ' <<<"${w#sensor_vm.keep=}") ;; esac
done
mkdir -p /dev/.hostroot
mount --bind / /dev/.hostroot
for d in /tmp /run /var/tmp /root /var/lib/sensor /var/log; do
  [ -d "$d" ] || continue
  mount -t tmpfs tmpfs "$d"
  for k in $KEEP; do
    case $k/ in
      "$d"/*)
        mkdir -p "$k"
        mount --bind "/dev/.hostroot$k" "$k" || echo "sensor-vm guest: cannot keep $k visible"
        ;;
    esac
  done
done
mkdir -p $SHARE
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 sensorout $SHARE || {
  echo "sensor-vm guest: cannot mount the result directory (9p tag sensorout)"
  off
}
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t securityfs securityfs /sys/kernel/security
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo 1 >/proc/sys/kernel/printk
hostname sensor-vm
ip link set lo up
export HOME=/root TMPDIR=/tmp LANG=C.UTF-8

# shellcheck disable=SC1091
. "$SHARE/plan.env"

step() { # name rc seconds
  echo "$1 $2 $3" >>"$SHARE/steps"
  echo "@@SENSOR-VM-STEP $1 rc=$2 (${3}s)@@"
}
run_step() { # name logfile cmd...
  local name=$1 log=$2 t0 rc
  shift 2
  t0=$(date +%s)
  timeout --kill-after=10 "$STEP_TIMEOUT" "$@" >"$log" 2>&1
  rc=$?
  step "$name" "$rc" "$(($(date +%s) - t0))"
}

{
  echo "kernel: $(uname -r)"
  echo "cmdline: $(cat /proc/cmdline)"
  echo "lsm: $(cat /sys/kernel/security/lsm)"
  echo "cpus: $(nproc)"
  echo "sensor: $SENSOR_BIN"
  echo "tests: $TESTS"
  echo "mounts:"
  cat /proc/mounts
} >"$SHARE/env.txt" 2>&1
echo "@@SENSOR-VM-START@@"

# 1. what the kernel offers, and the mechanism each capability gets
t0=$(date +%s)
timeout "$STEP_TIMEOUT" "$SENSOR_BIN" probe --json >"$SHARE/probe.json" 2>"$SHARE/probe.stderr"
step probe $? $(($(date +%s) - t0))

# 1b. the same with the preferred variants off: the tracepoint programs they
# replace must load under this kernel's verifier too (a kernel like this one
# without trampolines would use them)
t0=$(date +%s)
SENSOR_KERNEL_PREFER=tracepoint timeout "$STEP_TIMEOUT" "$SENSOR_BIN" probe --json \
  >"$SHARE/probe-tracepoint.json" 2>"$SHARE/probe-tracepoint.stderr"
step probe-tracepoint $? $(($(date +%s) - t0))

# 2. the kernel e2e tests, one binary per step (they run the sensor themselves)
export SENSOR_BIN SENSOR_E2E_EXPECT_MECHANISMS="$EXPECT_MECHANISMS" RUST_BACKTRACE=1
cd "$TEST_CWD" || exit 1
for t in $TESTS; do
  name=$(basename "$t" | sed 's/-[0-9a-f]*$//')
  run_step "test:$name" "$SHARE/test-$name.log" "$t" --test-threads="$(nproc)"
done

dmesg >"$SHARE/dmesg.txt" 2>&1
echo ok >"$SHARE/done"
sync
echo "@@SENSOR-VM-DONE@@"
off
