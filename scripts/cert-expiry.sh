#!/usr/bin/env bash
# logwarden check script: days left on a TLS certificate.
#
# Usage: cert-expiry.sh HOST:PORT [--servername NAME] [--timeout SECONDS]
#                                   the certificate a server presents (SNI NAME, default HOST)
#        cert-expiry.sh --file PEM  the first certificate of a PEM file
# Prints (label target=HOST:PORT or the file's path):
#   cert_expiry_days               days until notAfter (negative once expired)
#   cert_not_after_timestamp_seconds
#   cert_not_before_timestamp_seconds
#   cert_not_yet_valid             1 while now is before notBefore (every client refuses
#                                  the certificate, however many days it has left), else 0
# "now" is $LOGWARDEN_NOW (set by logwarden) or the clock. The certificate is not
# verified: this measures its dates only. --timeout SECONDS (default 10) must be a
# positive whole number: `timeout 0` would mean no limit. Needs: bash, coreutils
# (date, timeout), openssl. Exit 1 when no certificate could be read. Read-only.
# The investigator may only name a configured check of this script (hosts and files
# come from the config, never from the model):
# logwarden-args: check
set -euo pipefail
die() { echo "cert-expiry.sh: $*" >&2; exit 1; }
target=""; file=""; sni=""; timeout="10"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --file) file="${2?--file needs a value}"; shift 2 ;;
        --servername) sni="${2?--servername needs a value}"; shift 2 ;;
        --timeout) timeout="${2?--timeout needs a value}"; shift 2 ;;
        -*) die "unknown option $1" ;;
        *) [ -z "$target" ] || die "one HOST:PORT only"; target="$1"; shift ;;
    esac
done
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
# `timeout 0` runs without a limit.
[[ "$timeout" =~ ^[0-9]+$ && "$timeout" =~ [1-9] ]] \
    || die "--timeout must be a positive whole number of seconds: $timeout"
now="${LOGWARDEN_NOW:-$(date +%s)}"
[[ "$now" =~ ^-?[0-9]+$ ]] || die "LOGWARDEN_NOW is not unix seconds: $now"
if [ -n "$file" ]; then
    [ -z "$target" ] || die "give HOST:PORT or --file, not both"
    [ -r "$file" ] || die "cannot read $file"
    dates=$(openssl x509 -noout -startdate -enddate -in "$file" 2>&1) || die "openssl: $dates"
    label="$file"
else
    # openssl options take no "--": refuse anything that could read as one.
    [[ "$target" =~ ^([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]] \
        || die "usage: cert-expiry.sh HOST:PORT [--servername NAME] | --file PEM"
    host="${target%:*}"; host="${host#[}"; host="${host%]}"
    sni="${sni:-$host}"
    [[ "$sni" =~ ^[A-Za-z0-9][A-Za-z0-9.-]*$|^[0-9A-Fa-f:.]+$ ]] || die "not a server name: $sni"
    pem=$(timeout "$timeout" openssl s_client -connect "$target" -servername "$sni" </dev/null 2>/dev/null \
        | sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p') || true
    [ -n "$pem" ] || die "no certificate from $target"
    dates=$(printf '%s\n' "$pem" | openssl x509 -noout -startdate -enddate 2>&1) \
        || die "openssl: $dates"
    label="$target"
fi
start="" end=""
while IFS='=' read -r k v; do
    case "$k" in
        notBefore) start="$v" ;;
        notAfter) end="$v" ;;
    esac
done <<<"$dates"
if [ -z "$start" ] || [ -z "$end" ]; then die "openssl printed no dates: $dates"; fi
t=$(date -u -d "$end" +%s) || die "cannot read the date $end"
t0=$(date -u -d "$start" +%s) || die "cannot read the date $start"
# One label value in the exposition format's escaping, whatever the path holds. It is
# printed by bash, never handed to awk -v (which would undo the escapes); awk only
# divides (mawk's %d also stops at 2^31, so the timestamps are bash's).
label=${label//\\/\\\\}
label=${label//\"/\\\"}
label=${label//$'\n'/\\n}
days=$(awk -v t="$t" -v now="$now" 'BEGIN { printf "%.3f", (t - now) / 86400 }')
echo "# HELP cert_expiry_days Days until the certificate's notAfter"
echo "cert_expiry_days{target=\"$label\"} $days"
echo "cert_not_after_timestamp_seconds{target=\"$label\"} $t"
echo "cert_not_before_timestamp_seconds{target=\"$label\"} $t0"
echo "# HELP cert_not_yet_valid 1 while the certificate's notBefore is still to come"
echo "cert_not_yet_valid{target=\"$label\"} $([ "$now" -lt "$t0" ] && echo 1 || echo 0)"
