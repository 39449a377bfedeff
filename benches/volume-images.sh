#!/usr/bin/env bash
# benches/volume-images.sh — build the images benches/volume.sh uses (needs root, debootstrap,
# network access to deb.debian.org, and the kernel source in /var/tmp/linux-src-cache).
set -euo pipefail
IMAGES=${IMAGES:-/var/tmp/rime-volbench}; mkdir -p "$IMAGES"; cd "$IMAGES"
if [ ! -f day0.img ]; then
  rm -f day0.tmp; truncate -s 3G day0.tmp; mkfs.ext4 -q day0.tmp
  mkdir -p m; mount -o loop day0.tmp m
  debootstrap --variant=minbase bookworm m http://deb.debian.org/debian > debootstrap.log 2>&1 || { umount m; exit 1; }
  umount m; mv day0.tmp day0.img
fi
if [ ! -f day1.img ]; then
  cp --sparse=always day0.img day1.tmp
  mount -o loop day1.tmp m
  cp /etc/resolv.conf m/etc/resolv.conf
  mount -t proc proc m/proc
  chroot m apt-get update > apt1.log 2>&1
  chroot m env DEBIAN_FRONTEND=noninteractive apt-get install -y python3 perl >> apt1.log 2>&1 || { umount m/proc; umount m; exit 1; }
  chroot m apt-get clean
  umount m/proc; umount m; mv day1.tmp day1.img
fi
if [ ! -f dense.img ]; then
  cp --sparse=always day0.img dense.tmp
  mount -o loop dense.tmp m
  cp -a /var/tmp/linux-src-cache/linux-source-6.1 m/usr/src/
  umount m; mv dense.tmp dense.img
fi
ls -ls *.img
