#!/usr/bin/env bash
# logwarden check script: existence and age of files (a health-check or heartbeat file).
#
# Usage: file-exists.sh PATH...
# Prints, per path (label path):
#   file_exists        1 when it exists, else 0
#   file_age_seconds   now minus its modification time (only when it exists)
#   file_size_bytes    (only when it exists)
# "now" is $LOGWARDEN_NOW (set by logwarden) or the clock. A missing file is a value, not
# a failure of the script. Needs: bash, coreutils (stat, date). Read-only.
# The investigator may only name a configured check of this script (the paths come from
# the config, never from the model):
# logwarden-args: check
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: file-exists.sh PATH..." >&2; exit 2; }
now="${LOGWARDEN_NOW:-$(date +%s)}"
[[ "$now" =~ ^[0-9]+$ ]] || { echo "file-exists.sh: LOGWARDEN_NOW is not unix seconds: $now" >&2; exit 2; }
echo "# HELP file_age_seconds Seconds since the file was last modified"
for p in "$@"; do
    label=${p//\\/\\\\}
    label=${label//\"/\\\"}
    if [ -e "$p" ]; then
        read -r mtime size < <(stat -L -c '%Y %s' -- "$p")
        echo "file_exists{path=\"$label\"} 1"
        echo "file_age_seconds{path=\"$label\"} $((now - mtime))"
        echo "file_size_bytes{path=\"$label\"} $size"
    else
        echo "file_exists{path=\"$label\"} 0"
    fi
done
