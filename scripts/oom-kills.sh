#!/usr/bin/env bash
# logwarden check script: processes the kernel killed for lack of memory.
#
# Usage: oom-kills.sh [--journal SECONDS] CGROUP...
#        oom-kills.sh --journal SECONDS
#   CGROUP is a cgroup v2 path under /sys/fs/cgroup, given relative to it
#   ("system.slice/app.service") or in full; "..", symlinks out of it and anything
#   but cgroup-name characters are refused.
# Prints, per cgroup (label cgroup=the path as given, relative):
#   cgroup_oom_kills        the oom_kill counter of its memory.events (processes of it
#                           killed by an OOM since the cgroup was created: a unit's
#                           restart starts a new count)
#   cgroup_memory_max_hits  the max counter (times it reached memory.max)
#   cgroup_exists           0 when the cgroup has no memory.events (the unit is not
#                           running, or the memory controller is off): the two above
#                           are then not printed
# and with --journal SECONDS:
#   kernel_oom_kills        kernel messages "Out of memory: Killed process" (system-wide
#                           and "Memory cgroup out of memory") in the SECONDS before now,
#                           from `journalctl -k` (this boot only)
# "now" is $LOGWARDEN_NOW (set by logwarden) or the clock. Needs: bash, coreutils
# (realpath), journalctl for --journal (from PATH; JOURNALCTL in the check's env to use
# another path). LOGWARDEN_CGROUP_ROOT replaces /sys/fs/cgroup: it exists for the tests,
# which simulate a cgroup tree in a folder. Exit 1 when a file or the journal cannot be
# read, 2 on wrong arguments. Read-only.
# What the investigator may pass (see logwarden's src/scripts.rs): the name of a
# configured check of this script.
# logwarden-args: check
set -euo pipefail
die() { echo "oom-kills.sh: $1" >&2; exit "${2:-1}"; }
usage="usage: oom-kills.sh [--journal SECONDS] CGROUP... | --journal SECONDS"
root="${LOGWARDEN_CGROUP_ROOT:-/sys/fs/cgroup}"
window=""
cgroups=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --journal)
            [ "$#" -ge 2 ] || die "--journal needs a number of seconds" 2
            [[ "$2" =~ ^[1-9][0-9]{0,7}$ ]] || die "not a number of seconds: $2" 2
            window="$2"; shift 2 ;;
        -*) die "unknown option $1 ($usage)" 2 ;;
        *)
            rel="$1"
            case "$rel" in
                /sys/fs/cgroup/*) rel="${rel#/sys/fs/cgroup/}" ;;
                /*) die "not a cgroup path under /sys/fs/cgroup: $1" 2 ;;
            esac
            [[ "$rel" =~ ^[A-Za-z0-9_@:.\\-]+(/[A-Za-z0-9_@:.\\-]+)*$ ]] \
                || die "not a cgroup path under /sys/fs/cgroup: $1" 2
            [[ "/$rel/" != */../* && "/$rel/" != */./* ]] || die "no . or .. in a cgroup path: $1" 2
            [ "${#rel}" -le 512 ] || die "cgroup path too long" 2
            cgroups+=("$rel"); shift ;;
    esac
done
[ "${#cgroups[@]}" -gt 0 ] || [ -n "$window" ] || die "$usage" 2
[ "${#cgroups[@]}" -le 64 ] || die "at most 64 cgroups" 2
real_root=$(realpath -e -- "$root") || die "no cgroup tree at $root"
echo "# HELP cgroup_oom_kills Processes of the cgroup killed by the OOM killer (memory.events oom_kill)"
for rel in ${cgroups[@]+"${cgroups[@]}"}; do
    label=${rel//\\/\\\\}
    f="$root/$rel/memory.events"
    if [ ! -e "$f" ]; then
        echo "cgroup_exists{cgroup=\"$label\"} 0"
        continue
    fi
    # A link must not lead the read out of the cgroup tree.
    real=$(realpath -e -- "$f") || die "cannot resolve $f"
    case "$real" in
        "$real_root"/*) ;;
        *) die "$f is outside $root" ;;
    esac
    events=$(head -c 4096 -- "$real") || die "cannot read $f"
    kills=$(awk '$1 == "oom_kill" && $2 ~ /^[0-9]+$/ { print $2 }' <<<"$events")
    maxes=$(awk '$1 == "max" && $2 ~ /^[0-9]+$/ { print $2 }' <<<"$events")
    [ -n "$kills" ] || die "$f has no oom_kill counter"
    echo "cgroup_exists{cgroup=\"$label\"} 1"
    echo "cgroup_oom_kills{cgroup=\"$label\"} $kills"
    echo "cgroup_memory_max_hits{cgroup=\"$label\"} ${maxes:-0}"
done
if [ -n "$window" ]; then
    now="${LOGWARDEN_NOW:-$(date +%s)}"
    [[ "$now" =~ ^[0-9]+$ ]] || die "LOGWARDEN_NOW is not unix seconds: $now" 2
    journalctl="${JOURNALCTL:-journalctl}"
    command -v "$journalctl" >/dev/null 2>&1 || die "$journalctl not found (no journald on this host?)"
    lines=$("$journalctl" -k --no-pager -q -o cat --since "@$((now - window))" --until "@$now") \
        || die "$journalctl -k failed (is the user in group systemd-journal or adm?)"
    n=$(grep -ci 'out of memory: killed process' <<<"$lines" || true)
    echo "# HELP kernel_oom_kills Kernel OOM kills in the journal in the window before now"
    echo "kernel_oom_kills{window_seconds=\"$window\"} ${n:-0}"
fi
