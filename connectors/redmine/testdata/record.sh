#!/bin/sh
# Records the payloads the offline fake (fake_test.go) answers with, from a
# real Redmine: eval "$(test/e2e/peers/redmine.sh env)"; sh record.sh
# It makes a project of its own, one issue with a public and a private note
# and an attachment, and scrubs the API key from users-current.json.
set -eu
cd "$(dirname "$0")"
U=${DUPLEX_TEST_REDMINE_URL:?}; K=${DUPLEX_TEST_REDMINE_KEY:?}
get() { curl -sf -H "X-Redmine-Api-Key: $K" "$U$1"; }
send() { curl -sf -X "$1" -H "X-Redmine-Api-Key: $K" -H 'Content-Type: application/json' -d "$3" "$U$2"; }
id=rec$(date +%s)
send POST /projects.json "{\"project\":{\"name\":\"record $id\",\"identifier\":\"$id\",\"tracker_ids\":[1,2,3],\"enabled_module_names\":[\"issue_tracking\"]}}" > /dev/null
get /users/current.json | python3 -c 'import json,sys; d=json.load(sys.stdin); d["user"].pop("api_key",None); print(json.dumps(d,indent=1))' > users-current.json
get "/projects/$id.json" > project.json
get /issue_statuses.json > issue_statuses.json
get /enumerations/issue_priorities.json > issue_priorities.json
get /trackers.json > trackers.json
get /custom_fields.json > custom_fields.json 2>/dev/null || echo '{"custom_fields":[]}' > custom_fields.json
n=$(send POST /issues.json "{\"issue\":{\"project_id\":\"$id\",\"subject\":\"Recorded issue\",\"description\":\"first line\"}}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["issue"]["id"])')
send PUT "/issues/$n.json" '{"issue":{"notes":"a public note"}}'
send PUT "/issues/$n.json" '{"issue":{"notes":"an internal note","private_notes":true}}'
curl -sf -X POST -H "X-Redmine-Api-Key: $K" -H 'Content-Type: application/octet-stream' --data-binary 'hello' "$U/uploads.json?filename=hello.txt" > upload.json
tok=$(python3 -c 'import json; print(json.load(open("upload.json"))["upload"]["token"])')
send PUT "/issues/$n.json" "{\"issue\":{\"uploads\":[{\"token\":\"$tok\",\"filename\":\"hello.txt\",\"content_type\":\"text/plain\"}]}}"
get "/issues/$n.json?include=journals,attachments" > issue.json
get "/issues.json?project_id=$id&status_id=*&sort=updated_on,id" > issues.json
curl -s -X POST -H "X-Redmine-Api-Key: $K" -H 'Content-Type: application/json' -d "{\"issue\":{\"project_id\":\"$id\",\"subject\":\"\"}}" "$U/issues.json" > error-422.json
for f in *.json; do python3 -m json.tool "$f" > "$f.tmp" && mv "$f.tmp" "$f"; done
