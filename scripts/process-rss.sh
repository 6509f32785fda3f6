#!/usr/bin/env bash
# logwarden check script: resident memory of named processes.
#
# Usage: process-rss.sh NAME...     (process names as pgrep -x matches them)
# Prints, per name: process_count{process="NAME"} and process_rss_bytes{process="NAME"}
#   (the sum of VmRSS over its processes; 0 when none runs).
# Needs: bash, procps (pgrep), /proc. Read-only.
# What the investigator may pass (see logwarden's src/scripts.rs):
# logwarden-args: arg NAME [A-Za-z0-9_][A-Za-z0-9_.@:+-]{0,31}
# logwarden-args: arg* NAME [A-Za-z0-9_][A-Za-z0-9_.@:+-]{0,31}
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: process-rss.sh NAME..." >&2; exit 2; }
command -v pgrep >/dev/null || { echo "process-rss.sh: pgrep not found (install procps)" >&2; exit 1; }
echo "# HELP process_rss_bytes Resident memory of all processes of that name"
for name in "$@"; do
    count=0
    rss=0
    for pid in $(pgrep -x -- "$name" || true); do
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$kb" ] || continue
        count=$((count + 1))
        rss=$((rss + kb * 1024))
    done
    label=${name//\\/\\\\}
    label=${label//\"/\\\"}
    echo "process_count{process=\"$label\"} $count"
    echo "process_rss_bytes{process=\"$label\"} $rss"
done
