#!/usr/bin/env bash
# Downloads Debian's own kernel (linux-image-amd64 -> linux-image-6.1.0-N-amd64)
# with `apt-get download` into a cache dir and unpacks it there with
# dpkg-deb -x; nothing goes into the host's /boot or /lib/modules.
# Prints the path of the vmlinuz on stdout; the modules the VM needs (virtio,
# 9p and what they depend on) are unpacked next to it, under lib/modules/.
#
#   fetch-kernel.sh [CACHE_DIR]     (default $SENSOR_VM_CACHE or /var/cache/sensor-vm)
set -euo pipefail

CACHE=${1:-${SENSOR_VM_CACHE:-/var/cache/sensor-vm}}
META=${SENSOR_VM_KERNEL_META:-linux-image-amd64}
mkdir -p "$CACHE/debs" "$CACHE/kernel"

# the versioned image package the meta package points at, e.g. linux-image-6.1.0-56-amd64
resolve() {
  apt-cache depends "$META" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
pkg=$(resolve)
if [[ -z $pkg ]]; then
  echo "vm/fetch-kernel: apt does not know $META; running apt-get update" >&2
  apt-get update -qq
  pkg=$(resolve)
fi
[[ -n $pkg ]] || { echo "vm/fetch-kernel: cannot resolve $META to a linux-image package" >&2; exit 1; }

ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
unpacked="$CACHE/kernel/$pkg-$ver"
vmlinuz=$(ls "$unpacked"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
# an unpack from before the VM booted the host's root has no modules
if [[ -n $vmlinuz ]] && ! ls "$unpacked"/lib/modules/*/kernel/fs/9p/9p.ko* >/dev/null 2>&1; then
  vmlinuz=
fi
if [[ -z $vmlinuz ]]; then
  deb=$(ls "$CACHE/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
  if [[ -z $deb ]]; then
    echo "vm/fetch-kernel: apt-get download $pkg=$ver" >&2
    # apt-get download writes into the current directory; as root it drops to
    # the _apt user, which must be able to write there.
    (cd "$CACHE/debs" && chmod 0777 . && apt-get download -q "$pkg=$ver" >&2) || {
      echo "vm/fetch-kernel: download failed; trying apt-get update once" >&2
      apt-get update -qq
      (cd "$CACHE/debs" && apt-get download -q "$pkg=$ver" >&2)
    }
    deb=$(ls "$CACHE/debs/${pkg}_"*.deb | head -n1)
  fi
  rm -rf "$unpacked.tmp" && mkdir -p "$unpacked.tmp"
  # ./boot, and the module trees the initramfs takes its modules from:
  # serial, BPF, BTF, bpffs, tracefs and securityfs are built into Debian's
  # kernel, but virtio-pci, 9p (and netfs, fscache) are modules
  # (the .deb has no modules.dep: depmod writes it at install; run.sh
  # orders the modules from their own `depends` field instead)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$unpacked.tmp" --wildcards ./boot \
    './lib/modules/*/kernel/fs/9p' './lib/modules/*/kernel/fs/netfs' \
    './lib/modules/*/kernel/fs/fscache' './lib/modules/*/kernel/net/9p' './lib/modules/*/kernel/drivers/virtio'
  ls "$unpacked.tmp"/lib/modules/*/kernel/fs/9p/9p.ko* >/dev/null ||
    { echo "vm/fetch-kernel: $deb has no 9p module" >&2; exit 1; }
  rm -rf "$unpacked" && mv "$unpacked.tmp" "$unpacked"
  vmlinuz=$(ls "$unpacked"/boot/vmlinuz-* | head -n1)
fi
echo "$vmlinuz"
