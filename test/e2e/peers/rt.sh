#!/usr/bin/env bash
# Request Tracker 5 from Debian's packages, headless on loopback, for the
# end-to-end tests. Usage: rt.sh install|start|stop|reset|env
#   install  packages, site config, an API token, the Escalation custom field, a snapshot
#   start    rt-server on 127.0.0.1:$RT_PORT, waits for REST2
#   reset    stop, restore the snapshot taken after install, start
#   env      prints the export line for the tests (eval it)
# Idempotent: every step checks before it acts. Needs root.
set -euo pipefail

PORT="${RT_PORT:-3200}"
STATE="${DUPLEX_E2E_STATE:-/var/tmp/duplex-e2e}/rt"
DBDIR=/var/lib/dbconfig-common/sqlite3/request-tracker5
LIB=/usr/share/request-tracker5/lib

log() { echo "rt: $*" >&2; }

install() {
  mkdir -p "$STATE"
  if ! dpkg -s rt5-db-sqlite >/dev/null 2>&1 || ! dpkg -s rt5-standalone >/dev/null 2>&1; then
    log "installing packages"
    debconf-set-selections <<SEL
request-tracker5 request-tracker5/rtname string duplex-e2e
request-tracker5 request-tracker5/organization string duplex.test
request-tracker5 request-tracker5/correspondaddress string rt@duplex.test
request-tracker5 request-tracker5/commentaddress string rt-comment@duplex.test
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1
request-tracker5 request-tracker5/webpath string /rt
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/dbconfig-install boolean true
request-tracker5 request-tracker5/database-type select sqlite3
request-tracker5 request-tracker5/initial-root-password password password
SEL
    (apt-get update -qq || true)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends request-tracker5 rt5-db-sqlite rt5-standalone >"$STATE/apt.log" 2>&1 \
      || { tail -30 "$STATE/apt.log" >&2; exit 1; }
  fi
  chmod 644 /etc/request-tracker5/RT_SiteConfig.pm
  cat >/etc/request-tracker5/RT_SiteConfig.d/99-duplex-e2e.pm <<PERL
Set(\$WebPath, "");
Set(\$WebDomain, "127.0.0.1");
Set(\$WebPort, $PORT);
Set(\$WebBaseURL, "http://127.0.0.1:$PORT");
Set(\$LogToSTDERR, "warning");
Set(\$LogToSyslog, undef);
Set(\$MailCommand, "mbox");
1;
PERL
  chmod 644 /etc/request-tracker5/RT_SiteConfig.d/99-duplex-e2e.pm
  if [ ! -s "$STATE/token" ] || [ ! -e "$STATE/configured-v2" ]; then
    log "creating token and custom fields"
    cat >"$STATE/setup.pl" <<'PERL'
use strict; use warnings;
use lib '/usr/share/request-tracker5/lib';
use RT; RT::LoadConfig(); RT::Init();
my $root = RT::User->new(RT->SystemUser); $root->Load('root');
for my $name ('Escalation', 'Engineering URL', 'Duplex key') {
  my $cf = RT::CustomField->new(RT->SystemUser);
  $cf->LoadByName(Name => $name, LookupType => RT::Ticket->CustomFieldLookupType);
  next if $cf->id;
  my ($ok, $msg) = $cf->Create(Name => $name, Type => 'FreeformSingle', LookupType => RT::Ticket->CustomFieldLookupType);
  die "cf $name: $msg" unless $ok;
  my $q = RT::Queue->new(RT->SystemUser);
  ($ok, $msg) = $cf->AddToObject($q);
  die "cf $name global: $msg" unless $ok;
}
exit 0 if $ENV{DUPLEX_NO_TOKEN};
my $tok = RT::AuthToken->new(RT->SystemUser);
my ($ok, $msg, $text) = $tok->Create(Owner => $root->id, Description => 'duplex e2e');
die "token: $msg" unless $ok;
print "TOKEN=$text\n";
PERL
    chmod 644 "$STATE/setup.pl"
    notoken=""; [ -s "$STATE/token" ] && notoken=1
    out=$(su -s /bin/bash www-data -c "DUPLEX_NO_TOKEN=$notoken perl $STATE/setup.pl" 2>"$STATE/setup.log") || { tail -20 "$STATE/setup.log" >&2; exit 1; }
    [ -n "$notoken" ] || echo "$out" | sed -n 's/^TOKEN=//p' >"$STATE/token"
    [ -s "$STATE/token" ] || { log "no token printed"; cat "$STATE/setup.log" >&2; exit 1; }
    stop # a consistent copy: no server writing
    rm -rf "$STATE/db-snapshot"; mkdir -p "$STATE/db-snapshot"
    cp -a "$DBDIR/." "$STATE/db-snapshot/"
    touch "$STATE/configured-v2"
  fi
}

running() { curl -fsS -o /dev/null -H "Authorization: token $(cat "$STATE/token")" "http://127.0.0.1:$PORT/REST/2.0/queues/all" 2>/dev/null; }

start() {
  running && return 0
  log "starting on 127.0.0.1:$PORT"
  (cd "$STATE" && exec setsid su -s /bin/bash www-data -c "exec /usr/share/request-tracker5/libexec/rt-server --host 127.0.0.1 --port $PORT --max-workers 2") \
    </dev/null >"$STATE/server.log" 2>&1 &
  for _ in $(seq 1 120); do running && return 0; sleep 0.5; done
  tail -20 "$STATE/server.log" >&2; log "did not answer"; exit 1
}

stop() {
  pkill -f "rt-server --host 127.0.0.1 --port $PORT" 2>/dev/null || true
  for _ in $(seq 1 40); do pgrep -f "rt-server --host 127.0.0.1 --port $PORT" >/dev/null || return 0; sleep 0.25; done
  pkill -9 -f "rt-server --host 127.0.0.1 --port $PORT" || true
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
  env) echo "export DUPLEX_TEST_RT_URL=http://127.0.0.1:$PORT DUPLEX_TEST_RT_TOKEN=$(cat "$STATE/token") DUPLEX_TEST_RT_PASSWORD=password" ;;
  *) echo "usage: $0 install|start|stop|reset|env" >&2; exit 2 ;;
esac
