#!/usr/bin/env bash
# logwarden check script: crash loops of systemd units.
#
# Usage: unit-restarts.sh [--user] UNIT...
#   One `systemctl show` per unit; names are checked against systemd's unit-name
#   characters and never start with "-" (nothing reaches systemctl as an option).
# Prints, per unit (label unit=its full name, as systemd reports its Id):
#   systemd_unit_restarts          automatic restarts since it was last started by hand
#                                  (NRestarts: a crash loop keeps raising it)
#   systemd_unit_start_limit_hit   1 when systemd gave up restarting it, else 0: the
#                                  unit is failed after automatic restarts (systemd 252
#                                  leaves Result at the last crash's, e.g. exit-code,
#                                  when a restart hits the start limit), or a start was
#                                  refused (Result=start-limit-hit)
#   systemd_unit_active            1 when ActiveState is active, else 0
#   systemd_unit_loaded            1 only when LoadState is loaded; 0 for a unit systemd
#                                  knows no file of (not-found: a typo in the config must
#                                  not read as "no restarts"), a masked one, or one whose
#                                  file it cannot use (error, bad-setting): none can start
# Needs: systemctl (from PATH; set SYSTEMCTL in the check's env to use another path).
# Exit 1 when systemctl is missing or fails, 2 on wrong arguments. Read-only.
# What the investigator may pass (see logwarden's src/scripts.rs): unit names, or the
# name of a configured check of this script.
# logwarden-args: flag --user
# logwarden-args: arg UNIT [A-Za-z0-9_][A-Za-z0-9:_.@-]{0,127}
# logwarden-args: arg* UNIT [A-Za-z0-9_][A-Za-z0-9:_.@-]{0,127}
# logwarden-args: check
set -euo pipefail
die() { echo "unit-restarts.sh: $1" >&2; exit "${2:-1}"; }
scope=()
units=()
for a in "$@"; do
    case "$a" in
        --user) scope=(--user) ;;
        -*) die "unknown option $a (only --user)" 2 ;;
        *)
            # systemd's own unit-name characters (plus "\" of escaped names); at most 256
            [[ "$a" =~ ^[A-Za-z0-9_\\][A-Za-z0-9:_.@\\-]{0,255}$ ]] || die "not a unit name: $a" 2
            units+=("$a") ;;
    esac
done
[ "${#units[@]}" -gt 0 ] || die "usage: unit-restarts.sh [--user] UNIT..." 2
[ "${#units[@]}" -le 64 ] || die "at most 64 units" 2
systemctl="${SYSTEMCTL:-systemctl}"
command -v "$systemctl" >/dev/null 2>&1 || die "$systemctl not found (no systemd on this host?)"
echo "# HELP systemd_unit_restarts Automatic restarts of the unit since it was last started by hand"
echo "# HELP systemd_unit_start_limit_hit 1 when systemd stopped restarting the unit (start-limit-hit)"
for u in "${units[@]}"; do
    out=$("$systemctl" ${scope[@]+"${scope[@]}"} show --no-pager \
        -p Id,LoadState,ActiveState,Result,NRestarts -- "$u") \
        || die "$systemctl show $u failed"
    id="" load="" active="" result="" restarts=""
    while IFS='=' read -r k v; do
        case "$k" in
            Id) id="$v" ;;
            LoadState) load="$v" ;;
            ActiveState) active="$v" ;;
            Result) result="$v" ;;
            NRestarts) restarts="$v" ;;
        esac
    done <<<"$out"
    # The label is the name systemd resolved ("app" is "app.service"); never an
    # unchecked string: Id comes back through the same character check.
    [[ "$id" =~ ^[A-Za-z0-9_\\][A-Za-z0-9:_.@\\-]{0,255}$ ]] || id="$u"
    [[ "$restarts" =~ ^[0-9]+$ ]] || restarts=0
    label=${id//\\/\\\\}
    echo "systemd_unit_restarts{unit=\"$label\"} $restarts"
    gave_up=0
    if [ "$result" = start-limit-hit ] || { [ "$active" = failed ] && [ "$restarts" -gt 0 ]; }; then
        gave_up=1
    fi
    echo "systemd_unit_start_limit_hit{unit=\"$label\"} $gave_up"
    echo "systemd_unit_active{unit=\"$label\"} $([ "$active" = active ] && echo 1 || echo 0)"
    echo "systemd_unit_loaded{unit=\"$label\"} $([ "$load" = loaded ] && echo 1 || echo 0)"
done
