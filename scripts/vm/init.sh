#!/bin/sh
# PID 1 of the test VM (busybox sh). Mounts the pseudo filesystems, runs
# `sensor probe --json` and a short smoke run, prints every result between
# markers on the serial console, and powers off. The host side (extract.py)
# reads the markers; a missing @@SENSOR-VM-DONE@@ means the guest died.
#
# Marker grammar (one per line):
#   @@SENSOR-VM-BEGIN <name>@@ ... @@SENSOR-VM-END <name>@@   a captured file
#   @@SENSOR-VM-STEP <name> rc=<n>@@                          a step's exit code
#   @@SENSOR-VM-DONE@@                                        the script finished
#
# Everything the guest runs is bounded by `timeout`, so a hang inside ends
# in a failed step rather than the host's hard QEMU timeout.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run
/bin/busybox --install -s

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# quiet console: kernel messages would interleave with the captured output;
# the full kernel log is captured as its own section at the end
echo 1 >/proc/sys/kernel/printk
mkdir -p /sys/fs/bpf /sys/kernel/tracing /sys/kernel/security /sys/kernel/debug /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t securityfs securityfs /sys/kernel/security
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
hostname sensor-vm
ip link set lo up 2>/dev/null

# Read from /proc/cmdline: sensor_vm.timeout=SECS bounds each guest step.
STEP_TIMEOUT=120
for w in $(cat /proc/cmdline); do
  case $w in sensor_vm.timeout=*) STEP_TIMEOUT=${w#sensor_vm.timeout=} ;; esac
done

section() { # name file
  echo "@@SENSOR-VM-BEGIN $1@@"
  if [ -f "$2" ]; then cat "$2"; fi
  echo
  echo "@@SENSOR-VM-END $1@@"
}
step() { # name rc
  echo "@@SENSOR-VM-STEP $1 rc=$2@@"
}

echo "@@SENSOR-VM-START@@"

{
  echo "kernel: $(uname -r)"
  echo "cmdline: $(cat /proc/cmdline)"
  echo "lsm: $(cat /sys/kernel/security/lsm 2>&1)"
  echo "btf: $(ls -l /sys/kernel/btf/vmlinux 2>&1)"
  echo "mounts:"
  cat /proc/mounts
} >/tmp/env.txt 2>&1
section env /tmp/env.txt

# --- 1. probe ---------------------------------------------------------------
timeout "$STEP_TIMEOUT" /bin/sensor probe --json >/tmp/probe.json 2>/tmp/probe.stderr
rc=$?
section probe.json /tmp/probe.json
section probe.stderr /tmp/probe.stderr
step probe $rc

# --- 2. smoke run -----------------------------------------------------------
# The sensor's --duration-secs clock starts once it is ready (after loading);
# wait for "sensor ready" on its stderr, then make an exec and an open.
SMOKE_FILE=/tmp/sensor-vm-smoke-touched
RUN_TIMEOUT=$((STEP_TIMEOUT + 5))
timeout "$RUN_TIMEOUT" /bin/sensor run --no-audit --no-policy --events-out /tmp/ev.jsonl --duration-secs 5 \
  >/tmp/run.stdout 2>/tmp/run.stderr &
pid=$!
ready=no
i=0
while [ $i -lt $((STEP_TIMEOUT * 5)) ]; do
  if grep -q "sensor ready" /tmp/run.stderr 2>/dev/null; then ready=yes; break; fi
  kill -0 $pid 2>/dev/null || break
  sleep 0.2
  i=$((i + 1))
done
if [ $ready = yes ]; then
  /bin/true
  touch "$SMOKE_FILE"
fi
wait $pid
rc=$?
echo "ready=$ready smoke_file=$SMOKE_FILE exec=/bin/true" >/tmp/run.info
section run.info /tmp/run.info
section run.stderr /tmp/run.stderr
section run.stdout /tmp/run.stdout
section events.jsonl /tmp/ev.jsonl
step run $rc

# --- kernel log (verifier/BPF messages, LSM init lines) ---------------------
dmesg >/tmp/dmesg.txt 2>&1
section dmesg /tmp/dmesg.txt

echo "@@SENSOR-VM-DONE@@"
poweroff -f
