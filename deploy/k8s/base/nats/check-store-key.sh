#!/bin/sh
# Refuse to start a NATS node whose JetStream store would be lost: encrypted, but started without
# its key or with another one. nats-server 2.15.1 then leaves the encrypted streams unloaded and
# deletes their files when a part declares its stream again at start-up. The same checks as
# `pingtai up` (pingtai/natsserver.py, NatsServer.check_store_key), so both behave alike.
#
#   check-store-key.sh <data-dir>    (the volume: the store is <data-dir>/jetstream)
#
# PINGTAI_NATS_STORE_CIPHER: chachapoly or aes when the store is encrypted; empty or none if not.
# PINGTAI_NATS_STORE_KEY: its key, from a Secret (deploy/k8s/components/nats-store-encryption).
# Beside the store it keeps <data-dir>/store.key.sha256, a digest of the key it is encrypted with
# (written on the first start with a key), and compares the key with it on every start.
# POSIX sh with busybox's applets: runs in the nats alpine image, as its init container.
set -eu

data=${1:?usage: check-store-key.sh <data-dir>}
cipher=${PINGTAI_NATS_STORE_CIPHER:-none}
key=${PINGTAI_NATS_STORE_KEY:-}
check="$data/store.key.sha256"

refuse() {
    echo "check-store-key: $*" >&2
    exit 1
}

case $cipher in
    none | chachapoly | aes) ;;
    *) refuse "PINGTAI_NATS_STORE_CIPHER=$cipher: use chachapoly, aes or none" ;;
esac

if [ "$cipher" != none ] && [ -z "$key" ]; then
    refuse "the store is to be encrypted ($cipher) but PINGTAI_NATS_STORE_KEY is empty:" \
        "put the key in the Secret nats-store-key"
fi

# nats-server reads the key as a configuration value: digits make it a number, "#" a comment.
if [ -n "$key" ]; then
    case $key in
        [!A-Za-z]* | *[!A-Za-z0-9_-]*) shape=bad ;;
        *) shape=ok ;;
    esac
    if [ "$shape" = bad ] || [ "${#key}" -lt 16 ]; then
        refuse "PINGTAI_NATS_STORE_KEY must be 16 or more letters, digits, - and _," \
            "starting with a letter (a key made with --from-file keeps its newline)"
    fi
fi

if [ "$cipher" = none ]; then
    # Every encrypted stream keeps its own key, sealed with the store's, in meta.key.
    if [ -d "$data/jetstream" ] && find "$data/jetstream" -name meta.key | grep -q .; then
        refuse "the NATS store $data is encrypted: start it with its key" \
            "(deploy/k8s/components/nats-store-encryption and the Secret nats-store-key)"
    fi
    exit 0
fi

digest=$(printf 'pingtai nats store key\000%s' "$key" | sha256sum | cut -d ' ' -f 1)
if [ -e "$check" ] && [ "$(cat "$check")" != "$digest" ]; then
    refuse "the NATS store $data is encrypted with another key ($check):" \
        "put the key it was encrypted with back in the Secret nats-store-key"
fi
# Written whole or not at all: a torn digest would refuse the right key.
printf '%s\n' "$digest" >"$check.new"
mv -f "$check.new" "$check"
echo "check-store-key: the store's key matches ($cipher, $check)"
