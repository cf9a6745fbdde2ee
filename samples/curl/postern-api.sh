#!/usr/bin/env bash
# Drives `postern` and its HTTP API with curl: start, send a mail over SMTP, list it, inject a fault, purge, stop.
# POSTERN_CMD overrides how postern is started (default `npx postern`). Postern's CI runs this script.
set -euo pipefail
POSTERN_CMD=${POSTERN_CMD:-npx postern}
out=$(mktemp)
$POSTERN_CMD --only smtp,http --smtp-port 0 --http-port 0 --user alice:secret@example.test --log-level warn >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out" "$out.eml"' EXIT
for _ in $(seq 100); do grep -q 'http ready' "$out" && break; kill -0 $pid || exit 1; sleep 0.1; done
smtp=$(sed -n 's/^postern: smtp ready on .*:\([0-9]*\) .*/\1/p' "$out")
api="http://127.0.0.1:$(sed -n 's/^postern: http ready on .*:\([0-9]*\) .*/\1/p' "$out")/api/v1"

printf 'From: Shop <shop@example.test>\r\nTo: alice@example.test\r\nSubject: Order 42 confirmed\r\n\r\nThanks!\r\n' >"$out.eml"
curl -sS "smtp://127.0.0.1:$smtp" --mail-from shop@example.test --mail-rcpt alice@example.test -T "$out.eml"
curl -sS "$api/messages?to=alice@example.test" | python3 -c 'import json,sys; m=json.load(sys.stdin)["messages"][0]; print("received:", m["subject"], "from", m["from"]["address"])'

curl -sS -X PUT "$api/chaos" -H 'content-type: application/json' \
  -d '{"rules":[{"protocol":"smtp","stage":"rcpt","reply":"451 4.3.0 try later","times":1}]}' >/dev/null
if curl -sS "smtp://127.0.0.1:$smtp" --mail-from shop@example.test --mail-rcpt alice@example.test -T "$out.eml" 2>/dev/null; then
  echo "expected the injected 451" >&2
  exit 1
fi
echo "refused as injected: $(curl -sS "$api/chaos" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rules"][0]["fired"])') time(s)"

curl -sS -X DELETE "$api/messages"
echo
