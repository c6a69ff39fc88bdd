#!/usr/bin/env bash
# Builds (once) the root filesystem of the test VM: Debian bookworm with systemd as PID 1, Debian's kernel
# and initramfs, and a `user` account. Cached in $1 (default .cache/vm/rootfs); a finished tree has
# .envd-vm-ready. The apt mirror is the one this machine's apt uses for bookworm/main, read at run time.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.cache/vm/rootfs}
[ -f "$out/.envd-vm-ready" ] && exit 0
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
mirror=$(apt-cache policy | awk '$3 == "bookworm/main" && $4 == "amd64" {print $2; exit}')
if [ -z "$mirror" ]; then
  apt-get update -qq >/dev/null
  mirror=$(apt-cache policy | awk '$3 == "bookworm/main" && $4 == "amd64" {print $2; exit}')
fi
[ -n "$mirror" ] || { echo "no bookworm/main source in this machine's apt configuration" >&2; exit 1; }
rm -rf "$out.tmp"
mkdir -p "$(dirname "$out")"
echo "debootstrap bookworm from $mirror into $out (about 2 minutes)" >&2
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,udev,dbus,initramfs-tools,iproute2,procps,util-linux,psmisc,kmod \
  bookworm "$out.tmp" "$mirror" >"$out.log" 2>&1 || { tail -20 "$out.log" >&2; exit 1; }
r=$out.tmp
# Debian's kernel, with an initramfs of only what QEMU's virtio disk needs (MODULES=most takes
# minutes to build and is not needed here).
mkdir -p "$r/etc/initramfs-tools/conf.d"
echo MODULES=list >"$r/etc/initramfs-tools/conf.d/envd-vm.conf"
printf 'virtio_pci\nvirtio_blk\next4\n' >>"$r/etc/initramfs-tools/modules"
mount -t proc proc "$r/proc"
trap 'umount "$r/proc" 2>/dev/null || true' EXIT
chroot "$r" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-image-amd64 >>"$out.log" 2>&1 ||
  { tail -20 "$out.log" >&2; exit 1; }
umount "$r/proc"
echo envd-vm >"$r/etc/hostname"
printf '/dev/vda / ext4 rw,relatime 0 1\n' >"$r/etc/fstab"
mkdir -p "$r/etc/systemd/network"
printf '[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n' >"$r/etc/systemd/network/20-wired.network"
chroot "$r" systemctl enable systemd-networkd >/dev/null 2>&1
chroot "$r" systemctl mask systemd-timesyncd apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service >/dev/null 2>&1 || true
chroot "$r" useradd --create-home --home-dir /home/user --shell /bin/bash user
chroot "$r" passwd -d root >/dev/null
# A root shell on the serial console, for debugging a boot by hand.
mkdir -p "$r/etc/systemd/system/serial-getty@ttyS0.service.d"
printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear %%I 115200 linux\n' \
  >"$r/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
rm -f "$r"/var/cache/apt/archives/*.deb
touch "$r/.envd-vm-ready"
mv "$r" "$out"
