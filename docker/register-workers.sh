#!/bin/bash
# register-workers.sh NAME=HOST[:PORT] ...: wait for the coordinator, then
# add each worker node that is not registered yet (idempotent, so the
# compose "init" service can run on every `up`).
set -euo pipefail
url=${VECTRON_URL:-http://coordinator:8080}
for _ in $(seq 1 60); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 1; done
for spec in "$@"; do
  name=${spec%%=*}; hostport=${spec#*=}; host=${hostport%%:*}; port=${hostport#*:}
  [ "$port" = "$hostport" ] && port=5432
  code=$(curl -sS -o /tmp/add.json -w '%{http_code}' -X POST "$url/v1/admin/nodes" \
    -H 'Content-Type: application/json' ${VECTRON_TOKEN:+-H "Authorization: Bearer $VECTRON_TOKEN"} \
    -d "{\"name\":\"$name\",\"host\":\"$host\",\"port\":$port,\"dbname\":\"postgres\"}")
  case $code in
    201) echo "added $name ($host:$port)";;
    409) echo "$name already registered";;
    *) echo "adding $name failed: HTTP $code $(cat /tmp/add.json)" >&2; exit 1;;
  esac
done
