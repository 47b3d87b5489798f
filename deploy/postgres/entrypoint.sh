#!/bin/sh
# Starts PostgreSQL for the bot replicas; on the first start, makes the cluster first.
#
# The cluster is $PGDATA (/var/lib/postgresql/data/15, on the volume). The first start makes it in
# a folder beside it and renames it when done, so a start that failed half-way leaves nothing that
# a later start would take for a finished cluster. It then has:
#   - the database `agent`, owned by the role `agent`, whose password is POSTGRES_PASSWORD (or
#     the contents of the file POSTGRES_PASSWORD_FILE), stored as a SCRAM verifier;
#   - network clients allowed only as `agent` to `agent`, with that password (scram-sha-256);
#     the superuser `postgres` only over the Unix socket, as the `postgres` OS user (peer), which
#     is what `docker exec <container> psql` is.
# The password is read on the first start only: changing it later is `ALTER ROLE agent PASSWORD`.
# Arguments are passed to `postgres` (e.g. `-c shared_buffers=256MB`).
set -eu

: "${PGDATA:=/var/lib/postgresql/data/15}"
export PGDATA

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
    fi
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres-entrypoint: set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) for the" \
            "first start: it is the password of the database role 'agent'" >&2
        exit 1
    fi
    export POSTGRES_PASSWORD
    work="$PGDATA.init"
    rm -rf "$work"
    echo "postgres-entrypoint: making the cluster in $PGDATA"
    initdb --pgdata="$work" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    cat >>"$work/pg_hba.conf" <<'HBA'

# Network clients (the replicas, on the compose network): the role agent, to its database, with
# its password.
host    agent           agent           0.0.0.0/0               scram-sha-256
host    agent           agent           ::/0                    scram-sha-256
HBA
    # The role and the database, on a server that listens to its Unix socket only.
    pg_ctl --pgdata="$work" --wait --silent -o "-c listen_addresses=''" start
    psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --username=postgres --dbname=postgres <<'SQL'
\getenv password POSTGRES_PASSWORD
SET password_encryption = 'scram-sha-256';
CREATE ROLE agent LOGIN PASSWORD :'password';
CREATE DATABASE agent OWNER agent;
REVOKE ALL ON DATABASE agent FROM PUBLIC;
SQL
    pg_ctl --pgdata="$work" --wait --silent --mode=fast stop
    mv "$work" "$PGDATA"
    echo "postgres-entrypoint: cluster ready"
fi
unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE

exec postgres -c listen_addresses='*' "$@"
