#!/usr/bin/env bash
# logwarden check script: one HTTP(S) request, its status and latency.
#
# Usage: http-probe.sh URL [--status CODE] [--timeout SECONDS] [--max-bytes N] [--name NAME]
#   A GET whose body is discarded. Redirects are never followed: a 3xx is the answer,
#   so a probe never ends up at another host than the one configured. Only http and
#   https URLs; ~/.curlrc is not read.
# Prints (label probe=NAME, default the URL):
#   http_probe_status           the status code, 0 when there was no answer
#   http_probe_latency_seconds  the whole request (connect, TLS, first and last byte)
#   http_probe_ok               1 when the status is CODE (default 200) and the whole
#                               answer arrived within SECONDS, else 0
#   http_probe_curl_exit        curl's exit status: 0 when the transfer completed, e.g.
#                               7 no connection, 18 body shorter than announced, 28 timeout,
#                               23 or 63 body larger than N bytes
# A service that does not answer, or stops halfway, is a value (ok 0; status and latency
# as far as curl got, status 0 when no headers came), not a failure of the script.
# SECONDS (default 10) must be positive: curl reads 0 as "no limit".
# N (default 10485760, 10 MiB) caps the body read: a health check answers in a few bytes,
# and an endpoint that streams without end must not keep the probe busy (and the link
# full) until the timeout. A larger answer is not ok.
# Needs: bash, curl. Exit 1 when curl is missing or the arguments are wrong. Read-only.
# The investigator may only name a configured check of this script (the URL comes from
# the config, never from the model):
# logwarden-args: check
set -euo pipefail
die() { echo "http-probe.sh: $*" >&2; exit 1; }
url=""; want="200"; timeout="10"; name=""; max_bytes="10485760"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --status) want="${2?--status needs a value}"; shift 2 ;;
        --timeout) timeout="${2?--timeout needs a value}"; shift 2 ;;
        --name) name="${2?--name needs a value}"; shift 2 ;;
        --max-bytes) max_bytes="${2?--max-bytes needs a value}"; shift 2 ;;
        --) shift; [ "$#" -eq 1 ] && [ -z "$url" ] || die "one URL only"; url="$1"; shift ;;
        -*) die "unknown option $1" ;;
        *) [ -z "$url" ] || die "one URL only"; url="$1"; shift ;;
    esac
done
[ -n "$url" ] || die "usage: http-probe.sh URL [--status CODE] [--timeout SECONDS] [--max-bytes N] [--name NAME]"
[[ "$url" =~ ^https?://[^[:space:]]+$ ]] || die "not an http(s) URL: $url"
[[ "$want" =~ ^[1-5][0-9][0-9]$ ]] || die "not a status code: $want"
# curl counts --max-time in whole milliseconds and takes 0 as no limit at all.
[[ "$timeout" =~ ^[0-9]+(\.[0-9]{1,3})?$ && "$timeout" =~ [1-9] ]] \
    || die "--timeout must be a positive number of seconds (at most 3 decimals): $timeout"
[[ "$max_bytes" =~ ^[1-9][0-9]{0,11}$ ]] || die "--max-bytes must be a positive whole number: $max_bytes"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
rc=0
# --max-filesize refuses an announced length at once; an unannounced (streamed) body is
# cut by head, whose exit makes curl's next write fail (exit 23).
out=$(curl -q --silent --show-error --proto '=http,https' --max-filesize "$max_bytes" \
    --output >(head -c "$max_bytes" >/dev/null) \
    --max-time "$timeout" --write-out '%{http_code} %{time_total}' -- "$url" 2>/dev/null) || rc=$?
read -r status latency <<<"$out" || true
[[ "${status:-}" =~ ^[0-9]{3}$ ]] || status=0
[[ "${latency:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || latency=0
case "$rc" in
    0) ;;
    23|63) echo "http-probe.sh: the answer from $url is larger than $max_bytes bytes (curl exit $rc)" >&2 ;;
    *) echo "http-probe.sh: curl exit $rc for $url" >&2 ;;
esac
name="${name:-$url}"
name=${name//\\/\\\\}
name=${name//\"/\\\"}
name=${name//$'\n'/\\n}
# Without --location a 3xx is a complete answer (exit 0); any other exit means the
# answer was cut short or never came, whatever the status line said.
ok=0
[ "$rc" -eq 0 ] && [ "$((10#$status))" -eq "$want" ] && ok=1
echo "# HELP http_probe_ok 1 when the probe got the expected status and the whole answer"
echo "http_probe_status{probe=\"$name\"} $((10#$status))"
echo "http_probe_latency_seconds{probe=\"$name\"} $latency"
echo "http_probe_curl_exit{probe=\"$name\"} $rc"
echo "http_probe_ok{probe=\"$name\"} $ok"
