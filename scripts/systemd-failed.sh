#!/usr/bin/env bash
# logwarden check script: failed systemd units.
#
# Usage: systemd-failed.sh [--user]
# Prints: systemd_failed_units (how many), and systemd_unit_failed{unit="…"} 1 for each.
# Needs: systemctl (set SYSTEMCTL in the check's env to use another path). Exit 1 when
# systemctl is missing or systemd is not running (a container, say). Read-only.
# What the investigator may pass (see logwarden's src/scripts.rs): --user, or the
# name of a configured check of this script.
# logwarden-args: flag --user
# logwarden-args: check
set -euo pipefail
systemctl="${SYSTEMCTL:-systemctl}"
if ! command -v "$systemctl" >/dev/null 2>&1; then
    echo "systemd-failed.sh: $systemctl not found (no systemd on this host?)" >&2
    exit 1
fi
scope=()
for a in "$@"; do
    case "$a" in
        --user) scope=(--user) ;;
        *) echo "systemd-failed.sh: unknown argument: $a (only --user)" >&2; exit 2 ;;
    esac
done
units=$("$systemctl" ${scope[@]+"${scope[@]}"} list-units --state=failed --no-legend --plain --no-pager) || {
    echo "systemd-failed.sh: $systemctl list-units failed" >&2
    exit 1
}
echo "# HELP systemd_failed_units Units in the failed state"
printf '%s\n' "$units" | awk '
    NF > 0 { n++; u = $1; gsub(/"/, "\\\"", u); printf "systemd_unit_failed{unit=\"%s\"} 1\n", u }
    END { printf "systemd_failed_units %d\n", n }'
