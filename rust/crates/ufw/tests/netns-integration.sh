#!/bin/sh
# End-to-end test of the ufw backend with the real ufw, inside the sandbox of sandbox.sh: its
# own network namespaces (ufwt-a runs ufw, ufwt-b is the peer, 10.239.0.0/24 + fd39::/64 on a
# veth pair) and a private mount namespace with copies of /etc/ufw and /etc/default/ufw.
# Nothing outside those namespaces is touched; packets only go over the veth pair.
#
# Needs root. Run from anywhere:  sh rust/crates/ufw/tests/netns-integration.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
RUST=$(cd "$HERE/../../.." && pwd)
SANDBOX="$HERE/sandbox.sh"
export STATE=${STATE:-/tmp/ufwt-integration}

say() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

say "build"
(cd "$RUST" && cargo build --release -q -p vorfw-ufw --example ufw-converge)
BIN="$RUST/target/release/examples/ufw-converge"

trap '"$SANDBOX" down' EXIT
"$SANDBOX" up
# Start from "default allow incoming" so converge has to fix it.
sed -i 's/^DEFAULT_INPUT_POLICY=.*/DEFAULT_INPUT_POLICY="ACCEPT"/' "$STATE/default-ufw"

converge() { "$SANDBOX" run "$BIN" "$@"; }
status() { "$SANDBOX" run ufw status verbose; }
rules() { cat "$STATE/etc-ufw/user.rules" "$STATE/etc-ufw/user6.rules"; }

# A dual-stack TCP echo server on the ports we probe, in ufwt-a.
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
ip netns exec ufwt-a python3 "$STATE/echo.py" 2222 8081 8301 8302 9000 9001 9002 &

# connect ADDR PORT: "open" if a TCP connection is accepted, "blocked" if nothing answers
# within 1 s (ufw drops), else the error (e.g. refused: no server).
cat >"$STATE/connect.py" <<'EOF'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close(); print("open")
except socket.timeout:
    print("blocked")
except OSError as e:
    print(e.strerror or e)
EOF
connect() { "$SANDBOX" peer python3 "$STATE/connect.py" "$1" "$2"; }
expect() { # expect open|blocked ADDR PORT
    got=$(connect "$2" "$3")
    [ "$got" = "$1" ] || fail "$2 port $3: expected $1, got $got"
    echo "ok: $2 port $3 $got"
}
sleep 0.5

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
for port in 9002 9000; do
    echo >"$STATE/session$port"
    "$SANDBOX" peer python3 "$STATE/session.py" $port "$STATE/session$port" &
done
for _ in $(seq 1 20); do grep -q up "$STATE/session9002" && grep -q up "$STATE/session9000" && break; sleep 0.2; done
grep -q up "$STATE/session9002" && grep -q up "$STATE/session9000" || fail "sessions did not start"
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

say "PASS"
