#!/usr/bin/env bash
# Instructions per request (user space, every thread) of the service under callgrind: A
# (/health/live), C (one setting, uncached) and F (the list of 20, uncached), 1000 requests
# each on one keep-alive connection after 200 of warm-up. Instruction counts do not depend on
# what else the machine is doing, so two binaries compare exactly where wrk's figures are
# noisy.
#
#   DATABASE_URL=postgres://…/empty_db bench/scripts/callgrind.sh target/release/user-settings
#
# Needs valgrind, curl, openssl and python3; DATABASE_URL names an empty database (it is
# migrated and written to).
set -euo pipefail
BIN=$1
: "${DATABASE_URL:?name an empty database}"
PORT=${PORT:-18098}
OUT=$(mktemp -d)
export USER_SETTINGS_ENCRYPTION_KEY=$(openssl rand -hex 32) USER_SETTINGS_JWT_SECRET=$(openssl rand -hex 32)
export USER_SETTINGS_WORKERS=1 USER_SETTINGS_BIND=127.0.0.1:$PORT RUST_LOG=warn
export USER_SETTINGS_CACHE_TTL=0
export USER_SETTINGS_RATE_LIMIT_READS=1000000000 USER_SETTINGS_RATE_LIMIT_WRITES=1000000000
"$BIN" migrate > /dev/null 2>&1
echo 7b1e0b9a-0000-4000-8000-000000000001 > "$OUT/subjects"
TOKEN=$("$BIN" token --subjects-file "$OUT/subjects" --ttl 1h)
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" --dump-instr=no "$BIN" serve \
  > "$OUT/service.log" 2>&1 &
VG=$!
trap 'kill $VG 2> /dev/null || true; rm -rf "$OUT"' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/health/live" > /dev/null && break; sleep 0.5; done
# The benchmark's user: 19 JSON settings and one secret.
put() {
  curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d "$2" "http://127.0.0.1:$PORT/api/v1/users/me/settings/$1"
}
for k in $(seq 1 19); do
  put "ui.bench.s$(printf %02d "$k")" \
    "{\"value\": {\"enabled\": $([ $((k % 2)) = 0 ] && echo true || echo false), \"level\": $((k * 7 % 100)), \"label\": \"setting $k of user 1\"}, \"category\": \"ui\"}"
done
put integrations.bench.secret '{"value": "a secret", "data_type": "encrypted", "category": "integrations"}'
requests() {
  python3 - "$PORT" "$TOKEN" "$1" "$2" <<'PY'
import http.client, sys
port, token, path, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
for _ in range(n):
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
PY
}
declare -A PATHS=([A]=/health/live [C]=/api/v1/users/me/settings/ui.bench.s01 [F]=/api/v1/users/me/settings)
for scenario in A C F; do
  requests "${PATHS[$scenario]}" 200
  callgrind_control -z $VG > /dev/null 2>&1
  requests "${PATHS[$scenario]}" 1000
  callgrind_control -d "$scenario" $VG > /dev/null 2>&1
done
kill $VG; wait $VG 2> /dev/null || true
n=1
for scenario in A C F; do
  total=$(grep -h '^summary:\|^totals:' "$OUT"/cg.*."$n" | head -1 | awk '{print $2}')
  echo "$scenario: $((total / 1000)) instructions per request"
  n=$((n + 1))
done
