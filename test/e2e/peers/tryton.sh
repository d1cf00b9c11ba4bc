#!/usr/bin/env bash
# Tryton 6.0 from Debian's packages, headless on loopback, for the end-to-end
# tests. Usage: tryton.sh install|start|stop|reset|env
#   install  packages, a SQLite database with party, company, account and
#            account_invoice, a company, a chart of accounts, fiscal years with
#            invoice sequences, a payment term and a payment method, a snapshot
#   start    trytond on 127.0.0.1:$TRYTON_PORT, waits for JSON-RPC
#   reset    stop, restore the snapshot taken after install, start
#   env      prints the export line for the tests (eval it)
# Idempotent: every step checks before it acts. Needs root.
set -euo pipefail

PORT="${TRYTON_PORT:-3300}"
STATE="${DUPLEX_E2E_STATE:-/var/tmp/duplex-e2e}/tryton"
DB=tryton_e2e
DBDIR="$STATE/db"
CONF="$STATE/trytond.conf"
PASSWORD=duplex-e2e

log() { echo "tryton: $*" >&2; }

install() {
  mkdir -p "$STATE" "$DBDIR"
  local pkgs=(tryton-server tryton-modules-party tryton-modules-company tryton-modules-account
    tryton-modules-account-invoice tryton-proteus)
  local missing=0
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing=1; done
  if [ "$missing" = 1 ]; then
    log "installing packages"
    (apt-get update -qq || true)
    # --no-install-recommends: no PostgreSQL, LibreOffice or mail server; the
    # SQLite backend is enough for one test database.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$STATE/apt.log" 2>&1 \
      || { tail -30 "$STATE/apt.log" >&2; exit 1; }
  fi
  # Our own configuration: the package's file serves the web client from
  # /var/lib/tryton; the tests want only JSON-RPC on loopback.
  cat >"$CONF" <<CONF
[database]
uri = sqlite://
path = $DBDIR
[web]
listen = 127.0.0.1:$PORT
root = $STATE/www
[session]
# The tests log in from many short-lived processes on one address.
max_attempt = 50
max_attempt_ip_network = 5000
CONF
  mkdir -p "$STATE/www"
  chown -R tryton:tryton "$STATE" 2>/dev/null || true
  if [ ! -e "$STATE/configured-v2" ]; then
    log "creating database $DB with party, company, account, account_invoice"
    rm -f "$DBDIR/$DB.sqlite"
    touch "$DBDIR/$DB.sqlite"
    echo "$PASSWORD" >"$STATE/admin-password"
    chown -R tryton:tryton "$STATE"
    su -s /bin/bash tryton -c "TRYTONPASSFILE=$STATE/admin-password trytond-admin -c $CONF -d $DB --all --email admin@duplex.test -u country currency party company product account account_product account_invoice" \
      >"$STATE/admin.log" 2>&1 || { tail -30 "$STATE/admin.log" >&2; exit 1; }
    log "creating company, chart of accounts, fiscal years"
    cat >"$STATE/setup.py" <<'PY'
import datetime, sys
from proteus import config, Model, Wizard
from trytond.modules.company.tests.tools import create_company, get_company
from trytond.modules.account.tests.tools import create_fiscalyear, create_chart, get_accounts
from trytond.modules.account_invoice.tests.tools import set_fiscalyear_invoice_sequences, create_payment_term

config.set_trytond(database=sys.argv[1], config_file=sys.argv[2])
Party = Model.get('party.party')
own = Party(name='Duplex E2E Ltd')
own.save()
create_company(party=own)
company = get_company()
create_chart(company)
accounts = get_accounts(company)
today = datetime.date.today()
# This year and the next, so a snapshot taken in December still posts in January.
for year in (today.year, today.year + 1):
    fy = set_fiscalyear_invoice_sequences(create_fiscalyear(company, today=datetime.date(year, 6, 1)))
    fy.click('create_period')
term = create_payment_term()
term.name = 'Net 30'
term.lines[0].relativedeltas.new(days=30)
term.save()
Config = Model.get('account.configuration')
conf = Config(1)
conf.default_customer_payment_term = term
conf.save()
Journal = Model.get('account.journal')
cash, = Journal.find([('code', '=', 'CASH')])
Method = Model.get('account.invoice.payment.method')
Method(name='Cash', journal=cash, credit_account=accounts['cash'], debit_account=accounts['cash']).save()
print('OK')
PY
    chown tryton:tryton "$STATE/setup.py"
    (cd "$STATE" && su -s /bin/bash tryton -c "DB_NAME=$DB python3 $STATE/setup.py $DB $CONF") >"$STATE/setup.log" 2>&1 \
      || { tail -30 "$STATE/setup.log" >&2; exit 1; }
    grep -q '^OK' "$STATE/setup.log" || { tail -30 "$STATE/setup.log" >&2; exit 1; }
    stop # a consistent copy: no server writing
    cp -a "$DBDIR/$DB.sqlite" "$STATE/db-snapshot.sqlite"
    touch "$STATE/configured-v2"
  fi
}

running() {
  curl -fsS -o /dev/null -H 'Content-Type: application/json' \
    -d '{"id":1,"method":"common.server.version","params":[]}' "http://127.0.0.1:$PORT/" 2>/dev/null
}

start() {
  running && return 0
  log "starting on 127.0.0.1:$PORT"
  # The whole subshell's output goes to the log, so no process keeps the
  # caller's stdout open (a pipe reading it would never end).
  # From its state folder, never the caller's: a server left running from a
  # checkout that is removed afterwards (a CI clone) kept that folder as its
  # working directory, and posting an invoice there failed with ENOENT.
  (cd "$STATE" && exec setsid su -s /bin/bash tryton -c "exec trytond -c $CONF -d $DB") </dev/null >"$STATE/server.log" 2>&1 &
  for _ in $(seq 1 120); do running && return 0; sleep 0.5; done
  tail -20 "$STATE/server.log" >&2; log "did not answer"; exit 1
}

stop() {
  pkill -f "trytond -c $CONF" 2>/dev/null || true
  for _ in $(seq 1 40); do pgrep -f "trytond -c $CONF" >/dev/null || return 0; sleep 0.25; done
  pkill -9 -f "trytond -c $CONF" || true
}

reset() {
  stop
  cp -a "$STATE/db-snapshot.sqlite" "$DBDIR/$DB.sqlite"
  chown tryton:tryton "$DBDIR/$DB.sqlite"
  start
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  reset) reset ;;
  env) echo "export TRYTON_URL=http://127.0.0.1:$PORT TRYTON_DATABASE=$DB TRYTON_USER=admin TRYTON_PASSWORD=$PASSWORD" ;;
  *) echo "usage: $0 install|start|stop|reset|env" >&2; exit 2 ;;
esac
