#!/usr/bin/env bash
# Self-test of the network-namespace lab (default host table).  Brings the
# lab up (repairing it if needed), checks that it behaves like 12 separate
# servers, undoes the runtime firewall changes it makes, and leaves the lab
# up (pass --down to tear it down at the end).  Needs root.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$LAB_DIR/lab.sh
STATE=${VORLAB_STATE:-/var/lib/vorlab}
KEY=$STATE/id_ed25519
SSH=(ssh -i "$KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=5)
declare -A HOSTS=([consul1]=11 [consul2]=12 [consul3]=13 [super1]=21 [django1]=22 [web1]=23
                  [sdk1]=24 [compute1]=31 [compute2]=32 [rabbit1]=41 [vault1]=42 [pg1]=43)
passed=0 failed=0

check() {                         # description command...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        passed=$((passed + 1)); printf 'ok   %s\n' "$what"
    else
        failed=$((failed + 1)); printf 'FAIL %s\n' "$what"
    fi
}
in_host() { "$LAB" exec "$@"; }
tcp_banner() {                    # from-host ip port expected-banner
    [[ $(in_host "$1" ncat -w 3 "$2" "$3" </dev/null 2>/dev/null) == "$4" ]]
}
tcp_blocked() {                   # from-host ip port
    ! in_host "$1" ncat -w 3 "$2" "$3" </dev/null >/dev/null 2>&1
}
udp_answer() {                    # from-host ip port -> prints the answer or nothing
    in_host "$1" python3 -c '
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b"selftest", (sys.argv[1], int(sys.argv[2])))
try: print(s.recv(200).decode().strip())
except OSError: pass' "$2" "$3"
}
ssh_ok() {                        # host octet: firewalld running + right hostname over SSH
    local out
    out=$("${SSH[@]}" "root@10.231.0.$2" 'firewall-cmd --state; hostname; test -S /run/dbus/system_bus_socket && echo bus') || return 1
    [[ $out == $'running\n'"$1"$'\nbus' ]]
}

[[ $EUID == 0 ]] || { echo "selftest: must run as root" >&2; exit 1; }
root_rules_before=$(nft list ruleset 2>/dev/null | md5sum)
"$LAB" up
check "status: every host and daemon up" "$LAB" status

# 1. SSH into every host, in parallel.
declare -A sshpid=()
for h in "${!HOSTS[@]}"; do ssh_ok "$h" "${HOSTS[$h]}" & sshpid[$h]=$!; done
for h in "${!HOSTS[@]}"; do check "ssh $h: firewalld running, hostname, private bus" wait "${sshpid[$h]}"; done

# 2. Each host has its own firewalld.
in_host consul1 firewall-cmd -q --add-port=18080/tcp
check "consul1 runtime port visible in consul1" in_host consul1 firewall-cmd -q --query-port=18080/tcp
check "consul1 runtime port absent from consul2" bash -c "! '$LAB' exec consul2 firewall-cmd -q --query-port=18080/tcp"
in_host consul1 firewall-cmd -q --remove-port=18080/tcp
check "consul1 /etc/firewalld is private" bash -c "[[ \$('$LAB' exec consul1 stat -c %i /etc/firewalld) != \$(stat -c %i /etc/firewalld) ]]"

# 3. Flows between hosts are filtered by the receiving host's firewalld.
check "consul1 -> django1 tcp/22 answers SSH" bash -c "'$LAB' exec consul1 ncat -w 3 10.231.0.22 22 </dev/null | grep -q '^SSH-2.0-'"
check "consul1 -> django1 tcp/18080 blocked" tcp_blocked consul1 10.231.0.22 18080
check "consul1 -> django1 udp/8301 blocked" test -z "$(udp_answer consul1 10.231.0.22 8301)"
in_host django1 firewall-cmd -q --add-port=18080/tcp --add-port=8301/udp
check "consul1 -> django1 tcp/18080 open once allowed" tcp_banner consul1 10.231.0.22 18080 "vorlab django1 tcp/18080"
check "consul1 -> django1 tcp/18080 open over IPv6" tcp_banner consul1 fd00:231::22 18080 "vorlab django1 tcp/18080"
check "consul1 -> django1 udp/8301 answered once allowed" test "$(udp_answer consul1 10.231.0.22 8301)" = "vorlab django1 udp/8301"
check "django1 listener logged consul1's flow" grep -q "tcp/18080 from 10.231.0.11:" "$STATE/django1/log/listeners.log"
in_host django1 firewall-cmd -q --remove-port=18080/tcp --remove-port=8301/udp
check "consul1 -> django1 tcp/18080 blocked again" tcp_blocked consul1 10.231.0.22 18080

# 4. The root namespace is untouched.
check "root nftables ruleset unchanged" test "$(nft list ruleset 2>/dev/null | md5sum)" = "$root_rules_before"
check "root /etc/firewalld pristine (dpkg -V)" test -z "$(dpkg -V firewalld 2>/dev/null)"
check "hosts' /run is private (lab files only under the state dir)" bash -c "[[ ! -e /run/vorlab-listeners.pid && -S '$STATE/consul1/run/dbus/system_bus_socket' ]]"

# 5. Recovery: kill -9 a firewalld, `up` restarts it.
kill -9 "$(cat "$STATE/web1/run/firewalld.pid")"
sleep 0.5
check "status notices the dead firewalld" bash -c "! '$LAB' status"
"$LAB" up >/dev/null
check "up restarted web1's firewalld" bash -c "[[ \$('$LAB' exec web1 firewall-cmd --state) == running ]]"
check "web1 eth0 back in the default zone" bash -c "[[ \$('$LAB' exec web1 firewall-cmd --get-zone-of-interface=eth0) == public ]]"

if [[ ${1:-} == --down ]]; then "$LAB" down; fi
printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
