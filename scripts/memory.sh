#!/usr/bin/env bash
# logwarden check script: memory and swap.
#
# Usage: memory.sh
# Prints (from /proc/meminfo): mem_total_bytes, mem_available_bytes, mem_used_percent
#   (100 × (1 − MemAvailable / MemTotal): page cache that can be dropped is not "used"),
#   swap_total_bytes, swap_used_bytes, swap_used_percent (0 without swap).
# Needs: bash, awk, /proc. Read-only.
# logwarden-args: none
set -euo pipefail
[ "$#" -eq 0 ] || { echo "usage: memory.sh (no arguments)" >&2; exit 2; }
awk '
    /^MemTotal:/ { mt = $2 * 1024 }
    /^MemAvailable:/ { ma = $2 * 1024 }
    /^SwapTotal:/ { st = $2 * 1024 }
    /^SwapFree:/ { sf = $2 * 1024 }
    END {
        if (mt == 0) { print "memory.sh: no MemTotal in /proc/meminfo" > "/dev/stderr"; exit 1 }
        printf "mem_total_bytes %.0f\nmem_available_bytes %.0f\n", mt, ma
        printf "mem_used_percent %.3f\n", 100 * (1 - ma / mt)
        printf "swap_total_bytes %.0f\nswap_used_bytes %.0f\n", st, st - sf
        printf "swap_used_percent %.3f\n", (st > 0 ? 100 * (st - sf) / st : 0)
    }' /proc/meminfo
