# Shared helpers for the shell client checks (sourced, not run). run.sh exports:
#   TS3GW_URL, TS3GW_PORT, TS3GW_ACCESS_KEY, TS3GW_SECRET_KEY, TS3GW_REGION,
#   CLIENTS_WORK (temp dir), CLIENTS_RESULTS (results file), CLIENTS_STEP_TIMEOUT (seconds),
#   CLIENTS_PY (python3 used for helpers), CLIENTS_SMALL_KEY (key with a space and unicode).
# Each check appends "client<TAB>operation<TAB>pass|fail" to CLIENTS_RESULTS.

set -uo pipefail

CLIENT_NAME=${CLIENT_NAME:?CLIENT_NAME must be set before sourcing lib.sh}
CLIENT_DIR="$CLIENTS_WORK/$CLIENT_NAME"
CLIENT_LOG="$CLIENT_DIR/log.txt"
mkdir -p "$CLIENT_DIR"
: >"$CLIENT_LOG"

STEP_PID=
trap '[ -n "$STEP_PID" ] && kill -TERM "$STEP_PID" 2>/dev/null; exit 143' TERM INT

record() { # record OPERATION pass|fail
  printf '%s\t%s\t%s\n' "$CLIENT_NAME" "$1" "$2" >>"$CLIENTS_RESULTS"
}

# check OPERATION COMMAND [ARGS...]: runs the command bounded in time (its output goes to the
# client's log), records pass/fail, and on failure prints the tail of what the step printed.
check() {
  local op=$1
  shift
  local step_log="$CLIENT_DIR/step.log" rc
  [ "$1" = sh_step ] && set -- bash -c "set -euo pipefail; $2"
  printf '\n=== %s %s: %s\n' "$CLIENT_NAME" "$op" "$*" >>"$CLIENT_LOG"
  local t0=$SECONDS
  # In the background so that a TERM sent to this script (run.sh stopping) reaches the step too.
  timeout -k 5 "${CLIENTS_STEP_TIMEOUT:-120}" "$@" >"$step_log" 2>&1 </dev/null &
  STEP_PID=$!
  wait "$STEP_PID"
  rc=$?
  STEP_PID=
  cat "$step_log" >>"$CLIENT_LOG"
  if [ "$rc" -eq 0 ]; then
    record "$op" pass
    printf '  %-8s %-16s pass (%ss)\n' "$CLIENT_NAME" "$op" $((SECONDS - t0))
  else
    record "$op" fail
    [ "$rc" -eq 124 ] && echo "(timed out after ${CLIENTS_STEP_TIMEOUT:-120}s)" >>"$CLIENT_LOG"
    printf '  %-8s %-16s FAIL (exit %s%s, %ss)\n' "$CLIENT_NAME" "$op" "$rc" "$([ "$rc" -eq 124 ] && echo ', timed out')" $((SECONDS - t0))
    tail -n 25 "$step_log" | sed 's/^/      | /'
  fi
  return 0
}


# same_file A B: byte-identical (sha256), with both digests printed for the log.
same_file() {
  local a b
  a=$(sha256sum <"$1" | cut -d' ' -f1)
  b=$(sha256sum <"$2" | cut -d' ' -f1)
  echo "sha256 $1: $a"
  echo "sha256 $2: $b"
  [ "$a" = "$b" ]
}
export -f same_file

# Downloads a URL with python's urllib (curl may not be installed) into a file.
http_get() { # http_get URL OUTFILE
  "$CLIENTS_PY" - "$1" "$2" <<'PY'
import sys, urllib.request
url, out = sys.argv[1], sys.argv[2]
print("GET", url)
with urllib.request.urlopen(url, timeout=60) as r:
    print("status", r.status)
    data = r.read()
with open(out, "wb") as f:
    f.write(data)
print("bytes", len(data))
PY
}
export -f http_get

# anon_status URL OUT: an unsigned GET (no credentials at all); prints the HTTP status, body to OUT.
anon_status() {
  "$CLIENTS_PY" -c 'import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=60); code, data = r.status, r.read()
except urllib.error.HTTPError as e:
    code, data = e.code, e.read()
open(sys.argv[2], "wb").write(data); print(code, end="")' "$1" "$2"
}
export -f anon_status

# Test files every client uploads: a few bytes, and 12 MiB of random data (more than the 4 MiB
# chunk size, less than the single-part thresholds the clients are configured with).
make_test_files() {
  printf 'héllo wörld from %s\n' "$CLIENT_NAME" >"$CLIENT_DIR/small.txt"
  head -c $((12 * 1024 * 1024)) /dev/urandom >"$CLIENT_DIR/big.bin"
}

# A small directory tree for sync checks: nested dirs, spaces, unicode, one 200 kB binary.
make_tree() { # make_tree DIR
  mkdir -p "$1/a/b" "$1/ünï cødé"
  printf 'top\n' >"$1/top.txt"
  printf 'deep\n' >"$1/a/b/deep.txt"
  printf 'spaced\n' >"$1/a/with space.txt"
  printf 'unicode\n' >"$1/ünï cødé/€ and ✓.txt"
  head -c 200000 /dev/urandom >"$1/a/b/blob.bin"
}

# Multipart upload is not implemented by the server yet (501 NotImplemented). When it lands,
# each client also runs its multipart check unless TS3GW_CLIENTS_MULTIPART=0.
multipart_enabled() { [ "${TS3GW_CLIENTS_MULTIPART:-1}" = 1 ]; }
