#!/bin/sh
# PID 1 of the test VM's initramfs (busybox sh). Loads the guest kernel's own
# virtio and 9p modules (listed in dependency order in /modules.order; the
# Debian kernel builds them as modules), mounts the host's root filesystem
# read-only over 9p (QEMU -virtfs, tag "hostroot") and switches root to it,
# handing over to the guest script named by sensor_vm.guest= on the kernel
# command line (scripts/vm/guest.sh, read from the host's tree).
#
# Any failure here prints a line starting with "sensor-vm init:" and powers
# off; the host then finds no `done` file and fails the run with the console.

PATH=/bin
export PATH
/bin/busybox --install -s /bin

fail() {
  echo "sensor-vm init: $*"
  poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

GUEST=
for w in $(cat /proc/cmdline); do
  case $w in sensor_vm.guest=*) GUEST=${w#sensor_vm.guest=} ;; esac
done
[ -n "$GUEST" ] || fail "no sensor_vm.guest= on the kernel command line"

for m in $(cat /modules.order); do
  insmod "/lib/modules/$m" || fail "insmod $m failed"
done

mkdir -p /newroot
# cache=loose: the guest may cache the read-only host tree (binaries start
# much faster under emulation); msize: fewer round trips per read
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /newroot ||
  fail "cannot mount the host root filesystem (9p tag hostroot)"
[ -x "/newroot$GUEST" ] || fail "guest script $GUEST not found in the host root"
[ -x /newroot/bin/bash ] || fail "no /bin/bash in the host root"

umount /proc /sys /dev 2>/dev/null
exec switch_root /newroot /bin/bash "$GUEST"
