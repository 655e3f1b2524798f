#!/bin/sh
# End-to-end test of the ufw backend with the real ufw, inside the sandbox of sandbox.sh: its
# own network namespaces (ufwt-a runs ufw, ufwt-b is the peer, 10.239.0.0/24 + fd39::/64 on a
# veth pair) and a private mount namespace with copies of /etc/ufw and /etc/default/ufw.
# Nothing outside those namespaces is touched; packets only go over the veth pair. The record
# of the outgoing policy goes to $STATE too (VORFW_UFW_OUTPUT_RECORD), not /etc.
#
# Needs root. Run from anywhere:  sh rust/crates/ufw/tests/netns-integration.sh

# The policies ($POLICY, $BIG, $EGRESS, ...) are lists of arguments: split on purpose.
# shellcheck disable=SC2086
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
RUST=$(cd "$HERE/../../.." && pwd)
SANDBOX="$HERE/sandbox.sh"
export STATE="${STATE:-/tmp/ufwt-integration}"
export VORFW_UFW_OUTPUT_RECORD="$STATE/vorstream-firewall/ufw-output-policy"

say() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

say "build"
(cd "$RUST" && cargo build --release -q -p vorfw-ufw --example ufw-converge)
BIN="$RUST/target/release/examples/ufw-converge"

trap '"$SANDBOX" down' EXIT

converge() { "$SANDBOX" run "$BIN" "$@"; }
status() { "$SANDBOX" run ufw status verbose; }
rules() { cat "$STATE/etc-ufw/user.rules" "$STATE/etc-ufw/user6.rules"; }

# The helper scripts, in $STATE (written again after each `sandbox.sh up`).
write_scripts() {
# A dual-stack TCP echo server on the given ports.
cat >"$STATE/echo.py" <<'EOF'
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port)); s.listen(); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, "listen")
while True:
    for key, _ in sel.select():
        if key.data == "listen":
            c, _ = key.fileobj.accept(); c.setblocking(False)
            sel.register(c, selectors.EVENT_READ, "conn")
        else:
            try:
                d = key.fileobj.recv(4096)
                if d:
                    key.fileobj.send(d)
                    continue
            except OSError:
                pass
            sel.unregister(key.fileobj); key.fileobj.close()
EOF

# connect.py ADDR PORT [TIMEOUT]: see connect() below.
cat >"$STATE/connect.py" <<'EOF'
import socket, sys
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 1
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=timeout).close(); print("open")
except socket.timeout:
    print("blocked")
except OSError as e:
    print(e.strerror or e)
EOF

# Long-lived sessions from the peer, opened while ufw is disabled: one to port 9002 (which the
# policy allows from the peer: the lockout guard the Ansible module adds for the controller)
# and one to port 9000 (allowed by nothing). After enabling, the peer sends first.
cat >"$STATE/session.py" <<'EOF'
import os, socket, sys, time
port, f = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("10.239.0.1", port), timeout=3)
s.sendall(b"before\n"); assert s.recv(100) == b"before\n"
open(f, "w").write("up\n")
while open(f).read() != "check\n": time.sleep(0.1)
try:
    s.sendall(b"after\n"); r = "survived" if s.recv(100) == b"after\n" else "cut"
except OSError:
    r = "cut"
open(f + ".tmp", "w").write(r + "\n"); os.rename(f + ".tmp", f)
EOF
# The same, but the server speaks first: it listens on PORT in ufwt-a, and once FILE says
# "check" sends a line and expects it back from the peer (which runs echo-client.py).
cat >"$STATE/talk.py" <<'EOF'
import os, socket, sys, time
port, f = int(sys.argv[1]), sys.argv[2]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port)); s.listen()
c, _ = s.accept()
open(f, "w").write("up\n")
while open(f).read() != "check\n": time.sleep(0.1)
c.settimeout(5)
try:
    c.sendall(b"host first\n"); r = "survived" if c.recv(100) == b"host first\n" else "cut"
except OSError:
    r = "cut"
open(f + ".tmp", "w").write(r + "\n"); os.rename(f + ".tmp", f)
EOF
cat >"$STATE/echo-client.py" <<'EOF'
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
while True:
    d = c.recv(100)
    if not d: break
    c.sendall(d)
EOF
}

"$SANDBOX" up
# Start from "default allow incoming" so converge has to fix it.
sed -i 's/^DEFAULT_INPUT_POLICY=.*/DEFAULT_INPUT_POLICY="ACCEPT"/' "$STATE/default-ufw"
write_scripts
ip netns exec ufwt-a python3 "$STATE/echo.py" 2222 8081 8301 8302 9000 9001 9002 &

# connect ADDR PORT: "open" if a TCP connection is accepted, "blocked" if nothing answers
# within 1 s (ufw drops), else the error (e.g. refused: no server, or ufw rejects).
connect() { "$SANDBOX" peer python3 "$STATE/connect.py" "$1" "$2"; }
expect() { # expect open|blocked ADDR PORT
    got=$(connect "$2" "$3")
    [ "$got" = "$1" ] || fail "$2 port $3: expected $1, got $got"
    echo "ok: $2 port $3 $got"
}
# The same from the ufw host (outbound): "Connection refused" when ufw rejects.
expect_out() { # expect_out open|refused ADDR PORT
    got=$("$SANDBOX" run python3 "$STATE/connect.py" "$2" "$3" 3)
    want=$1; [ "$want" = refused ] && want="Connection refused"
    [ "$got" = "$want" ] || fail "outbound to $2 port $3: expected $want, got $got"
    echo "ok: outbound to $2 port $3 $got"
}
sleep 0.5

for port in 9002 9000; do
    echo >"$STATE/session$port"
    "$SANDBOX" peer python3 "$STATE/session.py" $port "$STATE/session$port" &
done
for _ in $(seq 1 20); do grep -q up "$STATE/session9002" && grep -q up "$STATE/session9000" && break; sleep 0.2; done
{ grep -q up "$STATE/session9002" && grep -q up "$STATE/session9000"; } || fail "sessions did not start"
session() { # session PORT: let the session talk, print its verdict
    echo check >"$STATE/session.tmp" && mv "$STATE/session.tmp" "$STATE/session$1"
    for _ in $(seq 1 50); do grep -qE "survived|cut" "$STATE/session$1" && break; sleep 0.1; done
    cat "$STATE/session$1"
}

say "operator rule: ufw allow 2222/tcp (ufw disabled)"
"$SANDBOX" run ufw allow 2222/tcp

POLICY="ctl=10.239.0.2:9002/tcp g-peer=10.239.0.2,fd39::2:8301/tcp g-old=10.239.0.2:8302/tcp a-user=0.0.0.0/0,::/0:8081/tcp"

say "check mode"
out=$(converge --check $POLICY); echo "$out"
echo "$out" | grep -q "changed: true" || fail "check mode should report a change"
status | grep -q "Status: inactive" || fail "check mode enabled ufw"
rules | grep -q vorfw && fail "check mode wrote rules"

say "converge #1 (writes rules, sets default deny, enables)"
converge --diff $POLICY
status
st=$(status)
for want in "Default: deny \(incoming\)" "^2222/tcp +ALLOW IN +Anywhere *$" \
    "^8301/tcp +ALLOW IN +10\.239\.0\.2 +# vorfw:g-peer$" \
    "^8302/tcp +ALLOW IN +10\.239\.0\.2 +# vorfw:g-old$" \
    "^8081/tcp +ALLOW IN +Anywhere +# vorfw:a-user$" \
    "^8081/tcp \(v6\) +ALLOW IN +Anywhere \(v6\) +# vorfw:a-user$" \
    "^8301/tcp +ALLOW IN +fd39::2 +# vorfw:g-peer$"; do
    echo "$st" | grep -qE "$want" || fail "ufw status lacks: $want"
done
[ "$(session 9002)" = "survived" ] || fail "the guarded session was cut"
echo "ok: the session to the guarded port 9002, opened before enabling, survived"
echo "info: the session to the unguarded port 9000: $(session 9000)"

say "traffic"
expect open 10.239.0.1 8301
expect open fd39::1 8301
expect open 10.239.0.1 8302
expect open 10.239.0.1 8081
expect open fd39::1 8081
expect open 10.239.0.1 2222
expect blocked 10.239.0.1 9000
expect blocked 10.239.0.1 9001
expect blocked fd39::1 8302

say "converge #2 (same policy: nothing to do)"
sum1=$(rules | md5sum)
out=$(converge $POLICY); echo "$out"
echo "$out" | grep -q "changed: false" || fail "second converge changed something"
[ "$(rules | md5sum)" = "$sum1" ] || fail "second converge rewrote the files"

say "converge #3 (g-old dropped from the policy: its rule is purged)"
POLICY2="ctl=10.239.0.2:9002/tcp g-peer=10.239.0.2,fd39::2:8301/tcp a-user=0.0.0.0/0,::/0:8081/tcp"
converge --diff $POLICY2
status | grep -q "vorfw:g-old" && fail "stale owned rule still listed"
status | grep -qE "^2222/tcp +ALLOW IN +Anywhere *$" || fail "operator rule lost"
expect blocked 10.239.0.1 8302
expect open 10.239.0.1 8301
expect open 10.239.0.1 2222

say "ufw reload keeps everything"
sum2=$(rules | md5sum); st2=$(status)
"$SANDBOX" run ufw reload
[ "$(rules | md5sum)" = "$sum2" ] || fail "ufw reload rewrote the rules differently"
[ "$(status)" = "$st2" ] || fail "ufw status changed after reload"
out=$(converge $POLICY2); echo "$out"
echo "$out" | grep -q "changed: false" || fail "converge after reload changed something"
expect open 10.239.0.1 8301
expect open fd39::1 8301
expect blocked 10.239.0.1 8302

say "an operator deny inserted before our rules stays effective"
"$SANDBOX" run ufw insert 1 deny from 10.239.0.2
expect blocked 10.239.0.1 8301
out=$(converge $POLICY2); echo "$out"
echo "$out" | grep -q "changed: false" || fail "an operator rule made converge change something"
expect blocked 10.239.0.1 8301
"$SANDBOX" run ufw delete deny from 10.239.0.2
expect open 10.239.0.1 8301

say "ufw deny for exactly one of our rules: ufw turns ours into the operator's deny in place"
"$SANDBOX" run ufw deny proto tcp from 10.239.0.2 to any port 8301
expect blocked 10.239.0.1 8301
converge --diff $POLICY2 | tee "$STATE/out"
grep -q "user.rules: add 1 and remove 0 owned rules, keep 2 operator rules" "$STATE/out" || fail "allow not re-added"
expect blocked 10.239.0.1 8301
"$SANDBOX" run ufw delete deny proto tcp from 10.239.0.2 to any port 8301
expect open 10.239.0.1 8301
converge $POLICY2 | grep -q "changed: false" || fail "change after the operator removed their deny"

say "an operator rule appended after ours: ours move back to the end"
"$SANDBOX" run ufw allow 7777/tcp
converge $POLICY2 | tee "$STATE/out"
grep -q "move the owned rules after the 2 operator rules" "$STATE/out" || fail "no reorder reported"
"$SANDBOX" run ufw delete allow 7777/tcp >/dev/null
converge $POLICY2 >/dev/null

say "500 sources x 3 ports per family (3006 rules) on a fresh host: ufw disabled, default allow"
"$SANDBOX" run ufw --force disable
cp /usr/share/ufw/iptables/user.rules /usr/share/ufw/iptables/user6.rules "$STATE/etc-ufw/"
sed -i 's/^DEFAULT_INPUT_POLICY=.*/DEFAULT_INPUT_POLICY="ACCEPT"/' "$STATE/default-ufw"
# every other address, so that the policy's aggregation cannot merge them
v4=$(for i in $(seq 1 500); do printf '10.100.%d.%d,' $((i * 2 / 256)) $((i * 2 % 256)); done)
v6=$(for i in $(seq 1 500); do printf 'fd40::%x,' $((i * 2)); done)
BIG="g-big=${v4}${v6}10.239.0.2,fd39::2:8300/tcp,8301/tcp,8302/tcp"
elapsed() { sed -n 's/^elapsed: //p' "$STATE/out"; }
converge $BIG >"$STATE/out"; cat "$STATE/out"
grep -q "enable ufw" "$STATE/out" || fail "big policy: ufw not enabled"
first=$(elapsed)
converge $BIG >"$STATE/out"; cat "$STATE/out"
grep -q "changed: false" "$STATE/out" || fail "big policy: second run changed something"
again=$(elapsed)
n=$(status | grep -c "vorfw:g-big")
[ "$n" = 3006 ] || fail "expected 3006 owned rules in ufw status, got $n"
expect open 10.239.0.1 8302
expect open fd39::1 8301
expect blocked 10.239.0.1 8081
expect blocked 10.239.0.1 2222

say "500 x 3 with one member replaced, ufw enabled (rewrite + ufw reload)"
BIG2=$(echo "$BIG" | sed 's/10\.100\.0\.2,/10.100.0.3,/')
converge $BIG2 >"$STATE/out"; cat "$STATE/out"
grep -q "user.rules: add 3 and remove 3 owned rules" "$STATE/out" || fail "big policy: membership change"
changed=$(elapsed)
"$SANDBOX" run ufw reload
converge $BIG2 >"$STATE/out"; cat "$STATE/out"
grep -q "changed: false" "$STATE/out" || fail "big policy: change after ufw reload"
say "timing (3006 rules): first apply $first, re-run $again, one member changed $changed"

say "egress: a fresh host (new namespaces: nothing used conntrack yet), ufw disabled, default allow"
"$SANDBOX" up
write_scripts
ip netns exec ufwt-a python3 "$STATE/echo.py" 9002 &
# the destinations outside: one the policy allows (8443), one it does not (8444)
ip netns exec ufwt-b python3 "$STATE/echo.py" 8443 8444 &
# the management session, opened before ufw starts; the host speaks first afterwards
echo >"$STATE/talk"
ip netns exec ufwt-a python3 "$STATE/talk.py" 9003 "$STATE/talk" &
sleep 0.5
"$SANDBOX" peer python3 "$STATE/echo-client.py" 10.239.0.1 9003 &
for _ in $(seq 1 20); do grep -q up "$STATE/talk" && break; sleep 0.2; done
grep -q up "$STATE/talk" || fail "the host-first session did not start"
expect_out open 10.239.0.2 8444
record=$VORFW_UFW_OUTPUT_RECORD
outgoing() { sed -n 's/^DEFAULT_OUTPUT_POLICY=//p' "$STATE/default-ufw"; }
[ "$(outgoing)" = '"ACCEPT"' ] || fail "the sandbox does not start from DEFAULT_OUTPUT_POLICY=ACCEPT"
EGRESS="ctl=10.239.0.2:9002/tcp,9003/tcp out:o-peer=10.239.0.2,fd39::2:8443/tcp"

say "egress: check mode"
out=$(converge --check --restricted $EGRESS); echo "$out"
echo "$out" | grep -q "set the default outgoing policy to reject for restricted egress (was allow; allow is recorded" ||
    fail "check mode does not announce the outgoing policy"
[ "$(outgoing)" = '"ACCEPT"' ] || fail "check mode changed the outgoing policy"
[ -e "$record" ] && fail "check mode recorded the outgoing policy"
status | grep -q "Status: inactive" || fail "check mode enabled ufw"

say "egress: restricted (rules, record, ufw default reject outgoing, enable)"
converge --diff --restricted $EGRESS
st=$(status); echo "$st"
for want in "Default: deny \(incoming\), reject \(outgoing\)" \
    "^10\.239\.0\.2 8443/tcp +ALLOW OUT +Anywhere +# vorfw:o-peer$" \
    "^fd39::2 8443/tcp +ALLOW OUT +Anywhere \(v6\) +# vorfw:o-peer$" \
    "^10\.239\.0\.2 +ALLOW OUT +9003/tcp +# vorfw:ctl$"; do
    echo "$st" | grep -qE "$want" || fail "ufw status lacks: $want"
done
[ "$(outgoing)" = '"REJECT"' ] || fail "DEFAULT_OUTPUT_POLICY is $(outgoing)"
grep -qx 'DEFAULT_OUTPUT_POLICY="ACCEPT"' "$record" || fail "the record does not hold ACCEPT"
echo check >"$STATE/talk.tmp" && mv "$STATE/talk.tmp" "$STATE/talk"
for _ in $(seq 1 80); do grep -qE "survived|cut" "$STATE/talk" && break; sleep 0.1; done
[ "$(cat "$STATE/talk")" = survived ] || fail "the management session, host speaking first, was cut"
echo "ok: the management session opened before enabling survived, the host speaking first"

say "egress: traffic"
expect_out open 10.239.0.2 8443
expect_out open fd39::2 8443
expect_out refused 10.239.0.2 8444
expect_out refused fd39::2 8444
expect_out open 127.0.0.1 9002      # loopback
expect_out open ::1 9002
expect open 10.239.0.1 9002         # the replies of an inbound connection (established)
expect blocked fd39::1 9002         # (not allowed inbound over IPv6)
# IPv6 neighbour discovery: with empty neighbour caches, the host must solicit (to reach
# fd39::2) and advertise (for the peer to reach it)
ip -n ufwt-a -6 neigh flush all; ip -n ufwt-b -6 neigh flush all
expect_out open fd39::2 8443
ip -n ufwt-a -6 neigh flush all; ip -n ufwt-b -6 neigh flush all
"$SANDBOX" peer python3 "$STATE/connect.py" fd39::1 9002 >/dev/null   # (blocked, but resolves fd39::1)
ip -n ufwt-b -6 neigh show | grep -q "^fd39::1 .*lladdr" || fail "the peer could not resolve fd39::1"
echo "ok: neighbour solicitation and advertisement pass"
chains=$("$SANDBOX" run sh -c 'iptables -S ufw-before-output; ip6tables -S ufw6-before-output; iptables -S ufw-reject-output; iptables -S ufw-track-output')
for want in "^-A ufw-before-output -o lo -j ACCEPT$" \
    "^-A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT$" \
    "^-A ufw6-before-output -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT$" \
    "^-A ufw6-before-output -p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255 -j ACCEPT$" \
    "^-A ufw-reject-output -j REJECT --reject-with icmp-port-unreachable$"; do
    echo "$chains" | grep -qE -- "$want" || fail "loaded chains lack: $want"
done
echo "$chains" | grep -q "^-A ufw-track-output" && fail "ufw still tracks (accepts) new outgoing connections"
echo "ok: loaded chains: loopback, established and neighbour discovery accepted, the rest rejected"

say "egress: converged, and after ufw reload"
sum=$(rules | md5sum)
out=$(converge --restricted $EGRESS); echo "$out"
echo "$out" | grep -q "changed: false" || fail "second restricted converge changed something"
"$SANDBOX" run ufw reload
out=$(converge --restricted $EGRESS); echo "$out"
echo "$out" | grep -q "changed: false" || fail "converge after ufw reload changed something"
[ "$(rules | md5sum)" = "$sum" ] || fail "ufw rewrote the rules differently"

say "egress: open again (the recorded policy is put back)"
converge --diff $EGRESS | tee "$STATE/out"
grep -q "put back the default outgoing policy allow recorded in $record" "$STATE/out" || fail "policy not put back"
[ "$(outgoing)" = '"ACCEPT"' ] || fail "DEFAULT_OUTPUT_POLICY is $(outgoing)"
[ -e "$record" ] && fail "the record is still there"
status | grep -q "allow (outgoing)" || fail "ufw status does not show allow (outgoing)"
status | grep -q "vorfw:o-peer" || fail "the outbound rules went with open egress"
status | grep -q "ALLOW OUT   9003/tcp" && fail "the guard's reply rule stayed with open egress"
expect_out open 10.239.0.2 8444
out=$(converge $EGRESS); echo "$out"
echo "$out" | grep -q "changed: false" || fail "second open converge changed something"

say "egress: the operator's own reject is never changed"
"$SANDBOX" run ufw default reject outgoing
out=$(converge $EGRESS); echo "$out"
echo "$out" | grep -q "changed: false" || fail "converge changed the operator's outgoing policy"
[ "$(outgoing)" = '"REJECT"' ] || fail "DEFAULT_OUTPUT_POLICY is $(outgoing)"
out=$(converge --restricted $EGRESS); echo "$out"
[ -e "$record" ] && fail "the operator's reject was recorded"
"$SANDBOX" run ufw default allow outgoing

say "PASS"
