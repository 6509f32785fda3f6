#!/usr/bin/env bash
# logwarden check script: days left on a TLS certificate.
#
# Usage: cert-expiry.sh HOST:PORT [--servername NAME] [--timeout SECONDS]
#                                   the certificate a server presents (SNI NAME, default HOST)
#        cert-expiry.sh --file PEM  the first certificate of a PEM file
# Prints (label target=HOST:PORT or the file's path):
#   cert_expiry_days               days until notAfter (negative once expired)
#   cert_not_after_timestamp_seconds
# "now" is $LOGWARDEN_NOW (set by logwarden) or the clock. The certificate is not
# verified: this measures its dates only. Needs: bash, coreutils (date, timeout),
# openssl. Exit 1 when no certificate could be read. Read-only.
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
[[ "$timeout" =~ ^[0-9]+$ ]] || die "not a number of seconds: $timeout"
now="${LOGWARDEN_NOW:-$(date +%s)}"
if [ -n "$file" ]; then
    [ -z "$target" ] || die "give HOST:PORT or --file, not both"
    [ -r "$file" ] || die "cannot read $file"
    end=$(openssl x509 -noout -enddate -in "$file" 2>&1) || die "openssl: $end"
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
    end=$(printf '%s\n' "$pem" | openssl x509 -noout -enddate 2>&1) || die "openssl: $end"
    label="$target"
fi
end="${end#notAfter=}"
t=$(date -u -d "$end" +%s) || die "cannot read the date $end"
label=${label//\\/\\\\}
label=${label//\"/\\\"}
echo "# HELP cert_expiry_days Days until the certificate's notAfter"
awk -v t="$t" -v now="$now" -v l="$label" 'BEGIN {
    printf "cert_expiry_days{target=\"%s\"} %.3f\n", l, (t - now) / 86400
    printf "cert_not_after_timestamp_seconds{target=\"%s\"} %d\n", l, t
}'
