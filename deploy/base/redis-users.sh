#!/bin/sh
# Redis' users for Sidecar (DEPLOYMENT.md, "Redis users"): writes an ACL file for
# `redis-server --aclfile`, then runs the command given after it, if any.
#
#   sh redis-users.sh /tmp/users.acl [redis-server --aclfile /tmp/users.acl ...]
#
# Docker Compose runs it as the Redis container's entrypoint; Kubernetes in an init container.
# Each component logs in as its own user, with its password from the environment:
#
#   REDIS_PASSWORD_API, REDIS_PASSWORD_WORKER, REDIS_PASSWORD_BEAT, REDIS_PASSWORD_FLOWER
#   REDIS_PASSWORD          the password of every component that has none of its own
#   REDIS_PASSWORD_ADMIN    optional: an `admin` user that may run every command (backups)
#
# The file holds only SHA-256 digests of the passwords, and the variables are unset before the
# command runs, so redis-server sees no password in its environment, arguments or files.
#
# Users:
#   default  off: a client that does not log in may run nothing.
#   probe    no password, and nothing but PING: health checks need no secret.
#   api, worker
#            every key and channel; no @dangerous command (CONFIG, FLUSHALL, KEYS, DEBUG,
#            MODULE, SHUTDOWN, ACL, MONITOR, ...). INFO is denied as well.
#   beat, flower
#            the same commands, but only Celery's keys (the queues, kombu's bindings and
#            unacked sets, the pidbox reply queues): never a job, a result or a limit.
set -eu

acl_file=${1:?usage: redis-users.sh ACL_FILE [COMMAND...]}
shift

fail() {
    echo "redis-users: $*" >&2
    exit 1
}

digest() {
    printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

# A password for one user: its own variable, else REDIS_PASSWORD. Refused when missing, short,
# the template's placeholder, or not URL-safe (it goes into REDIS_URL as it is).
password() {
    eval "value=\${REDIS_PASSWORD_$1:-\${REDIS_PASSWORD:-}}"
    [ -n "$value" ] || fail "no password for user $2: set REDIS_PASSWORD_$1 or REDIS_PASSWORD" \
        "(e.g. openssl rand -hex 32)"
    [ "${#value}" -ge 16 ] || fail "the password of user $2 is shorter than 16 characters"
    case $value in
        *change-me* | *CHANGE-ME* | *changeme*) fail "the password of user $2 is a placeholder" ;;
        *[!A-Za-z0-9._~-]*) fail "the password of user $2 may hold only A-Z a-z 0-9 . _ ~ -" ;;
    esac
    printf '%s' "$value"
}

# Celery's keys: the queues and the reply queues of `celery inspect` and Flower's broadcasts
# (each with kombu's priority suffixes, which Flower's broker view reads too), kombu's exchange
# bindings and unacked bookkeeping.
broker_keys='~interactive* ~batch* ~celery* ~_kombu.* ~unacked* ~*.reply.celery.pidbox*'
app_commands='+@all -@dangerous'

# Each assignment on its own line, so that a refused password stops the script (set -e).
api=$(password API api)
worker=$(password WORKER worker)
beat=$(password BEAT beat)
flower=$(password FLOWER flower)
admin=
if [ -n "${REDIS_PASSWORD_ADMIN:-}" ]; then
    admin=$(password ADMIN admin)
fi

tmp="$acl_file.new"
umask 077
{
    echo "user default off resetkeys resetchannels -@all"
    echo "user probe on nopass resetkeys resetchannels -@all +ping"
    echo "user api on #$(digest "$api") ~* &* $app_commands"
    echo "user worker on #$(digest "$worker") ~* &* $app_commands"
    echo "user beat on #$(digest "$beat") $broker_keys &* $app_commands"
    echo "user flower on #$(digest "$flower") $broker_keys &* $app_commands"
    if [ -n "$admin" ]; then
        echo "user admin on #$(digest "$admin") ~* &* +@all"
    fi
} > "$tmp"
# Readable by the server when it runs as another user than this script (Compose's entrypoint
# runs as root, then drops to `redis`): the file holds digests only.
chmod 0444 "$tmp"
mv -f "$tmp" "$acl_file"

unset api worker beat flower admin REDIS_PASSWORD REDIS_PASSWORD_API REDIS_PASSWORD_WORKER REDIS_PASSWORD_BEAT \
    REDIS_PASSWORD_FLOWER REDIS_PASSWORD_ADMIN
[ "$#" -eq 0 ] || exec "$@"
