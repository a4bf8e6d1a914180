#!/usr/bin/env bash
# Prepare this machine for `make test`, or say exactly what is missing and exit 1.
#
#   * Debian packages the suite needs: libmariadb-dev + pkg-config (tox builds
#     mysqlclient for the MariaDB env), chromium + chromium-driver (the admin's
#     browser test), python3-venv (when .venv does not exist yet). Installed with
#     apt-get when running as root or with passwordless sudo.
#   * The local PostgreSQL and MariaDB servers: started when installed but down
#     (pg_ctlcluster, start-stop-daemon mariadbd), and the `autotask` PostgreSQL
#     database created. Servers are never installed (they need their own
#     authentication set-up): run `docker compose up -d` or install them yourself.
#   * PgBouncer (Debian's pgbouncer package), for the tests that run through a
#     pooler (tox env py312-django61-pgbouncer): a private instance in transaction
#     mode on AUTOTASK_TEST_PGBOUNCER's port (default 6432), in front of the local
#     PostgreSQL, with its own config, pid and log file in $PGBOUNCER_DIR
#     (default ${TMPDIR:-/tmp}/autotask-pgbouncer-<port>). Started as a daemon
#     ($PGBOUNCER, default the one on PATH), never through systemd; left running
#     when one already answers on that port.
#
# Only servers on this machine (127.0.0.1 / localhost) are started; remote ones
# named by AUTOTASK_TEST_PG / AUTOTASK_TEST_MYSQL are only checked for reachability.
#
# --dry-run prints what would be installed or started, and changes nothing.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1

PG_URL="${AUTOTASK_TEST_PG:-postgres://postgres@127.0.0.1:5432/autotask}"
MYSQL_URL="${AUTOTASK_TEST_MYSQL:-mysql://root@127.0.0.1:3306/test}"
MARIADBD="${MARIADBD:-$(command -v mariadbd || echo /usr/sbin/mariadbd)}"
WAIT_SECONDS="${PREPARE_WAIT_SECONDS:-30}"

problems=()

say() { echo "prepare_test_machine: $*"; }

run() {
    if ((DRY_RUN)); then
        say "would run: $*"
        return 0
    fi
    "$@"
}

# URL -> "host port" (scheme://[user[:password]@]host[:port][/db]).
host_port() {
    local rest="${1#*://}" default_port="$2"
    rest="${rest%%/*}"
    rest="${rest##*@}"
    if [[ "$rest" == *:* ]]; then echo "${rest%%:*} ${rest##*:}"; else echo "$rest $default_port"; fi
}

url_user() {
    local rest="${1#*://}"
    rest="${rest%%/*}"
    [[ "$rest" == *@* ]] || return 0
    rest="${rest%%@*}"
    echo "${rest%%:*}"
}

reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

is_local() { [[ "$1" == 127.0.0.1 || "$1" == localhost || "$1" == ::1 ]]; }

wait_reachable() {
    local i
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        reachable "$1" "$2" && return 0
        sleep 1
    done
    return 1
}

# --- Debian packages ---------------------------------------------------------

packages=()
if ! { pkg-config --exists mysqlclient || pkg-config --exists libmariadb || pkg-config --exists mariadb; } 2>/dev/null; then
    packages+=(libmariadb-dev pkg-config)
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    packages+=(chromium)
fi
if ! command -v chromedriver >/dev/null 2>&1; then
    packages+=(chromium-driver)
fi
PGBOUNCER_URL="${AUTOTASK_TEST_PGBOUNCER:-postgres://postgres@127.0.0.1:6432/autotask}"
PGBOUNCER="${PGBOUNCER:-$(command -v pgbouncer || echo /usr/sbin/pgbouncer)}"
read -r bouncer_host bouncer_port <<<"$(host_port "$PGBOUNCER_URL" 6432)"
if is_local "$bouncer_host" && [[ ! -x "$PGBOUNCER" ]] && ! reachable "$bouncer_host" "$bouncer_port"; then
    packages+=(pgbouncer)
fi
if [[ ! -x .venv/bin/python ]] && ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    packages+=(python3-venv)
fi

if ((${#packages[@]})); then
    sudo_cmd=()
    can_install=0
    if command -v apt-get >/dev/null 2>&1; then
        if [[ "$(id -u)" == 0 ]]; then
            can_install=1
        elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
            can_install=1
            sudo_cmd=(sudo -n)
        fi
    fi
    if ((can_install)); then
        say "installing ${packages[*]}"
        if ! run "${sudo_cmd[@]}" apt-get update -qq \
            || ! run "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"; then
            problems+=("apt-get could not install ${packages[*]}; install them, then run make test again")
        fi
    else
        problems+=("missing packages: ${packages[*]} (Debian/Ubuntu: sudo apt-get install ${packages[*]}; elsewhere the MariaDB/MySQL client headers with pkg-config, Chromium and its chromedriver)")
    fi
fi

# --- PostgreSQL --------------------------------------------------------------

read -r pg_host pg_port <<<"$(host_port "$PG_URL" 5432)"
pg_user="$(url_user "$PG_URL")"
pg_db="${PG_URL#*://}"
pg_db="${pg_db#*/}"
[[ "$pg_db" == "${PG_URL#*://}" ]] && pg_db=""
pg_db="${pg_db%%\?*}"

if ! reachable "$pg_host" "$pg_port"; then
    cluster=""
    if is_local "$pg_host" && command -v pg_lsclusters >/dev/null 2>&1; then
        cluster="$(pg_lsclusters -h 2>/dev/null | awk -v port="$pg_port" '$3 == port {print $1 " " $2; exit}')"
    fi
    if [[ -n "$cluster" ]] && command -v pg_ctlcluster >/dev/null 2>&1; then
        say "starting PostgreSQL cluster $cluster"
        # shellcheck disable=SC2086
        if ! run pg_ctlcluster --skip-systemctl-redirect $cluster start \
            || { ((DRY_RUN == 0)) && ! wait_reachable "$pg_host" "$pg_port"; }; then
            problems+=("PostgreSQL cluster $cluster did not start; see its log under /var/log/postgresql")
        fi
    else
        problems+=("PostgreSQL is not reachable at $pg_host:$pg_port: run 'docker compose up -d', or install PostgreSQL (user postgres, trust or password in AUTOTASK_TEST_PG) and start it")
    fi
fi

if [[ -n "$pg_db" ]] && command -v psql >/dev/null 2>&1 && { ((DRY_RUN)) || reachable "$pg_host" "$pg_port"; }; then
    psql_args=(-h "$pg_host" -p "$pg_port" -U "${pg_user:-postgres}" -d postgres -v ON_ERROR_STOP=1)
    if ((DRY_RUN)); then
        say "would create the PostgreSQL database $pg_db if it does not exist"
    elif ! exists="$(psql "${psql_args[@]}" -Atc "SELECT 1 FROM pg_database WHERE datname = '$pg_db'" 2>&1)"; then
        problems+=("cannot connect to PostgreSQL as ${pg_user:-postgres}: $exists")
    elif [[ "$exists" != 1 ]]; then
        say "creating the PostgreSQL database $pg_db"
        psql "${psql_args[@]}" -qc "CREATE DATABASE \"$pg_db\"" || problems+=("could not create the PostgreSQL database $pg_db")
    fi
fi

# --- PgBouncer ---------------------------------------------------------------
# Transaction mode, as large sites run it: every server connection is handed to
# another client after each transaction.  Any database name reaches the server
# of the same name (the tests' test_autotask_* databases included); trust
# authentication for the users of the userlist (the test servers trust local
# connections too).

PGBOUNCER_DIR="${PGBOUNCER_DIR:-${TMPDIR:-/tmp}/autotask-pgbouncer-$bouncer_port}"

write_pgbouncer_config() {
    mkdir -p "$PGBOUNCER_DIR" || return 1
    cat >"$PGBOUNCER_DIR/userlist.txt" <<USERS
"postgres" ""
"root" ""
"${pg_user:-postgres}" ""
USERS
    cat >"$PGBOUNCER_DIR/pgbouncer.ini" <<CONFIG
; Written by scripts/prepare_test_machine.sh: autotask's tests through a pooler.
[databases]
* = host=$pg_host port=$pg_port

[pgbouncer]
listen_addr = $bouncer_host
listen_port = $bouncer_port
unix_socket_dir =
pool_mode = transaction
auth_type = trust
auth_file = $PGBOUNCER_DIR/userlist.txt
admin_users = postgres
pidfile = $PGBOUNCER_DIR/pgbouncer.pid
logfile = $PGBOUNCER_DIR/pgbouncer.log
; Few server connections per database and user, many clients: what a pooler is for.
default_pool_size = 10
max_client_conn = 500
; psycopg 2 sends extra_float_digits at connect time.
ignore_startup_parameters = extra_float_digits
CONFIG
    # A pid file left by an instance that died keeps a new one from starting.
    local pidfile="$PGBOUNCER_DIR/pgbouncer.pid"
    if [[ -f "$pidfile" ]] && ! kill -0 "$(<"$pidfile")" 2>/dev/null; then
        say "removing the stale pid file $pidfile"
        rm -f "$pidfile" || return 1
    fi
    # PgBouncer refuses to run as root: it drops to the PostgreSQL account (-u).
    if [[ "$(id -u)" == 0 ]] && id postgres >/dev/null 2>&1; then
        chown -R postgres "$PGBOUNCER_DIR"
    fi
}

if is_local "$bouncer_host" && ! reachable "$bouncer_host" "$bouncer_port"; then
    if [[ -x "$PGBOUNCER" ]] || ((DRY_RUN)); then
        say "starting PgBouncer (transaction mode) on $bouncer_host:$bouncer_port, files in $PGBOUNCER_DIR"
        bouncer_args=(-d "$PGBOUNCER_DIR/pgbouncer.ini")
        [[ "$(id -u)" == 0 ]] && bouncer_args=(-u postgres "${bouncer_args[@]}")
        if ((DRY_RUN)); then
            say "would write $PGBOUNCER_DIR/pgbouncer.ini and run: $PGBOUNCER ${bouncer_args[*]}"
        elif ! write_pgbouncer_config || ! "$PGBOUNCER" "${bouncer_args[@]}" \
            || ! wait_reachable "$bouncer_host" "$bouncer_port"; then
            problems+=("PgBouncer did not start on $bouncer_host:$bouncer_port; see $PGBOUNCER_DIR/pgbouncer.log")
        fi
    else
        problems+=("PgBouncer is not installed (Debian/Ubuntu: sudo apt-get install pgbouncer), or run one in transaction mode at $bouncer_host:$bouncer_port (AUTOTASK_TEST_PGBOUNCER)")
    fi
elif ! reachable "$bouncer_host" "$bouncer_port"; then
    problems+=("PgBouncer is not reachable at $bouncer_host:$bouncer_port (AUTOTASK_TEST_PGBOUNCER)")
fi

# --- MariaDB -----------------------------------------------------------------

read -r my_host my_port <<<"$(host_port "$MYSQL_URL" 3306)"
if ! reachable "$my_host" "$my_port"; then
    if is_local "$my_host" && [[ -x "$MARIADBD" ]] && command -v start-stop-daemon >/dev/null 2>&1; then
        say "starting MariaDB ($MARIADBD)"
        if ! run start-stop-daemon --start --oknodo --background --exec "$MARIADBD" \
            || { ((DRY_RUN == 0)) && ! wait_reachable "$my_host" "$my_port"; }; then
            problems+=("MariaDB ($MARIADBD) did not start; see its error log")
        fi
    else
        problems+=("MariaDB/MySQL is not reachable at $my_host:$my_port: run 'docker compose up -d', or install MariaDB (user root without a password, or AUTOTASK_TEST_MYSQL) and start it")
    fi
fi

if ((${#problems[@]})); then
    echo >&2
    echo "make test cannot run on this machine yet:" >&2
    for problem in "${problems[@]}"; do
        echo "  - $problem" >&2
    done
    exit 1
fi
((DRY_RUN)) || say "ready"
exit 0
