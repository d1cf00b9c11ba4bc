#!/bin/sh
# Records the REST2 payloads the offline fake (fake_test.go) answers with,
# from a real RT: eval "$(test/e2e/peers/rt.sh env)"; sh record.sh
# It makes one ticket in the General queue with a comment, a reply and a
# file, then saves what the connector reads about it.
set -eu
cd "$(dirname "$0")"
U=${DUPLEX_TEST_RT_URL:?}/REST/2.0; T=${DUPLEX_TEST_RT_TOKEN:?}
get() { curl -sf -H "Authorization: token $T" "$U$1"; }
send() { curl -sf -X "$1" -H "Authorization: token $T" -H 'Content-Type: application/json' -d "$3" "$U$2"; }
get /queue/General > queue.json
send POST /ticket '{"Queue":"General","Subject":"Recorded ticket","Content":"first message","ContentType":"text/plain"}' > ticket-created.json
id=$(python3 -c 'import json; print(json.load(open("ticket-created.json"))["id"])')
send POST "/ticket/$id/comment" '{"Content":"an internal note","ContentType":"text/plain"}' > comment-created.json
send POST "/ticket/$id/correspond" '{"Content":"a public reply","ContentType":"text/plain"}' > /dev/null
curl -sf -H "Authorization: token $T" -F 'Content=with a file;type=text/plain' -F 'Attachments=@-;filename=hello.txt;type=text/plain' "$U/ticket/$id/comment" < /dev/null > /dev/null || true
get "/ticket/$id" > ticket.json
get "/ticket/$id/history?fields=Type,Creator,Created&per_page=100&page=1" > history.json
get "/ticket/$id/attachments?fields=TransactionId,ContentType,Content,Filename&per_page=100&page=1" > attachments.json
get "/transactions?query=ObjectType%20%3D%20%27RT%3A%3ATicket%27%20AND%20ObjectId%20%3D%20$id&fields=ObjectId,Created&per_page=100&page=1" > transactions.json
get "/tickets?query=id%20%3D%20$id&per_page=100&page=1" > tickets.json
curl -s -H "Authorization: token $T" "$U/ticket/999999999" > not-found.json || true
for f in *.json; do python3 -m json.tool "$f" > "$f.tmp" && mv "$f.tmp" "$f"; done
