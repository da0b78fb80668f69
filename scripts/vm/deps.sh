#!/usr/bin/env bash
# Host packages the VM runner needs: QEMU (software emulation), a static
# busybox for the initramfs, cpio to pack it. Installed with apt-get only when
# missing (apt-get update first). The guest kernel is NOT installed here: see
# fetch-kernel.sh, which only downloads and unpacks its .deb.
set -euo pipefail

PACKAGES=(
  qemu-system-x86   # qemu-system-x86_64 -accel tcg
  busybox-static    # /bin/busybox in the initramfs (shell, mount, poweroff)
  cpio              # pack the initramfs (newc format)
  kmod              # modinfo: the order to load the guest kernel's modules in
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# extract.py needs a python3; any on PATH will do
command -v python3 >/dev/null || missing+=(python3)

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "vm/deps: missing packages: ${missing[*]}; run as root (sudo make test-vm)" >&2
    exit 1
  fi
  echo "vm/deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in qemu-system-x86_64 cpio gzip modinfo python3; do
  command -v "$tool" >/dev/null || { echo "vm/deps: $tool not found after install" >&2; exit 1; }
done
[[ -x /bin/busybox ]] || { echo "vm/deps: /bin/busybox missing (busybox-static)" >&2; exit 1; }
