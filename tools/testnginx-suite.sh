#!/usr/bin/env bash
# Run an nginx module's own Test::Nginx suite (its t/*.t files) against any
# nginx-compatible binary, e.g. bin/redis2d, and print one row per file.
#
# usage: tools/testnginx-suite.sh [--ignore-missing] BINARY MODULE_DIR TEST_NGINX_LIB [t/FILE.t ...]
#
#   BINARY          the server to test (Test::Nginx runs `BINARY -V`, then
#                   `BINARY -p SERVROOT/ -c conf/nginx.conf` with its own config)
#   MODULE_DIR      a checkout of the module whose suite runs (redis2-nginx-module,
#                   echo-nginx-module, set-misc-nginx-module...); it is copied to
#                   a work dir first, so the checkout stays clean
#   TEST_NGINX_LIB  the lib/ folder of a checkout of openresty/test-nginx
#   t/FILE.t        files to run, relative to MODULE_DIR (default: every t/*.t)
#
# Environment:
#   IGNORE_MISSING=1  (or --ignore-missing) a test block whose config has a
#                     directive the binary does not know is skipped instead of
#                     failing (TEST_NGINX_IGNORE_MISSING_DIRECTIVES)
#   REDIS_PORT        Redis for suites that use one (default 6379); when no
#                     Redis answers on 127.0.0.1 there, a private redis-server is
#                     started for the run and stopped at the end
#   LOAD_MODULES      .so files for load_module lines (real nginx with dynamic modules)
#   MEMCACHED_PORT    a memcached the suite talks to (TEST_NGINX_MEMCACHED_PORT;
#                     Test::Nginx's default is 11211); start it yourself
#   WORK_DIR          where to copy the suite and keep the logs (default: a new temp dir)
#   FILE_TIMEOUT      seconds allowed per .t file (default 600)
#   VERBOSE=1         print each file's whole TAP output
#   KEEP=1            keep the work dir even when everything passed
#   NO_SUBREAPER=1    do not run under tools/subreaper.pl (see below)
#
# Needs prove (perl) and Test::Nginx's Perl dependencies; on Debian:
#   apt-get install libtest-base-perl libtext-diff-perl libwww-perl liburi-perl \
#     liblist-moreutils-perl libipc-run-perl libtest-longstring-perl libhttp-message-perl
#
# Exit status: 0 every planned assertion ran and none failed, 1 otherwise,
# 2 when the suite could not be run (usage, missing tools or paths).
set -u
set -o pipefail

# Test::Nginx stops a daemonized server with QUIT and waits until `kill 0` on its
# pid fails; an exited daemon answers that until its parent, init, reaps it, and
# some hosts' init reaps only every few seconds. The suite runs under a child
# subreaper that reaps at once (tools/subreaper.pl), for nginx and redis2d alike.
if [ -z "${NO_SUBREAPER:-}" ] && [ -z "${TESTNGINX_SUITE_REAPED:-}" ] && command -v perl >/dev/null 2>&1; then
    export TESTNGINX_SUITE_REAPED=1
    exec perl "$(dirname "$0")/subreaper.pl" bash "$0" "$@"
fi

usage() {
    echo "usage: $0 [--ignore-missing] BINARY MODULE_DIR TEST_NGINX_LIB [t/FILE.t ...]" >&2
    exit 2
}
cannot() {
    echo "testnginx-suite: cannot run: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --ignore-missing) IGNORE_MISSING=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "testnginx-suite: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 3 ] || usage
binary=$1 module_dir=$2 lib=$3
shift 3

# the binary: a path, or a name on PATH
if [ "${binary#*/}" = "$binary" ]; then binary=$(command -v "$binary" || echo "$binary"); fi
[ -f "$binary" ] && [ -x "$binary" ] || cannot "$binary is not an executable file"
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
[ -d "$module_dir/t" ] || cannot "$module_dir has no t/ folder (expected a checkout of the module)"
module_dir=$(cd "$module_dir" && pwd)
[ -f "$lib/Test/Nginx/Socket.pm" ] || cannot "$lib has no Test/Nginx/Socket.pm (expected test-nginx's lib/ folder)"
lib=$(cd "$lib" && pwd)
command -v prove >/dev/null 2>&1 || cannot "prove not found (apt-get install perl)"
if ! missing=$(perl -I"$lib" -MTest::Nginx::Socket -e 1 2>&1); then
    cannot "Test::Nginx does not load: $(printf '%s' "$missing" | head -n 1)
  its Perl dependencies on Debian: apt-get install libtest-base-perl libtext-diff-perl libwww-perl liburi-perl liblist-moreutils-perl libipc-run-perl libtest-longstring-perl libhttp-message-perl"
fi

if [ $# -gt 0 ]; then
    files=("$@")
else
    files=()
    for f in "$module_dir"/t/*.t; do [ -e "$f" ] && files+=("t/${f##*/}"); done
fi
[ ${#files[@]} -gt 0 ] || cannot "no .t files in $module_dir/t"
for f in "${files[@]}"; do [ -f "$module_dir/$f" ] || cannot "$module_dir/$f not found"; done

made_work=
if [ -n "${WORK_DIR:-}" ]; then
    work=$WORK_DIR
    rm -rf "$work/suite" "$work/tap"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/testnginx-suite.XXXXXX") || cannot "mktemp failed"
    made_work=1
fi
mkdir -p "$work/suite" "$work/tap" || cannot "cannot create $work"
cp -a "$module_dir/." "$work/suite/" || cannot "cannot copy $module_dir"
rm -rf "$work/suite/t/servroot"

# Redis, for suites that talk to one
redis_port=${REDIS_PORT:-6379}
redis_pid=
redis_answers() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$redis_port && printf 'PING\r\n' >&3 && head -c 5 <&3" 2>/dev/null | grep -q '^+PONG'
}
stop_redis() {
    if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
        kill "$redis_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$redis_pid" 2>/dev/null
    fi
    redis_pid=
}
trap stop_redis EXIT
trap 'exit 130' INT TERM
if (cd "$work/suite" && grep -qiE 'redis' "${files[@]}"); then
    if redis_answers; then
        redis_note="the one answering on 127.0.0.1:$redis_port"
    else
        command -v redis-server >/dev/null 2>&1 ||
            cannot "nothing answers on 127.0.0.1:$redis_port and redis-server is not installed (apt-get install redis-server)"
        mkdir -p "$work/redis"
        redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
            --dir "$work/redis" --logfile "$work/redis/redis.log" >/dev/null 2>&1 &
        redis_pid=$!
        for _ in $(seq 50); do redis_answers && break; sleep 0.1; done
        redis_answers || cannot "the private redis-server did not answer on 127.0.0.1:$redis_port (see $work/redis/redis.log)"
        redis_note="private redis-server on 127.0.0.1:$redis_port (pid $redis_pid, stopped at the end)"
    fi
else
    redis_note="not used by these files"
fi

# Test::Nginx's settings: only ours, whatever the caller's environment holds
for v in $(env | sed -n 's/^\(TEST_NGINX_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done
unset NODE_OPTIONS   # test runners' loaders must not reach a Node binary
export TEST_NGINX_BINARY=$binary
export TEST_NGINX_NO_SHUFFLE=1
export TEST_NGINX_REDIS_PORT=$redis_port
[ -n "${LOAD_MODULES:-}" ] && export TEST_NGINX_LOAD_MODULES=$LOAD_MODULES
[ -n "${IGNORE_MISSING:-}" ] && export TEST_NGINX_IGNORE_MISSING_DIRECTIVES=1
# memcached for suites that use one (memc-nginx-module): the caller starts it
[ -n "${MEMCACHED_PORT:-}" ] && export TEST_NGINX_MEMCACHED_PORT=$MEMCACHED_PORT

echo "binary:  $binary"
echo "suite:   $module_dir (${#files[@]} files, run in $work/suite)"
echo "redis:   $redis_note"
echo "missing directives: $([ -n "${IGNORE_MISSING:-}" ] && echo 'skipped (IGNORE_MISSING)' || echo 'fail')"
row() { printf '%-28s %7s %5s %5s %5s %5s %6s  %s\n' "$@"; }
row FILE PLANNED RUN PASS SKIP FAIL SECS STATUS

tapfile() { local n=${1#t/}; n=${n%.t}; echo "$work/tap/${n//\//_}.tap"; }
tot_planned=0 tot_run=0 tot_pass=0 tot_skip=0 tot_fail=0 bad=0
for f in "${files[@]}"; do
    name=${f#t/}
    tap=$(tapfile "$f")
    start=$(date +%s)
    # one prove per file: a bail-out or a hang in one file does not hide the others
    (cd "$work/suite" && timeout "${FILE_TIMEOUT:-600}" prove -v -I"$lib" "$f") >"$tap" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    [ -n "${VERBOSE:-}" ] && cat "$tap"
    planned=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$tap" | head -n 1)
    planned=${planned:-0}
    skip=$(grep -cE '^ok [0-9]+.*# *[Ss][Kk][Ii][Pp]' "$tap")
    ok=$(grep -cE '^ok [0-9]+' "$tap")
    todo=$(grep -cE '^not ok [0-9]+.*# *TODO' "$tap")
    fail=$(( $(grep -cE '^not ok [0-9]+' "$tap") - todo ))
    pass=$(( ok - skip + todo ))
    run=$(( ok + fail + todo ))
    status=ok
    # a file that skips itself as a whole (plan skip_all): prove -v says `FILE .. skipped: REASON`
    whole=$(sed -n 's/^.* \.\. skipped: *\(.*\)$/\1/p; s/^1\.\.0 *# *[Ss][Kk][Ii][Pp] *\(.*\)$/\1/p' "$tap" | head -n 1)
    if [ -n "$whole" ] || grep -qE ' \.\. skipped' "$tap"; then
        status="skipped: ${whole:-no reason given}"
    else
        [ "$fail" -gt 0 ] && status=FAIL
        [ "$run" -ne "$planned" ] && status="FAIL (planned $planned, ran $run)"
        [ "$planned" -eq 0 ] && [ "$run" -eq 0 ] && status="FAIL (no plan)"
        grep -qE '^Bail out!|^Bailout called' "$tap" && status="$status, bailed out"
        [ $rc -eq 124 ] && status="$status, timed out after ${FILE_TIMEOUT:-600} s"
        [ "$status" = ok ] || bad=1
    fi
    row "$name" "$planned" "$run" "$pass" "$skip" "$fail" "$secs" "$status"
    tot_planned=$((tot_planned + planned)) tot_run=$((tot_run + run)) tot_pass=$((tot_pass + pass))
    tot_skip=$((tot_skip + skip)) tot_fail=$((tot_fail + fail))
done
row TOTAL "$tot_planned" "$tot_run" "$tot_pass" "$tot_skip" "$tot_fail" "" ""

# what did not pass, by file
shown=0
for f in "${files[@]}"; do
    tap=$(tapfile "$f")
    lines=$(grep -E '^not ok [0-9]+|^ok [0-9]+.*# *[Ss][Kk][Ii][Pp]|^Bail out!|^Bailout called' "$tap" | grep -vE '# *TODO')
    [ -n "$lines" ] || continue
    [ $shown -eq 0 ] && echo "not passed (failures, skips, bail-outs):"
    shown=1
    printf '%s\n' "$lines" | sed "s|^|  ${f#t/}: |"
done

if [ $bad -eq 0 ] && [ -z "${KEEP:-}" ] && [ -n "$made_work" ]; then
    rm -rf "$work"
else
    echo "logs: $work/tap/*.tap (full TAP and diagnostics); each file's last config: $work/suite/t/servroot/conf/nginx.conf"
fi
[ $bad -eq 0 ]
