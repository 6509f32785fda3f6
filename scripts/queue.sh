#!/usr/bin/env bash
# logwarden check script: queue depth.
#
# Usage: queue.sh redis KEY [--host H] [--port P] [--db N] [--name NAME]  (or after --)
#                                   the length of a Redis list (LLEN), through redis-cli
#        queue.sh sqlite DB QUERY [--name NAME]
#                                   a count from a SQLite database, e.g.
#                                   "SELECT count(*) FROM jobs WHERE state = 'queued'";
#                                   opened read-only, with the sqlite3 CLI (>= 3.37, in
#                                   its -safe mode: no .shell, no writefile/readfile,
#                                   no ATTACH) if installed, else python3's sqlite3
#                                   module with an authorizer that allows reads only
#        queue.sh spool DIR [--name NAME]
#                                   the number of regular files in a spool directory
#                                   (not recursive; hidden files count)
# Prints: queue_depth{queue="NAME",kind="redis|sqlite|spool"} N   (NAME defaults to the
#   key, the database file name or the directory name).
# Needs: bash, coreutils; redis-cli, sqlite3 or python3 for their kinds (detected; exit 1
# naming what is missing). Read-only.
# The investigator may only name a configured check of this script: the database,
# query, key and host come from the config, never from the model.
# logwarden-args: check
set -euo pipefail
die() { echo "queue.sh: $*" >&2; exit 1; }
kind="${1:-}"; shift || true
name=""; host="127.0.0.1"; port="6379"; db="0"; pos=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --name) name="${2?--name needs a value}"; shift 2 ;;
        --host) host="${2?--host needs a value}"; shift 2 ;;
        --port) port="${2?--port needs a value}"; shift 2 ;;
        --db) db="${2?--db needs a value}"; shift 2 ;;
        --) shift; pos+=("$@"); break ;;
        *) pos+=("$1"); shift ;;
    esac
done
case "$kind" in
    redis)
        [ "${#pos[@]}" -eq 1 ] || die "usage: queue.sh redis KEY [--host H] [--port P] [--db N]"
        command -v redis-cli >/dev/null || die "redis-cli not found (apt-get install redis-tools)"
        [[ "$host" =~ ^[A-Za-z0-9._:-]+$ && "$host" != -* ]] || die "not a host name: $host"
        [[ "$port" =~ ^[0-9]{1,5}$ ]] || die "not a port: $port"
        [[ "$db" =~ ^[0-9]{1,3}$ ]] || die "not a database number: $db"
        depth=$(redis-cli --no-auth-warning -h "$host" -p "$port" -n "$db" LLEN "${pos[0]}" 2>&1) \
            || die "redis-cli failed: $depth"
        [[ "$depth" =~ ^[0-9]+$ ]] || die "redis-cli: $depth"
        name="${name:-${pos[0]}}"
        ;;
    sqlite)
        [ "${#pos[@]}" -eq 2 ] || die "usage: queue.sh sqlite DB QUERY"
        dbfile="${pos[0]}"; query="${pos[1]}"
        [ -r "$dbfile" ] || die "cannot read $dbfile"
        if command -v sqlite3 >/dev/null; then
            # -safe (sqlite3 >= 3.37) refuses .shell, .system, writefile(), readfile(),
            # ATTACH and the like even in a query from the config; an older sqlite3
            # fails here rather than running without it.
            depth=$(sqlite3 -readonly -safe -batch -noheader "file:$dbfile?mode=ro" "$query" 2>&1) \
                || die "sqlite3: $depth"
        elif command -v python3 >/dev/null; then
            depth=$(python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
ok = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
c.set_authorizer(lambda op, *_: sqlite3.SQLITE_OK if op in ok else sqlite3.SQLITE_DENY)
print(c.execute(sys.argv[2]).fetchone()[0])' "$dbfile" "$query" 2>&1) || die "python3 sqlite3: ${depth##*$'\n'}"
        else
            die "neither sqlite3 nor python3 is installed"
        fi
        depth="${depth%%$'\n'*}"
        [[ "$depth" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "the query did not return a number: $depth"
        name="${name:-$(basename "$dbfile")}"
        ;;
    spool)
        [ "${#pos[@]}" -eq 1 ] || die "usage: queue.sh spool DIR"
        [ -d "${pos[0]}" ] || die "no such directory: ${pos[0]}"
        depth=$(find "${pos[0]}" -mindepth 1 -maxdepth 1 -type f -printf . | wc -c)
        name="${name:-$(basename "${pos[0]}")}"
        ;;
    *) die "usage: queue.sh redis|sqlite|spool …" ;;
esac
name=${name//\\/\\\\}
name=${name//\"/\\\"}
echo "# HELP queue_depth Items waiting in the queue"
echo "queue_depth{queue=\"$name\",kind=\"$kind\"} $depth"
