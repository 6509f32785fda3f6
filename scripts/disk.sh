#!/usr/bin/env bash
# logwarden check script: disk usage per mount.
#
# Usage: disk.sh [MOUNT...]     (no mount: every real filesystem df lists)
# Prints, per mount (labels mount, fstype):
#   disk_size_bytes, disk_used_bytes, disk_avail_bytes,
#   disk_used_percent   (used / (used + available), as df counts it: reserved blocks are not free),
#   disk_inodes_used_percent (absent on filesystems without inode counts, e.g. btrfs).
# Needs: bash, coreutils (df). Read-only. Exit 1 when a named mount is not found.
# What the investigator may pass (see logwarden's src/scripts.rs):
# logwarden-args: arg* MOUNT /[A-Za-z0-9._@+/-]{0,200}
set -euo pipefail
args=(-B1 --output=target,fstype,size,used,avail,itotal,iused -x tmpfs -x devtmpfs -x squashfs)
if [ "$#" -gt 0 ]; then
    for m in "$@"; do
        [ -d "$m" ] || { echo "disk.sh: no such mount point: $m" >&2; exit 1; }
    done
    args=(-B1 --output=target,fstype,size,used,avail,itotal,iused -- "$@")
fi
echo "# HELP disk_used_percent Used space of the filesystem, percent (used / (used + available))"
echo "# TYPE disk_used_percent gauge"
df "${args[@]}" | awk 'NR > 1 {
    mount = $1; gsub(/\\/, "\\\\", mount); gsub(/"/, "\\\"", mount)
    l = "{mount=\"" mount "\",fstype=\"" $2 "\"}"
    if (seen[l]++) next
    printf "disk_size_bytes%s %.0f\n", l, $3
    printf "disk_used_bytes%s %.0f\n", l, $4
    printf "disk_avail_bytes%s %.0f\n", l, $5
    if ($4 + $5 > 0) printf "disk_used_percent%s %.3f\n", l, 100 * $4 / ($4 + $5)
    if ($6 + 0 > 0) printf "disk_inodes_used_percent%s %.3f\n", l, 100 * $7 / $6
}'
