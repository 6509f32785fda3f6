#!/usr/bin/env bash
# logwarden check script: API calls against provider limits, counted from a log.
#
# Usage: api-rate.sh --log FILE --limit PROVIDER:pattern=REGEX [--limit PROVIDER:rpm=N]
#                    [--limit PROVIDER:rpd=N] …
#   In the config, `limits = { gemini = { pattern = "gemini.*request", rpm = 60, rpd = 1500 } }`
#   on the check becomes these --limit arguments.
# A call is a line of FILE matching the provider's pattern (an awk extended regex) whose
# first 19 characters are its local time, `YYYY-MM-DD HH:MM:SS` (loguru's default; a `T`
# instead of the space is accepted). The time "now" is $LOGWARDEN_NOW (set by logwarden)
# or the clock. Rotated files are not read: counts restart when the log is rotated.
# Prints, per provider (label provider):
#   api_calls_last_minute, api_calls_today (since local midnight),
#   api_limit_rpm, api_limit_rpd (when configured),
#   api_rpm_used_ratio, api_rpd_used_ratio (calls / limit: 1 means the quota is used up).
# Needs: bash, coreutils (date), awk. Reads the whole log each run. Read-only.
# The investigator may only name a configured check of this script (its log and
# patterns come from the config, never from the model):
# logwarden-args: check
set -euo pipefail
die() { echo "api-rate.sh: $*" >&2; exit 1; }
log=""
declare -A pattern rpm rpd
providers=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --log) log="$2"; shift 2 ;;
        --limit)
            spec="$2"; shift 2
            p="${spec%%:*}"; kv="${spec#*:}"; k="${kv%%=*}"; v="${kv#*=}"
            [[ " ${providers[*]-} " == *" $p "* ]] || providers+=("$p")
            case "$k" in
                pattern) pattern[$p]="$v" ;;
                rpm) rpm[$p]="$v" ;;
                rpd) rpd[$p]="$v" ;;
                *) die "unknown limit key $k (pattern, rpm, rpd)" ;;
            esac
            ;;
        *) die "unknown argument $1" ;;
    esac
done
[ -n "$log" ] || die "--log FILE is required"
[ -r "$log" ] || die "cannot read $log"
[ "${#providers[@]}" -gt 0 ] || die "no provider: give --limit NAME:pattern=REGEX"
now="${LOGWARDEN_NOW:-$(date +%s)}"
t_now=$(date -d "@$now" '+%Y-%m-%d %H:%M:%S')
t_min=$(date -d "@$((now - 60))" '+%Y-%m-%d %H:%M:%S')
t_day=$(date -d "@$now" '+%Y-%m-%d 00:00:00')
echo "# HELP api_rpd_used_ratio Calls today divided by the daily limit"
for p in "${providers[@]}"; do
    [ -n "${pattern[$p]-}" ] || die "provider $p has no pattern"
    read -r minute today < <(PAT="${pattern[$p]}" awk -v now="$t_now" -v min="$t_min" -v day="$t_day" '
        BEGIN { pat = ENVIRON["PAT"]; m = 0; d = 0 }
        $0 ~ pat {
            t = substr($0, 1, 19); sub(/T/, " ", t)
            if (t > now || t < day) next
            d++
            if (t > min) m++
        }
        END { print m, d }' "$log")
    echo "api_calls_last_minute{provider=\"$p\"} $minute"
    echo "api_calls_today{provider=\"$p\"} $today"
    if [ -n "${rpm[$p]-}" ]; then
        echo "api_limit_rpm{provider=\"$p\"} ${rpm[$p]}"
        awk -v c="$minute" -v l="${rpm[$p]}" -v p="$p" 'BEGIN { printf "api_rpm_used_ratio{provider=\"%s\"} %.4f\n", p, c / l }'
    fi
    if [ -n "${rpd[$p]-}" ]; then
        echo "api_limit_rpd{provider=\"$p\"} ${rpd[$p]}"
        awk -v c="$today" -v l="${rpd[$p]}" -v p="$p" 'BEGIN { printf "api_rpd_used_ratio{provider=\"%s\"} %.4f\n", p, c / l }'
    fi
done
