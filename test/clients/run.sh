#!/usr/bin/env bash
# Client compatibility matrix (`npm run test:clients`): aws CLI, boto3, rclone and s3cmd, all from
# Debian, against ONE real ts3gw node (`node src/main.ts`) on 127.0.0.1 with a free port, a temp
# data dir and fixed credentials. Prints a client × operation table and, as its very last line,
# "N passed, M failed"; exits non-zero if any check failed.
#
# Environment knobs:
#   TS3GW_CLIENTS_ONLY="awscli boto3"  run only these clients (default: all four)
#   TS3GW_CLIENTS_MULTIPART=0          skip the multipart checks (on by default)
#   TS3GW_CLIENTS_KEEP=1               keep the temp dir (logs, data) and print its path
#   TS3GW_CLIENTS_STEP_TIMEOUT=120     seconds allowed to each client step
#   TS3GW_CLIENTS_LOG_LEVEL=warn       server log level (debug shows every request)
#   TS3GW_CLIENTS_DEBUG=1              clients log every request and response (aws --debug, s3cmd -d,
#                                      rclone -vv --dump headers, botocore debug); use with _KEEP=1
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/test/clients"
NODE="$ROOT/node_modules/.bin/node"
CLIENTS=(${TS3GW_CLIENTS_ONLY:-awscli boto3 rclone s3cmd})
PACKAGES=(awscli python3-boto3 s3cmd rclone)
STARTED=$SECONDS

die() {
  echo "test:clients: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

# --- tools ---------------------------------------------------------------------------------------
# Debian's packages, installed if any is missing. The checks always use Debian's binaries
# (/usr/bin/...), not whatever else may come first on PATH, so every machine tests the same clients.
install_tools() {
  local missing=() p
  command -v dpkg-query >/dev/null || die "dpkg-query not found: this script installs its clients from Debian"
  for p in "${PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing from Debian: ${missing[*]}"
  local log t0=$SECONDS sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  log=$(mktemp -t ts3gw-clients-apt.XXXXXX)
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=300 >"$log" 2>&1 ||
    ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${PACKAGES[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "apt-get failed installing ${PACKAGES[*]}"
  fi
  rm -f "$log"
  echo "Installed in $((SECONDS - t0))s"
}
for client in "${CLIENTS[@]}"; do
  case $client in awscli | boto3 | rclone | s3cmd) ;; *) die "unknown client $client (TS3GW_CLIENTS_ONLY)" ;; esac
done
install_tools
[ -x "$NODE" ] || die "$NODE not found: run npm ci first"

# --- isolation -----------------------------------------------------------------------------------
# Nothing from the caller's environment may steer the clients or the server.
for v in $(compgen -e); do
  case $v in
  AWS_* | BOTO_* | RCLONE_* | S3CMD_* | http_proxy | https_proxy | HTTP_PROXY | HTTPS_PROXY | all_proxy | ALL_PROXY) unset "$v" ;;
  TS3GW_CLIENTS_*) ;;
  TS3GW_*) unset "$v" ;;
  esac
done
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export LC_ALL=C.UTF-8 LANG=C.UTF-8 PYTHONUTF8=1 PYTHONIOENCODING=utf-8

WORK=$(mktemp -d -t ts3gw-clients.XXXXXX)
SERVER_PID=
SERVER_EXIT=none
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    local deadline=$((SECONDS + 15))
    while kill -0 "$SERVER_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  wait "$SERVER_PID" 2>/dev/null
  SERVER_EXIT=$?
  SERVER_PID=
}
CLIENT_PID=
cleanup() {
  local rc=$?
  if [ -n "$CLIENT_PID" ]; then
    kill -TERM "$CLIENT_PID" 2>/dev/null
    wait "$CLIENT_PID" 2>/dev/null
  fi
  stop_server
  [ "${TS3GW_CLIENTS_KEEP:-0}" = 1 ] || rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- server --------------------------------------------------------------------------------------
ACCESS_KEY=TS3CLIENTSACCESSKEY
SECRET_KEY=ts3-clients-secret-key-0123456789
REGION=us-east-1
SERVER_LOG="$WORK/server.log"
mkdir -p "$WORK/data" "$WORK/home"
(
  cd "$ROOT" &&
    exec env TS3GW_S3_HOST=127.0.0.1 TS3GW_S3_PORT=0 TS3GW_RAFT_HOST=127.0.0.1 TS3GW_RAFT_PORT=0 \
      TS3GW_DATA_DIR="$WORK/data" TS3GW_REGION="$REGION" \
      TS3GW_ROOT_ACCESS_KEY="$ACCESS_KEY" TS3GW_ROOT_SECRET_KEY="$SECRET_KEY" \
      TS3GW_LOG_LEVEL="${TS3GW_CLIENTS_LOG_LEVEL:-warn}" "$NODE" src/main.ts
) >"$SERVER_LOG" 2>&1 </dev/null &
SERVER_PID=$!

server_failed() {
  echo "--- server output:" >&2
  tail -n 50 "$SERVER_LOG" >&2
  die "$1"
}

# Port 0: the server picks free ports (S3 and, once it listens for peers, Raft) and prints the S3
# one in its serving line.
URL=
deadline=$((SECONDS + 60))
while [ -z "$URL" ]; do
  URL=$(grep -m1 -oE 'ts3gw is serving S3 at http://[^ ]+' "$SERVER_LOG" | grep -oE 'http://[^ ]+')
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || server_failed "server exited before serving"
  [ $SECONDS -lt $deadline ] || server_failed "server did not print its serving line within 60s"
  sleep 0.1
done
"$NODE" -e '
  const url = process.argv[1] + "/health/ready", deadline = Date.now() + 30_000;
  for (;;) {
    try { if ((await fetch(url)).status === 200) break; } catch {}
    if (Date.now() > deadline) { console.error("not ready: " + url); process.exit(1); }
    await new Promise((r) => setTimeout(r, 100));
  }' "$URL" || server_failed "server not ready within 30s"
echo "ts3gw (pid $SERVER_PID) serving at $URL"
server_alive() {
  kill -0 "$SERVER_PID" 2>/dev/null &&
    "$NODE" -e 'fetch(process.argv[1] + "/health/live", { signal: AbortSignal.timeout(10_000) })
      .then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' "$URL"
}

# --- clients -------------------------------------------------------------------------------------
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
export HOME="$WORK/home" TS3GW_URL="$URL" TS3GW_PORT="${URL##*:}" TS3GW_ACCESS_KEY="$ACCESS_KEY" \
  TS3GW_SECRET_KEY="$SECRET_KEY" TS3GW_REGION="$REGION" CLIENTS_WORK="$WORK" CLIENTS_RESULTS="$RESULTS" \
  CLIENTS_STEP_TIMEOUT="${TS3GW_CLIENTS_STEP_TIMEOUT:-120}" CLIENTS_PY=/usr/bin/python3 \
  CLIENTS_SMALL_KEY='dir ü/héllo wörld €.txt'

versions() {
  case $1 in
  awscli) /usr/bin/aws --version 2>&1 ;;
  boto3) /usr/bin/python3 -c 'import boto3, botocore; print("boto3", boto3.__version__, "botocore", botocore.__version__)' 2>&1 ;;
  rclone) /usr/bin/rclone version 2>&1 | head -n1 ;;
  s3cmd) /usr/bin/s3cmd --version 2>&1 ;;
  esac
}

for client in "${CLIENTS[@]}"; do
  case $client in
  boto3) cmd=(/usr/bin/python3 "$HERE/boto3-client.py") ;;
  *) cmd=(bash "$HERE/$client.sh") ;;
  esac
  echo "== $client ($(versions "$client"))"
  t0=$SECONDS
  # A whole client is bounded too, in case a step's own bound did not hold.
  # In the background so that a signal to this script can stop the client before the server.
  timeout -k 10 900 "${cmd[@]}" </dev/null &
  CLIENT_PID=$!
  wait "$CLIENT_PID"
  rc=$?
  CLIENT_PID=
  echo "  ($client took $((SECONDS - t0))s)"
  if [ $rc -ne 0 ]; then
    echo "  $client script exited with $rc"
    printf '%s\tscript\tfail\n' "$client" >>"$RESULTS"
  fi
  # The server must have survived the client, and still answer.
  if ! server_alive; then
    printf '%s\tserver-alive\tfail\n' "$client" >>"$RESULTS"
    echo "  server died or hung during $client; the remaining clients are not run"
    break
  fi
done

stop_server
echo "server stopped (exit status $SERVER_EXIT after SIGTERM)"

# --- summary -------------------------------------------------------------------------------------
if grep -q $'\tfail$' "$RESULTS"; then
  echo
  echo "--- server log (tail):"
  tail -n 40 "$SERVER_LOG"
fi
[ "${TS3GW_CLIENTS_KEEP:-0}" = 1 ] && echo "kept $WORK (client logs in <client>/log.txt, server log in server.log)"
echo
echo "Client compatibility matrix ($((SECONDS - STARTED))s)"
awk -F'\t' -v clients="${CLIENTS[*]}" '
  BEGIN {
    nc = split(clients, cl, " ")
    no = split("mb put-small put-large head-object info list s3api-list md5sum modtime get-small get-large get-range presign presign-large presign-put overrides copy-object copy-move paginator missing-key errors delete delete-objects empty sync-up sync-down rm-recursive put-multipart rb script server-alive", canon, " ")
    for (i = 1; i <= no; i++) rank[canon[i]] = i
  }
  {
    res[$1, $2] = $3
    if (!($2 in seen)) { seen[$2] = 1; ops[++nops] = $2; if (!($2 in rank)) rank[$2] = 1000 + nops }
    if ($3 == "pass") pass++; else fail++
  }
  END {
    for (i = 2; i <= nops; i++) for (j = i; j > 1 && rank[ops[j]] < rank[ops[j-1]]; j--) { t = ops[j]; ops[j] = ops[j-1]; ops[j-1] = t }
    printf "%-16s", "operation"; for (c = 1; c <= nc; c++) printf " %-8s", cl[c]; printf "\n"
    printf "%-16s", "---------"; for (c = 1; c <= nc; c++) printf " %-8s", "------"; printf "\n"
    for (i = 1; i <= nops; i++) {
      printf "%-16s", ops[i]
      for (c = 1; c <= nc; c++) { r = res[cl[c], ops[i]]; printf " %-8s", r == "" ? "-" : (r == "pass" ? "pass" : "FAIL") }
      printf "\n"
    }
    printf "\n%d passed, %d failed\n", pass, fail
    exit (fail > 0 || pass == 0)
  }' "$RESULTS"
