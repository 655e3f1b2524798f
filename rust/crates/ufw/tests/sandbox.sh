#!/bin/sh
# A throw-away ufw sandbox: two network namespaces joined by a veth pair, and a private copy of
# ufw's configuration that only processes started through `sandbox.sh run` see.
#
#   ufwt-a  10.239.0.1/24  fd39::1/64   runs ufw (its own iptables/nftables tables)
#   ufwt-b  10.239.0.2/24  fd39::2/64   the peer that connects to ufwt-a
#
# `run` enters ufwt-a and a private mount namespace (`unshare --mount --propagation private`)
# in which $STATE/etc-ufw is bind-mounted over /etc/ufw, $STATE/default-ufw over
# /etc/default/ufw and a tmpfs over /run (ufw's lock file). Nothing in the root network or
# mount namespace is changed: ufw's CLI, its init script and iptables only ever see the copies.
#
# usage: sandbox.sh up|down|run CMD...|peer CMD...
#   STATE (default /tmp/ufwt-state) holds the copies.
set -eu

STATE=${STATE:-/tmp/ufwt-state}
A=ufwt-a
B=ufwt-b

up() {
    down
    mkdir -p "$STATE"
    cp -a /etc/ufw "$STATE/etc-ufw"
    cp -a /etc/default/ufw "$STATE/default-ufw"
    # Start from ufw's pristine state whatever the machine's copy looks like.
    if [ -d /usr/share/ufw/iptables ]; then
        for f in user.rules user6.rules; do
            cp /usr/share/ufw/iptables/$f "$STATE/etc-ufw/$f"
        done
    fi
    sed -i 's/^ENABLED=.*/ENABLED=no/' "$STATE/etc-ufw/ufw.conf"
    ip netns add $A
    ip netns add $B
    ip link add ufwt-va netns $A type veth peer name ufwt-vb netns $B
    ip -n $A addr add 10.239.0.1/24 dev ufwt-va
    ip -n $B addr add 10.239.0.2/24 dev ufwt-vb
    ip -n $A addr add fd39::1/64 dev ufwt-va nodad
    ip -n $B addr add fd39::2/64 dev ufwt-vb nodad
    for ns in $A $B; do
        ip -n "$ns" link set lo up
    done
    ip -n $A link set ufwt-va up
    ip -n $B link set ufwt-vb up
}

down() {
    for ns in $A $B; do
        if ip netns list | grep -qw "^$ns"; then
            # Kill what is still running in our namespaces (servers of a test), by pid.
            for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null || true; done
            ip netns del "$ns"
        fi
    done
    rm -rf "$STATE"
}

run() {
    # The inner script's $0 and $@ are its own arguments: single quotes on purpose.
    # shellcheck disable=SC2016
    exec ip netns exec $A unshare --mount --propagation private sh -c '
        set -e
        mount --bind "$0/etc-ufw" /etc/ufw
        mount --bind "$0/default-ufw" /etc/default/ufw
        mount -t tmpfs ufwt-run /run
        exec "$@"' "$STATE" "$@"
}

case "${1:-}" in
up) up ;;
down) down ;;
run) shift; run "$@" ;;
peer) shift; exec ip netns exec $B "$@" ;;
*) echo "usage: $0 up|down|run CMD...|peer CMD..." >&2; exit 2 ;;
esac
