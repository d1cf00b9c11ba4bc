#!/usr/bin/env bash
# Redmine 5 from Debian's packages, headless on loopback, for the end-to-end
# tests. Usage: redmine.sh install|start|stop|reset|env
#   install  packages, app server, API settings, a custom field, a snapshot
#   start    rackup/webrick on 127.0.0.1:$REDMINE_PORT, waits for the API
#   reset    stop, restore the snapshot taken after install, start
#   env      prints the export line for the tests (eval it)
# Idempotent: every step checks before it acts. Needs root.
set -euo pipefail

PORT="${REDMINE_PORT:-3100}"
STATE="${DUPLEX_E2E_STATE:-/var/tmp/duplex-e2e}/redmine"
DBDIR=/var/lib/dbconfig-common/sqlite3/redmine/instances/default
APP=/usr/share/redmine
RENV=(env HOME=/var/lib/redmine REDMINE_INSTANCE=default RAILS_ENV=production)

log() { echo "redmine: $*" >&2; }

install() {
  mkdir -p "$STATE"
  if ! dpkg -s redmine-sqlite >/dev/null 2>&1; then
    log "installing packages"
    debconf-set-selections <<SEL
redmine redmine/current-instances string default
redmine redmine/instances/default/dbconfig-install boolean true
redmine redmine/instances/default/database-type select sqlite3
redmine redmine/instances/default/default-language select en
SEL
    (apt-get update -qq || true)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redmine redmine-sqlite >"$STATE/apt.log" 2>&1 \
      || { tail -30 "$STATE/apt.log" >&2; exit 1; }
  fi
  # The package ships no app server; webrick is installed, only not in the bundle.
  if ! grep -qs webrick "$APP/Gemfile.local"; then
    echo "gem 'webrick'" >>"$APP/Gemfile.local"
    rm -f /var/lib/redmine/Gemfile.lock
  fi
  if [ ! -s /var/lib/redmine/Gemfile.lock ] || ! grep -q webrick /var/lib/redmine/Gemfile.lock; then
    (cd "$APP" && "${RENV[@]}" bundle install --local >"$STATE/bundle.log" 2>&1) || { tail -20 "$STATE/bundle.log" >&2; exit 1; }
    chown www-data:www-data /var/lib/redmine/Gemfile.lock 2>/dev/null || true
  fi
  if [ ! -s "$STATE/key" ] || [ ! -e "$STATE/configured-v2" ]; then
    log "configuring API, login, custom field"
    cat >"$STATE/setup.rb" <<'RUBY'
Setting.rest_api_enabled = '1'
Setting.login_required = '1'
admin = User.find_by_login('admin')
admin.must_change_passwd = false
admin.save!
['RT ticket', 'Duplex key'].each do |name|
  next if IssueCustomField.find_by_name(name)
  cf = IssueCustomField.new(name: name, field_format: 'string', is_for_all: true, is_filter: true, searchable: true)
  cf.trackers = Tracker.all
  cf.save!
end
unless Project.find_by_identifier('eng')
  p = Project.new(name: 'Engineering', identifier: 'eng', is_public: true)
  p.trackers = Tracker.all
  p.enabled_module_names = Redmine::AccessControl.available_project_modules.map(&:to_s)
  p.save!
end
k = admin.api_key
puts "KEY=#{k}"
RUBY
    chmod 644 "$STATE/setup.rb"
    out=$(cd "$APP" && su -s /bin/bash www-data -c "HOME=/var/lib/redmine REDMINE_INSTANCE=default RAILS_ENV=production bundle exec rails runner $STATE/setup.rb" 2>"$STATE/setup.log") \
      || { tail -20 "$STATE/setup.log" >&2; exit 1; }
    echo "$out" | sed -n 's/^KEY=//p' >"$STATE/key"
    [ -s "$STATE/key" ] || { log "no API key printed"; exit 1; }
    stop # a consistent copy: no server writing
    rm -rf "$STATE/db-snapshot"; mkdir -p "$STATE/db-snapshot"
    cp -a "$DBDIR/." "$STATE/db-snapshot/"
    touch "$STATE/configured-v2"
  fi
}

running() { curl -fsS -o /dev/null -H "X-Redmine-API-Key: $(cat "$STATE/key")" "http://127.0.0.1:$PORT/projects.json" 2>/dev/null; }

start() {
  running && return 0
  log "starting on 127.0.0.1:$PORT"
  # The whole subshell's output goes to the log, so no process keeps the
  # caller's stdout open (a pipe reading it would never end).
  (cd "$APP" && exec setsid su -s /bin/bash www-data -c "HOME=/var/lib/redmine REDMINE_INSTANCE=default RAILS_ENV=production exec bundle exec rackup -s webrick -o 127.0.0.1 -p $PORT -E production config.ru") \
    </dev/null >"$STATE/server.log" 2>&1 &
  for _ in $(seq 1 120); do running && return 0; sleep 0.5; done
  tail -20 "$STATE/server.log" >&2; log "did not answer"; exit 1
}

stop() {
  pkill -f "rackup -s webrick -o 127.0.0.1 -p $PORT" 2>/dev/null || true
  for _ in $(seq 1 40); do pgrep -f "rackup -s webrick -o 127.0.0.1 -p $PORT" >/dev/null || return 0; sleep 0.25; done
  pkill -9 -f "rackup -s webrick -o 127.0.0.1 -p $PORT" || true
}

reset() {
  stop
  cp -a "$STATE/db-snapshot/." "$DBDIR/"
  chown -R www-data:www-data "$DBDIR" 2>/dev/null || true
  start
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  reset) reset ;;
  env) echo "export DUPLEX_TEST_REDMINE_URL=http://127.0.0.1:$PORT DUPLEX_TEST_REDMINE_KEY=$(cat "$STATE/key")" ;;
  *) echo "usage: $0 install|start|stop|reset|env" >&2; exit 2 ;;
esac
