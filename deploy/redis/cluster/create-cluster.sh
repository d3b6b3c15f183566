#!/bin/sh
# Join six running nodes (deploy/redis/cluster/node.conf) into a Redis Cluster of 3 masters and 3 replicas.
#   REDIS_PASSWORD_FILE=/etc/tally/redis_password ./create-cluster.sh h1:7000 h2:7000 h3:7000 h4:7000 h5:7000 h6:7000
# Run once, from any host that reaches them all. The password goes to redis-cli in its environment
# (REDISCLI_AUTH), never on a command line that `ps` would show.
set -eu

if [ "$#" -ne 6 ]; then
    echo "usage: REDIS_PASSWORD_FILE=FILE $0 HOST:PORT x6 (three masters, then three replicas)" >&2
    exit 2
fi
REDISCLI_AUTH=$(cat "${REDIS_PASSWORD_FILE:?set REDIS_PASSWORD_FILE to the file holding the password of the nodes}")
export REDISCLI_AUTH
exec redis-cli --cluster create "$@" --cluster-replicas 1 --cluster-yes
