#!/usr/bin/env bash
# logwarden check script: CPU utilisation and load.
#
# Usage: cpu.sh [SECONDS]      (the sampling interval for utilisation, default 1)
# Prints: cpu_count, cpu_utilisation_percent (busy share of all CPUs over the interval,
#   from /proc/stat; iowait counts as idle), cpu_iowait_percent, load1, load5, load15,
#   load1_per_cpu.
# Needs: bash, coreutils, /proc. Read-only.
# What the investigator may pass (see logwarden's src/scripts.rs):
# logwarden-args: arg? SECONDS [1-5]
set -euo pipefail
interval="${1:-1}"
[ "$#" -le 1 ] || { echo "usage: cpu.sh [SECONDS]" >&2; exit 2; }
[[ "$interval" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "cpu.sh: not a number of seconds: $interval" >&2; exit 2; }
read_stat() { awk '/^cpu / { idle = $5 + $6; total = 0; for (i = 2; i <= NF; i++) total += $i; print total, idle, $6 }' /proc/stat; }
read -r t1 i1 w1 < <(read_stat)
sleep "$interval"
read -r t2 i2 w2 < <(read_stat)
read -r l1 l5 l15 _ < /proc/loadavg
n=$(nproc)
awk -v t="$((t2 - t1))" -v i="$((i2 - i1))" -v w="$((w2 - w1))" -v n="$n" -v l1="$l1" -v l5="$l5" -v l15="$l15" 'BEGIN {
    print "# HELP cpu_utilisation_percent Busy share of all CPUs over the sampling interval"
    printf "cpu_count %d\n", n
    if (t > 0) {
        printf "cpu_utilisation_percent %.2f\n", 100 * (t - i) / t
        printf "cpu_iowait_percent %.2f\n", 100 * w / t
    }
    printf "load1 %s\nload5 %s\nload15 %s\n", l1, l5, l15
    printf "load1_per_cpu %.3f\n", l1 / n
}'
