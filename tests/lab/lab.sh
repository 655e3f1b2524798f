#!/usr/bin/env bash
# VOR Stream network-namespace lab.
#
# Every lab host is a network namespace (vl-<name>) joined by a veth pair to
# the bridge vorlab0 in the root namespace (10.231.0.1 = the Ansible
# controller).  A long-lived "anchor" process per host holds the host's own
# mount and UTS namespaces, in which /run, /etc/firewalld, /etc/ufw,
# /etc/default/ufw, /etc/nftables.conf, /etc/hosts, /etc/systemd/system,
# /etc/resolv.conf, /etc/vorstream-firewall, /var/lib/vorstream-firewall and
# /usr/local/libexec/vorstream-firewall are private bind mounts of per-host
# directories under the state dir.  Each host runs its own system
# D-Bus, firewalld (backend "firewalld"), sshd on port 22 and one listener
# process (listeners.py) for the VOR Stream port matrix, all started inside
# the host's namespaces, so Ansible reaches every host over SSH like a server.
# The lab also runs an OIDC provider (tests/lab/idp.py): its DNS server in the
# namespace vorlab-dns, which every host's resolv.conf names, and its HTTPS
# discovery endpoint on lab addresses of the bridge.
#
# Usage: tests/lab/lab.sh up [--fresh] | down | status | exec HOST [CMD...]
#                         | ssh HOST [CMD...] | inventory | deps
# See tests/lab/README.md.
set -euo pipefail

# ---------------------------------------------------------------------------
# Host table.  Columns: name  last-octet  groups(comma separated)  backend
#   backend: firewalld (firewalld started on a private bus: Debian's package)
#            firewalld-<release>[-iptables]  (an upstream release built from the vendored
#                      sources by tests/lab/firewalld-build.sh, bind-mounted over Debian's
#                      firewalld in that host only; -iptables: its FirewallBackend=iptables)
#            firewalld-iptables  (Debian's, on its iptables backend)
#            ufw       (private /etc/ufw + /etc/default/ufw present, not enabled)
#            nftables  (no manager, nothing started; private /etc/nftables.conf)
# Replace the whole table with LAB_HOSTS_FILE=/path/to/table (same format).
# Names: at most 12 characters ([a-z0-9_-]); octets 2..199 (.1 is the
# controller, .200-.253 the lab's services: the tests' Entra ID listeners
# .200-.209, the OIDC provider .211-.214 and its DNS server .250; .254 the
# black-hole gateway, see LAB_GW4).
# ---------------------------------------------------------------------------
LAB_HOSTS='
consul1   11  consul,consul_ui  firewalld
consul2   12  consul            firewalld-0.9.11
consul3   13  consul            nftables
super1    21  super             firewalld-0.9.11-iptables
django1   22  django            firewalld
web1      23  web               firewalld
sdk1      24  sdk               ufw
compute1  31  compute           ufw
compute2  32  compute           firewalld-1.3.4
rabbit1   41  rabbitmq          firewalld-2.1.1
vault1    42  vault             nftables
pg1       43  postgres          firewalld-2.5.0
'

# Ports the listeners serve (sshd owns 22).  18080 is allowed by no rule: it
# exists to test blocked flows.
VORLAB_TCP_PORTS=${VORLAB_TCP_PORTS:-"23234 8300 8301 8600 8001 1962 5432 1433 15672 5672 9000 8200 8081 8500 18080"}
VORLAB_UDP_PORTS=${VORLAB_UDP_PORTS:-"8301 8600 18080"}

BRIDGE=vorlab0
NET4=10.231.0            # /24; bridge .1, hosts .<octet>
NET6=fd00:231:           # /64; bridge ::1, hosts ::<octet>
# Hosts get a default route via an address nobody owns, so route-dependent
# facts (ansible_default_ipv4) look like a real server's while any packet for
# a non-lab address dies in the host (unanswered ARP/ND on the lab bridge).
LAB_GW4=$NET4.254
LAB_GW6=${NET6}:fffe

STATE=${VORLAB_STATE:-/var/lib/vorlab}
STATE=${STATE%/}
FW_TIMEOUT=${VORLAB_FW_TIMEOUT:-60}   # seconds to wait for all firewalld's
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [[ -n ${VORLAB_INVENTORY:-} ]]; then
    INVENTORY=$VORLAB_INVENTORY
elif [[ -z ${LAB_HOSTS_FILE:-} && $STATE == /var/lib/vorlab ]]; then
    INVENTORY=$LAB_DIR/inventory.ini          # the committed one
else
    INVENTORY=$STATE/inventory.ini            # never clobber the committed one
fi

say() { printf 'lab: %s\n' "$*"; }
warn() { printf 'lab: WARNING: %s\n' "$*" >&2; }
die() { printf 'lab: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Host table parsing
# ---------------------------------------------------------------------------
HOSTS=()                 # names, in table order
declare -A OCTET=() GROUPS_OF=() BACKEND=() FW_RELEASE=() FW_IPTABLES=()

load_hosts() {
    local table=$LAB_HOSTS line name octet groups backend extra
    local -A seen_octet=()
    if [[ -n ${LAB_HOSTS_FILE:-} ]]; then
        [[ -r $LAB_HOSTS_FILE ]] || die "LAB_HOSTS_FILE=$LAB_HOSTS_FILE is not readable"
        table=$(<"$LAB_HOSTS_FILE")
    fi
    while IFS= read -r line; do
        line=${line%%#*}
        [[ $line =~ [^[:space:]] ]] || continue
        read -r name octet groups backend extra <<<"$line"
        [[ -n $backend && -z $extra ]] || die "host table: need 4 columns: '$line'"
        [[ $name =~ ^[a-z0-9][a-z0-9_-]{0,11}$ ]] || die "host table: bad name '$name' (max 12 chars, [a-z0-9_-])"
        if ! [[ $octet =~ ^[0-9]+$ ]] || ((octet < 2 || octet > 199)); then
            die "host table: $name: octet must be 2..199 (.200 and up are the lab's services)"
        fi
        FW_RELEASE[$name]="" FW_IPTABLES[$name]=0
        if [[ $backend =~ ^firewalld(-([0-9]+\.[0-9]+\.[0-9]+))?(-iptables)?$ ]]; then
            FW_RELEASE[$name]=${BASH_REMATCH[2]}
            [[ -n ${BASH_REMATCH[3]} ]] && FW_IPTABLES[$name]=1
            backend=firewalld
        fi
        [[ $backend =~ ^(firewalld|ufw|nftables)$ ]] ||
            die "host table: $name: backend must be firewalld[-<release>][-iptables], ufw or nftables"
        [[ -z ${OCTET[$name]:-} ]] || die "host table: duplicate host $name"
        [[ -z ${seen_octet[$octet]:-} ]] || die "host table: $name: octet $octet already used by ${seen_octet[$octet]}"
        seen_octet[$octet]=$name
        HOSTS+=("$name"); OCTET[$name]=$octet; GROUPS_OF[$name]=$groups; BACKEND[$name]=$backend
    done <<<"$table"
    ((${#HOSTS[@]})) || die "host table is empty"
}

uses_backend() {
    local n
    for n in "${HOSTS[@]}"; do [[ ${BACKEND[$n]} == "$1" ]] && return 0; done
    return 1
}

# ---------------------------------------------------------------------------
# Generated files: inventory, ssh_config, dbus config, sshd_config, /etc/hosts
# ---------------------------------------------------------------------------
inventory_text() {
    local n g
    local -a order=() gs=()
    local -A have=()
    cat <<EOF
# VOR Stream network-namespace lab (tests/lab/lab.sh).  GENERATED from the
# host table in lab.sh: edit the table, then run 'tests/lab/lab.sh inventory'.
# Firewall policy settings are absent (tests and the demo supply their own); each host's
# IPv4 and IPv6 addresses are given as host_firewall_address so peers see both.

[all:vars]
ansible_user=root
ansible_ssh_private_key_file=$STATE/id_ed25519
ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'
ansible_python_interpreter=/usr/bin/python3
# The Entra ID refresher of the OIDC clients reads a synthetic service-tag file whose prefixes
# are lab addresses: the lab never talks to Microsoft. Lab addresses are private (special-use)
# ranges, which a real feed is refused for: the lab feed, and nothing else, allows them.
# 'lab.sh up' copies it there from tests/fixtures/servicetags (week 1).
entra_egress_file=$STATE/lab-entra-feed.json
entra_egress_allow_special_use=true

[lab]
EOF
    for n in "${HOSTS[@]}"; do
        # ufw is installed but disabled on a fresh host (as on Ubuntu): auto would pick
        # nftables there, so ufw hosts name their backend.
        local pin=""
        [[ ${BACKEND[$n]} == ufw ]] && pin=" host_firewall_backend=ufw"
        [[ -n ${FW_RELEASE[$n]} ]] && pin+=" lab_firewalld=${FW_RELEASE[$n]}"
        ((FW_IPTABLES[$n])) && pin+=" lab_firewalld_backend=iptables"
        printf '%-9s ansible_host=%s lab_ipv6=%s lab_backend=%s host_firewall_address='\''["%s","%s"]'\''%s\n' \
            "$n" "$NET4.${OCTET[$n]}" "$NET6:${OCTET[$n]}" "${BACKEND[$n]}" "$NET4.${OCTET[$n]}" "$NET6:${OCTET[$n]}" "$pin"
        IFS=, read -r -a gs <<<"${GROUPS_OF[$n]}"
        for g in "${gs[@]}"; do
            [[ -n $g && $g != - && -z ${have[$g]:-} ]] || continue
            have[$g]=1; order+=("$g")
        done
    done
    for g in "${order[@]}"; do
        printf '\n[%s]\n' "$g"
        for n in "${HOSTS[@]}"; do
            [[ ,${GROUPS_OF[$n]}, == *,"$g",* ]] && printf '%s\n' "$n"
        done
    done
    return 0
}

# Write $2 (content) to $1 only if it differs; in place (keeps the inode, which
# matters for files that are bind-mounted into a host).  Returns 1 if unchanged.
write_if_changed() {
    local file=$1 content=$2
    if [[ -f $file ]] && [[ "$(<"$file")" == "$content" ]]; then
        return 1
    fi
    printf '%s\n' "$content" >"$file"
}

write_inventory() {
    mkdir -p "$(dirname "$INVENTORY")"
    if write_if_changed "$INVENTORY" "$(inventory_text)"; then
        say "wrote $INVENTORY"
    fi
}

write_ssh_config() {
    local n text="# generated by tests/lab/lab.sh: ssh -F $STATE/ssh_config <host>"
    for n in "${HOSTS[@]}"; do
        text+=$'\n'"Host $n"$'\n'"    HostName $NET4.${OCTET[$n]}"
    done
    text+=$'\n'"Host *"$'\n'"    User root"$'\n'"    IdentityFile $STATE/id_ed25519"
    text+=$'\n'"    IdentitiesOnly yes"$'\n'"    StrictHostKeyChecking no"
    text+=$'\n'"    UserKnownHostsFile /dev/null"$'\n'"    LogLevel ERROR"
    write_if_changed "$STATE/ssh_config" "$text" || true
}

# A system bus like Debian's system.conf, minus service activation (no
# polkitd or other daemons get spawned on demand; firewalld then authorizes
# callers by uid 0 alone) and minus syslog.
write_dbus_conf() {
    write_if_changed "$STATE/dbus-system.conf" '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- generated by tests/lab/lab.sh: the private system bus of a lab host -->
<busconfig>
  <type>system</type>
  <user>messagebus</user>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>' || true
}

sshd_config_text() {
    local n=$1
    cat <<EOF
# generated by tests/lab/lab.sh for lab host $n
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey $STATE/$n/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile $STATE/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 100:30:200
MaxSessions 50
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

own_resolv() { [[ -f /etc/resolv.conf && ! -L /etc/resolv.conf ]]; }
resolv_text() { printf 'nameserver %s\noptions timeout:1 attempts:2' "$("$LAB_DIR/idp.py" dns-address)"; }

# Whether host $1 (anchor $2) sees its own resolv.conf (hosts built before the lab had one
# do not).
has_own_resolv() {
    own_resolv || return 0
    [[ $(in_host "$2" stat -c %i /etc/resolv.conf 2>/dev/null) == "$(stat -c %i "$STATE/$1/etc/resolv.conf" 2>/dev/null)" ]]
}

etc_hosts_text() {
    local n
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
    printf '%s.1\tcontroller\n' "$NET4"
    for n in "${HOSTS[@]}"; do printf '%s.%s\t%s\n' "$NET4" "${OCTET[$n]}" "$n"; done
}

# ---------------------------------------------------------------------------
# Process bookkeeping.  Every process the lab starts carries the environment
# variable _VORLAB_DAEMON=<state dir>|<host>; `down` finds strays by it even
# when pid files or namespaces are gone.  sshd overwrites its environment
# with its process title, so it is recognised by its config path instead.
# ---------------------------------------------------------------------------
read_pid() {
    local p
    [[ -s $1 ]] && { read -r p <"$1"; } 2>/dev/null && [[ $p =~ ^[0-9]+$ ]] && printf '%s' "$p"
}

pid_alive() {                     # running and not a zombie
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

has_marker() {                    # pid host
    grep -qzxF "_VORLAB_DAEMON=$STATE|$2" "/proc/$1/environ" 2>/dev/null ||
        grep -qzF "$STATE/$2/sshd_config" "/proc/$1/cmdline" 2>/dev/null
}

# Pids of lab processes: of host $1, or (no argument) of every host.  Also
# everything else inside the host's network namespace (e.g. ssh sessions).
lab_pids() {
    local f
    local -a files
    if (($#)); then
        mapfile -t files < <(
            grep -lzxF "_VORLAB_DAEMON=$STATE|$1" /proc/[0-9]*/environ 2>/dev/null || true
            grep -lzF "$STATE/$1/sshd_config" /proc/[0-9]*/cmdline 2>/dev/null || true
            if [[ -e /run/netns/vl-$1 ]]; then
                ip netns pids "vl-$1" 2>/dev/null | sed 's|.*|/proc/&/|' || true
            fi)
    else
        mapfile -t files < <(grep -lzF "_VORLAB_DAEMON=$STATE|" /proc/[0-9]*/environ 2>/dev/null || true)
    fi
    for f in "${files[@]}"; do
        f=${f#/proc/}; f=${f%%/*}
        [[ $f != "$$" && $f != "$BASHPID" ]] && printf '%s\n' "$f"
    done | sort -un
    return 0
}

kill_pids() {                     # TERM, wait up to 3 s, then KILL
    local p alive
    (($#)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    for _ in $(seq 30); do
        alive=()
        for p in "$@"; do pid_alive "$p" && alive+=("$p"); done
        ((${#alive[@]})) || return 0
        sleep 0.1
    done
    kill -KILL "${alive[@]}" 2>/dev/null || true
}

# Print the anchor pid of host $1 if the anchor is alive, is ours, sits in the
# host's named network namespace and has its own mount namespace.
anchor_pid() {
    local n=$1 p
    p=$(read_pid "$STATE/$n/anchor.pid") || return 1
    pid_alive "$p" && has_marker "$p" "$n" || return 1
    [[ -e /run/netns/vl-$n ]] || return 1
    [[ $(stat -L -c %i "/run/netns/vl-$n") == "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" ]] || return 1
    [[ $(readlink "/proc/$p/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] || return 1
    printf '%s' "$p"
}

# Print the pid of daemon with pid file /run/$2 (inside host $1, anchor $3)
# if it is alive, ours, and in the host's mount namespace.
daemon_pid() {
    local n=$1 a=$3 p
    p=$(read_pid "$STATE/$n/run/$2") || return 1
    pid_alive "$p" && has_marker "$p" "$n" || return 1
    [[ $(readlink "/proc/$p/ns/mnt" 2>/dev/null) == "$(readlink "/proc/$a/ns/mnt")" ]] || return 1
    printf '%s' "$p"
}

in_host() {                       # anchor-pid cmd...: run cmd inside the host
    local a=$1; shift
    nsenter -t "$a" -n -m -u -- env -u DBUS_SYSTEM_BUS_ADDRESS -u DBUS_SESSION_BUS_ADDRESS "$@"
}

# spawn host anchor pidfile(relative to the host's /run) logname cmd...
# Starts cmd detached (own session, clean environment) inside the host; the
# wrapper writes the pid file from inside the host before exec'ing cmd.
spawn() {
    local n=$1 a=$2 pidrel=$3 out=$STATE/$1/log/$4.out
    shift 4
    # shellcheck disable=SC2016  # $$/$0/$@ are for the inner bash
    setsid nsenter -t "$a" -n -m -u -- env -i PATH="$SAFE_PATH" HOME=/root LANG=C.UTF-8 \
        _VORLAB_DAEMON="$STATE|$n" \
        bash -c 'echo "$$" >"/run/$0"; exec "$@"' "$pidrel" "$@" \
        </dev/null >>"$out" 2>&1 9>&- &
}

wait_until() {                    # timeout-seconds cmd...: poll every 0.05 s
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------------------
# firewalld over the host's private bus (dbus-send: much cheaper than firewall-cmd)
# ---------------------------------------------------------------------------
fw_call() {                       # anchor method args...: literal reply
    local a=$1 m=$2
    shift 2
    in_host "$a" dbus-send --system --print-reply=literal --reply-timeout=3000 \
        --dest=org.fedoraproject.FirewallD1 /org/fedoraproject/FirewallD1 "$m" "$@" 2>/dev/null
}

fw_state() {                      # anchor: RUNNING / FAILED / INIT / empty
    local out
    out=$(fw_call "$1" org.freedesktop.DBus.Properties.Get \
        string:org.fedoraproject.FirewallD1 string:state) || return 0
    printf '%s' "${out##* }"
}

# Bind eth0 to the default zone at runtime, as NetworkManager does on a
# server (zone "": it follows --set-default-zone), unless it is in a zone
# already.  Unbound, eth0 would still be filtered by the default zone
# (firewalld's catch-all), which is what VORLAB_FW_BIND=none leaves it at.
# Note: with FlushAllOnReload=yes (Debian's default) `firewall-cmd --reload`
# drops runtime bindings and no NetworkManager re-adds it; `lab.sh up` does.
fw_bind_eth0() {
    local a=$1 zone
    [[ ${VORLAB_FW_BIND:-runtime} == none ]] && return 0
    zone=$(fw_call "$a" org.fedoraproject.FirewallD1.zone.getZoneOfInterface string:eth0) || zone=
    zone=${zone//[[:space:]]/}
    [[ -n $zone ]] && return 0
    fw_call "$a" org.fedoraproject.FirewallD1.zone.addInterface string: string:eth0 >/dev/null
}

# ---------------------------------------------------------------------------
# Root-namespace pieces: bridge, br_netfilter
# ---------------------------------------------------------------------------
ensure_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        # Fixed MAC: a bridge otherwise takes its lowest port's MAC, which
        # changes when hosts are rebuilt and leaves stale ARP entries behind.
        ip link add "$BRIDGE" address 02:76:6c:ff:ff:01 type bridge stp_state 0 forward_delay 0
    fi
    if [[ -e /proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6 ]]; then
        echo 0 >"/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6"   # our own interface only
        echo 0 >"/proc/sys/net/ipv6/conf/$BRIDGE/accept_ra"
    fi
    ip addr replace "$NET4.1/24" broadcast + dev "$BRIDGE"
    ip addr replace "$NET6:1/64" dev "$BRIDGE" nodad
    ip link set "$BRIDGE" up
}

BRNF_KEYS=(bridge-nf-call-iptables bridge-nf-call-ip6tables bridge-nf-call-arptables)

# Does the root namespace filter forwarded packets at all (Docker's FORWARD
# DROP, a host firewalld, ...)?  Read-only checks.
root_forward_filtering() {
    nft list ruleset 2>/dev/null | grep -q 'hook forward' && return 0
    if [[ -s /proc/net/ip_tables_names ]] && command -v iptables-legacy >/dev/null; then
        [[ $(iptables-legacy -S FORWARD 2>/dev/null) != "-P FORWARD ACCEPT" ]] && return 0
    fi
    if [[ -s /proc/net/ip6_tables_names ]] && command -v ip6tables-legacy >/dev/null; then
        [[ $(ip6tables-legacy -S FORWARD 2>/dev/null) != "-P FORWARD ACCEPT" ]] && return 0
    fi
    return 1
}

# With br_netfilter loaded and bridge-nf-call-* = 1, frames bridged between
# lab hosts traverse the root namespace's FORWARD hooks.  If something there
# filters, switch bridge-nf-call-* off for the lab's lifetime (saved and
# restored by `down`).  VORLAB_BRNF=auto (default) | off (always switch off)
# | keep (never touch).
brnf_setup() {
    local k any=0 saved=$STATE/brnf.saved mode=${VORLAB_BRNF:-auto}
    [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || return 0
    [[ $mode == keep ]] && return 0
    for k in "${BRNF_KEYS[@]}"; do
        [[ -e /proc/sys/net/bridge/$k && $(<"/proc/sys/net/bridge/$k") != 0 ]] && any=1
    done
    ((any)) || return 0
    if [[ $mode == auto ]] && ! root_forward_filtering; then
        return 0    # bridged traffic is seen by an empty/accepting FORWARD: harmless
    fi
    if [[ ! -f $saved ]]; then
        for k in "${BRNF_KEYS[@]}"; do
            [[ -e /proc/sys/net/bridge/$k ]] && printf '%s=%s\n' "$k" "$(<"/proc/sys/net/bridge/$k")"
        done >"$saved"
    fi
    for k in "${BRNF_KEYS[@]}"; do
        [[ -e /proc/sys/net/bridge/$k ]] && echo 0 >"/proc/sys/net/bridge/$k"
    done
    if [[ $mode == auto ]]; then
        say "the root namespace filters forwarded traffic, which bridged lab traffic would cross"
    fi
    say "set net.bridge.bridge-nf-call-* = 0 until 'lab.sh down' (old values in $saved)"
}

brnf_restore() {
    local saved=$STATE/brnf.saved k v
    [[ -f $saved ]] || return 0
    while IFS='=' read -r k v; do
        [[ -e /proc/sys/net/bridge/$k ]] && echo "$v" >"/proc/sys/net/bridge/$k"
    done <"$saved"
    rm -f "$saved"
    say "restored net.bridge.bridge-nf-call-*"
}

# ---------------------------------------------------------------------------
# Per-host build
# ---------------------------------------------------------------------------

# Kill everything of host $1 and remove its namespace and veth.  Idempotent.
destroy_host() {
    local n=$1 d=$STATE/$1
    local -a pids
    mapfile -t pids < <(lab_pids "$n")
    kill_pids "${pids[@]}"
    if [[ -e /run/netns/vl-$n ]]; then ip netns del "vl-$n" 2>/dev/null || true; fi
    if ip link show "vl-$n" >/dev/null 2>&1; then ip link del "vl-$n" 2>/dev/null || true; fi
    rm -rf "$d/run" "$d/anchor.pid"
}

# firewalld releases named in the host table: built once per machine (firewalld-build.sh,
# idempotent).
PY_DIST=/usr/lib/python3/dist-packages
release_prefix() { "$LAB_DIR/firewalld-build.sh" --prefix "$1"; }
prepare_releases() {
    local n r
    local -A built=()
    for n in "${HOSTS[@]}"; do
        r=${FW_RELEASE[$n]}
        [[ -n $r && -z ${built[$r]:-} ]] || continue
        built[$r]=1
        [[ -d $PY_DIST/firewall ]] || die "$n: firewalld $r replaces Debian's, which is not installed ($PY_DIST/firewall)"
        "$LAB_DIR/firewalld-build.sh" "$r" >/dev/null || die "firewalld $r: build failed"
    done
    return 0
}

# Copy the package configuration of the root namespace into the host's
# private /etc pieces (only those missing; `up --fresh` removes them first).
seed_etc() {
    local e=$STATE/$1/etc
    mkdir -p "$e/default"
    if [[ -n ${FW_RELEASE[$1]} && ! -e $e/firewalld ]]; then
        cp -a "$(release_prefix "${FW_RELEASE[$1]}")/etc/firewalld" "$e/firewalld"
    fi
    [[ -d /etc/firewalld && ! -e $e/firewalld ]] && cp -a /etc/firewalld "$e/firewalld"
    if ((FW_IPTABLES[$1])); then
        sed -i 's/^FirewallBackend=.*/FirewallBackend=iptables/' "$e/firewalld/firewalld.conf"
        grep -qx 'FirewallBackend=iptables' "$e/firewalld/firewalld.conf" ||
            echo 'FirewallBackend=iptables' >>"$e/firewalld/firewalld.conf"
    fi
    [[ -d /etc/ufw && ! -e $e/ufw ]] && cp -a /etc/ufw "$e/ufw"
    [[ -f /etc/default/ufw && ! -e $e/default/ufw ]] && cp -a /etc/default/ufw "$e/default/ufw"
    [[ -f /etc/nftables.conf && ! -e $e/nftables.conf ]] && cp -a /etc/nftables.conf "$e/nftables.conf"
    mkdir -p "$e/vorstream-firewall"     # the collection's own /etc dir (nftables backend)
    # The Entra ID refresher: its state, its installed binary, its systemd units.
    mkdir -p "$STATE/$1/var-lib-vorstream-firewall" "$STATE/$1/libexec-vorstream-firewall" "$e/systemd-system"
    return 0
}

# Warn if what seed_etc copies is not the Debian packages' pristine config.
PRISTINE_CHECKED=0
check_pristine() {
    local changed extra
    ((PRISTINE_CHECKED)) && return 0
    PRISTINE_CHECKED=1
    command -v dpkg >/dev/null || return 0
    changed=$(dpkg -V firewalld ufw nftables 2>/dev/null | grep -E ' /etc/(firewalld|ufw|default/ufw|nftables\.conf)' || true)
    [[ -z $changed ]] || warn "root namespace config differs from the packages' (hosts get a copy as is):"$'\n'"$changed"
    if [[ -d /etc/firewalld ]]; then
        extra=$(comm -23 <(find /etc/firewalld | sort) <(dpkg -L firewalld 2>/dev/null | sort) || true)
        [[ -z $extra ]] || warn "files in /etc/firewalld not from the firewalld package (hosts get them too):"$'\n'"$extra"
    fi
}

# The anchor: runs in the host's netns (via ip netns exec, which also mounts
# the netns's own /sys) and in fresh mount + UTS namespaces with private
# propagation; sets up the private mounts, records its pid, then sleeps.
# shellcheck disable=SC2016  # expanded by the anchor's bash
ANCHOR_SCRIPT='
set -eu
name=$1 dir=$2
shift 2
hostname "$name"
# Drop our copies of the /run/netns/* mounts: they would keep other hosts
# network namespaces alive after `ip netns del`.  Hidden below /run anyway.
# -n everywhere: libmount must not create /run/mount/utab in the real /run.
umount -n -l /run/netns 2>/dev/null || true
for spec in "$@"; do mount -n --bind "${spec%%=*}" "${spec#*=}"; done
echo "$$" >"$dir/anchor.pid"
exec -a "vorlab-anchor-$name" sleep infinity
'

start_anchor() {
    local n=$1 d=$STATE/$1 e=$STATE/$1/etc
    local -a binds=()
    [[ -d /etc/firewalld && -d $e/firewalld ]] && binds+=("$e/firewalld=/etc/firewalld")
    if [[ -n ${FW_RELEASE[$n]} ]]; then
        # The release replaces Debian's firewalld in this host: daemon, clients, defaults and
        # its python package.
        local r=${FW_RELEASE[$n]} pre
        pre=$(release_prefix "$r")
        binds+=("$pre/sbin/firewalld=/usr/sbin/firewalld" "$pre/bin/firewall-cmd=/usr/bin/firewall-cmd"
            "$pre/bin/firewall-offline-cmd=/usr/bin/firewall-offline-cmd"
            "$pre/lib/firewalld=/usr/lib/firewalld"
            "$("$LAB_DIR/firewalld-build.sh" --site-packages "$r")/firewall=$PY_DIST/firewall")
    fi
    [[ -d /etc/ufw && -d $e/ufw ]] && binds+=("$e/ufw=/etc/ufw")
    [[ -f /etc/default/ufw && -f $e/default/ufw ]] && binds+=("$e/default/ufw=/etc/default/ufw")
    [[ -f /etc/nftables.conf && -f $e/nftables.conf ]] && binds+=("$e/nftables.conf=/etc/nftables.conf")
    mkdir -p /etc/vorstream-firewall    # an empty mount point in the controller
    binds+=("$e/vorstream-firewall=/etc/vorstream-firewall")
    mkdir -p /var/lib/vorstream-firewall /usr/local/libexec/vorstream-firewall /etc/systemd/system
    mkdir -p "$d/var-lib-vorstream-firewall" "$d/libexec-vorstream-firewall" "$e/systemd-system"
    binds+=("$d/var-lib-vorstream-firewall=/var/lib/vorstream-firewall")
    binds+=("$d/libexec-vorstream-firewall=/usr/local/libexec/vorstream-firewall")
    binds+=("$e/systemd-system=/etc/systemd/system")
    # The lab's resolver (a symlinked resolv.conf, e.g. systemd-resolved's, would point into the
    # host's private /run: then the host keeps the machine's).
    own_resolv && binds+=("$e/resolv.conf=/etc/resolv.conf")
    binds+=("$e/hosts=/etc/hosts" "$d/run=/run")     # /run last: the state dir may not live there
    setsid ip netns exec "vl-$n" unshare --mount --uts --propagation private -- \
        env -i PATH="$SAFE_PATH" _VORLAB_DAEMON="$STATE|$n" \
        bash -c "$ANCHOR_SCRIPT" anchor "$n" "$d" "${binds[@]}" \
        </dev/null >>"$d/log/anchor.out" 2>&1 9>&- &
}

mac() { printf '02:76:6c:%02x:00:%02x' "$1" "$2"; }

# Network of host $1, idempotent (also repairs a deleted veth).
net_config() {
    local n=$1 o=${OCTET[$1]} ns=vl-$1
    if ! ip link show "vl-$n" >/dev/null 2>&1; then
        ip link add "vl-$n" address "$(mac 1 "$o")" type veth peer name eth0 address "$(mac 0 "$o")" netns "$ns"
    fi
    ip link set "vl-$n" master "$BRIDGE" up
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sh -c 'echo 0 >/proc/sys/net/ipv6/conf/eth0/accept_ra; echo 0 >/proc/sys/net/ipv6/conf/eth0/accept_dad' 2>/dev/null || true
    ip -n "$ns" addr replace "$NET4.$o/24" broadcast + dev eth0
    ip -n "$ns" addr replace "$NET6:$o/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route replace default via "$LAB_GW4" dev eth0
    ip -n "$ns" -6 route replace default via "$LAB_GW6" dev eth0
}

FW_PENDING=()                     # hosts whose firewalld must reach RUNNING
LISTEN_PENDING=()

# Build host $1 or repair it: keep what is healthy, restart what is dead.
ensure_host() {
    local n=$1 d=$STATE/$1 a p fresh_bus=0
    mkdir -p "$d/log" "$d/ssh" "$d/etc"
    local release=${FW_RELEASE[$n]:-debian}
    ((FW_IPTABLES[$n])) && release+=-iptables
    if [[ -e $d/firewalld.release && $(<"$d/firewalld.release") != "$release" ]]; then
        say "$n: firewalld changes to $release: rebuilding the host"
        destroy_host "$n"
        rm -rf "${d:?}/etc"
    fi
    if a=$(anchor_pid "$n") && ! has_own_resolv "$n" "$a"; then
        say "$n: rebuilding the host (it has no resolv.conf of its own yet)"
        destroy_host "$n"
    fi
    if ((FRESH)) || ! a=$(anchor_pid "$n"); then
        destroy_host "$n"
        ((FRESH)) && rm -rf "${d:?}/etc" "${d:?}/var-lib-vorstream-firewall" "${d:?}/libexec-vorstream-firewall"
        check_pristine
        seed_etc "$n"
        printf '%s\n' "$release" >"$d/firewalld.release"
        etc_hosts_text >"$d/etc/hosts"
        resolv_text >"$d/etc/resolv.conf"
        mkdir -p "$d/run/dbus" "$d/run/sshd" "$d/run/lock"
        chmod 755 "$d/run" "$d/run/dbus" "$d/run/sshd"
        chmod 1777 "$d/run/lock"
        ip netns add "vl-$n"
        start_anchor "$n"
        wait_until 5 anchor_pid "$n" >/dev/null ||
            die "$n: anchor did not come up; $(tail -n 5 "$d/log/anchor.out" 2>/dev/null)"
        a=$(anchor_pid "$n")
    else
        write_if_changed "$d/etc/hosts" "$(etc_hosts_text)" || true
        write_if_changed "$d/etc/resolv.conf" "$(resolv_text)" || true
    fi
    net_config "$n"

    # D-Bus system bus (the standard socket path, inside the private /run).
    if ! daemon_pid "$n" dbus/pid "$a" >/dev/null; then
        rm -f "$d/run/dbus/system_bus_socket" "$d/run/dbus/pid"
        spawn "$n" "$a" dbus/pid dbus dbus-daemon --config-file="$STATE/dbus-system.conf" --nofork --nopidfile --nosyslog
        wait_until 5 test -S "$d/run/dbus/system_bus_socket" ||
            die "$n: dbus-daemon did not come up; $(tail -n 5 "$d/log/dbus.out")"
        fresh_bus=1
    fi

    # sshd: own host key (kept across runs), lab key for root.
    [[ -f $d/ssh/ssh_host_ed25519_key ]] ||
        ssh-keygen -q -t ed25519 -N '' -C "root@$n" -f "$d/ssh/ssh_host_ed25519_key"
    if write_if_changed "$d/sshd_config" "$(sshd_config_text "$n")"; then
        in_host "$a" /usr/sbin/sshd -t -f "$d/sshd_config" || die "$n: bad $d/sshd_config"
        p=$(daemon_pid "$n" sshd.pid "$a") && kill -HUP "$p"     # sshd re-execs with the new config
    fi
    if ! daemon_pid "$n" sshd.pid "$a" >/dev/null; then
        rm -f "$d/run/sshd.pid"
        spawn "$n" "$a" sshd.pid sshd /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/log/sshd.log"
    fi

    # Listeners (restarted when the port lists change).
    local spec="tcp=$VORLAB_TCP_PORTS udp=$VORLAB_UDP_PORTS"
    if p=$(daemon_pid "$n" vorlab-listeners.pid "$a") && [[ $(cat "$d/run/vorlab-listeners.spec" 2>/dev/null) != "$spec" ]]; then
        kill_pids "$p"
    fi
    if ! daemon_pid "$n" vorlab-listeners.pid "$a" >/dev/null; then
        rm -f "$d/run/vorlab-listeners.pid" "$d/run/vorlab-listeners.ready"
        printf '%s\n' "$spec" >"$d/run/vorlab-listeners.spec"
        spawn "$n" "$a" vorlab-listeners.pid listeners /usr/bin/python3 "$LAB_DIR/listeners.py" \
            --name "$n" --tcp "$VORLAB_TCP_PORTS" --udp "$VORLAB_UDP_PORTS" \
            --log "$d/log/listeners.log" --ready-file /run/vorlab-listeners.ready
    fi
    LISTEN_PENDING+=("$n")

    # firewalld (only for backend firewalld).  It cannot survive a new bus.
    if [[ ${BACKEND[$n]} == firewalld ]]; then
        if ((fresh_bus)) && p=$(daemon_pid "$n" firewalld.pid "$a"); then
            kill_pids "$p"
        fi
        if ! daemon_pid "$n" firewalld.pid "$a" >/dev/null; then
            rm -f "$d/run/firewalld.pid"
            local logto=(--log-target file)       # not before 1.0: there the log file is all
            [[ -n ${FW_RELEASE[$n]} ]] && ! grep -q -- --log-target "$(release_prefix "${FW_RELEASE[$n]}")/sbin/firewalld" && logto=()
            spawn "$n" "$a" firewalld.pid firewalld /usr/sbin/firewalld --nofork --nopid \
                "${logto[@]}" --log-file "$d/log/firewalld.log"
        fi
        FW_PENDING+=("$n")
    elif p=$(daemon_pid "$n" firewalld.pid "$a"); then
        kill_pids "$p"            # the host's backend changed in the table
    fi

    # What a boot does for the other backends (ufw.service, nftables.service), when the
    # host's kernel has none of it yet (a new namespace is a rebooted host).
    if [[ ${BACKEND[$n]} == ufw ]] && grep -qx 'ENABLED=yes' "$STATE/$n/etc/ufw/ufw.conf" 2>/dev/null &&
        ! in_host "$a" iptables -S ufw-user-input >/dev/null 2>&1; then
        in_host "$a" /lib/ufw/ufw-init start >/dev/null 2>&1 || warn "$n: ufw-init start failed"
    fi
    if [[ ${BACKEND[$n]} == nftables ]] && [[ -z $(in_host "$a" nft list tables 2>/dev/null) ]]; then
        in_host "$a" nft -f /etc/nftables.conf >/dev/null 2>&1 || warn "$n: nft -f /etc/nftables.conf failed"
    fi
}

# Wait (in parallel) for every pending firewalld to be RUNNING, then bind eth0.
wait_firewalld() {
    local deadline=$((SECONDS + FW_TIMEOUT)) n a st
    local -a pending=("${FW_PENDING[@]}") next failed=()
    while ((${#pending[@]})); do
        next=()
        for n in "${pending[@]}"; do
            a=$(anchor_pid "$n") || { failed+=("$n: anchor is gone"); continue; }
            st=$(fw_state "$a")
            if [[ $st == RUNNING ]]; then
                fw_bind_eth0 "$a" || failed+=("$n: could not bind eth0 to the default zone")
            elif [[ $st == FAILED ]]; then
                failed+=("$n: firewalld state FAILED")
            elif ! daemon_pid "$n" firewalld.pid "$a" >/dev/null; then
                failed+=("$n: firewalld exited")
            else
                next+=("$n")
            fi
        done
        pending=("${next[@]}")
        ((${#pending[@]})) || break
        if ((SECONDS >= deadline)); then
            for n in "${pending[@]}"; do failed+=("$n: firewalld not running after ${FW_TIMEOUT}s"); done
            break
        fi
        sleep 0.2
    done
    ((${#failed[@]})) || return 0
    for st in "${failed[@]}"; do
        n=${st%%:*}
        printf 'lab: ERROR: %s\n--- %s (tail)\n' "$st" "$STATE/$n/log/firewalld.log" >&2
        tail -n 15 "$STATE/$n/log/firewalld.log" >&2 2>/dev/null || true
        printf -- '--- %s (tail)\n' "$STATE/$n/log/firewalld.out" >&2
        tail -n 15 "$STATE/$n/log/firewalld.out" >&2 2>/dev/null || true
    done
    return 1
}

wait_listeners() {
    local n
    for n in "${LISTEN_PENDING[@]}"; do
        wait_until 10 test -f "$STATE/$n/run/vorlab-listeners.ready" || {
            tail -n 5 "$STATE/$n/log/listeners.out" "$STATE/$n/log/listeners.log" >&2 2>/dev/null || true
            die "$n: listeners did not come up"
        }
    done
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
require_root() { ((EUID == 0)) || die "must run as root"; }

check_deps() {
    local c missing=()
    for c in ip unshare nsenter setsid flock dbus-daemon dbus-send ssh-keygen ss openssl; do
        command -v "$c" >/dev/null || missing+=("$c")
    done
    [[ -x /usr/sbin/sshd ]] || missing+=(sshd)
    [[ -x /usr/bin/python3 ]] || missing+=(/usr/bin/python3)
    command -v dnsmasq >/dev/null || [[ -x /usr/sbin/dnsmasq ]] || missing+=(dnsmasq)
    if uses_backend firewalld; then [[ -x /usr/sbin/firewalld ]] || missing+=(firewalld); fi
    if uses_backend ufw; then [[ -d /etc/ufw ]] || missing+=(ufw); fi
    if uses_backend nftables; then command -v nft >/dev/null || missing+=(nft); fi
    ((${#missing[@]} == 0)) || die "missing: ${missing[*]} (install with: $0 deps)"
    getent passwd messagebus >/dev/null || die "user messagebus missing (package dbus-daemon)"
    case $STATE/ in
        /run/* | /etc/firewalld/* | /etc/ufw/* | /tmp/*) die "VORLAB_STATE must not be under /run, /etc or /tmp (hidden or shadowed in hosts)" ;;
    esac
}

take_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock -w 300 9 || die "another lab.sh up/down holds $STATE/.lock"
}

FRESH=0
cmd_up() {
    local n start=$SECONDS
    while (($#)); do
        case $1 in
            --fresh) FRESH=1 ;;
            *) die "up: unknown option $1" ;;
        esac
        shift
    done
    require_root
    check_deps
    take_lock
    chmod 755 "$STATE"
    if [[ ! -f $STATE/id_ed25519 ]]; then
        ssh-keygen -q -t ed25519 -N '' -C vorlab -f "$STATE/id_ed25519"
    fi
    write_if_changed "$STATE/authorized_keys" "$(<"$STATE/id_ed25519.pub")" || true
    write_dbus_conf
    ensure_bridge
    brnf_setup

    # Leftovers of hosts that are no longer in the table.
    local -A wanted=()
    for n in "${HOSTS[@]}"; do wanted[$n]=1; done
    for n in $(stray_names); do
        [[ -n ${wanted[$n]:-} ]] || { say "removing stray host $n"; destroy_host "$n"; }
    done

    prepare_releases
    for n in "${HOSTS[@]}"; do ensure_host "$n"; done
    wait_listeners
    wait_firewalld || die "firewalld did not come up (see above)"
    "$LAB_DIR/idp.py" up --state "$STATE"
    # The lab's synthetic Entra ID feed, at a path outside the checkout (inventories copied
    # elsewhere by tests keep working; no checkout path in the committed inventory).
    install -m 0644 "${LAB_DIR%/lab}/fixtures/servicetags/ServiceTags_Public_lab_week1.json" "$STATE/lab-entra-feed.json"
    write_inventory
    write_ssh_config
    say "up: ${#HOSTS[@]} hosts in $((SECONDS - start))s; ssh -F $STATE/ssh_config <host>"
    say "inventory: $INVENTORY"
}

# Names of every lab host that has any trace: a host dir, a netns, a veth.
stray_names() {
    local f
    {
        for f in "$STATE"/*/anchor.pid "$STATE"/*/sshd_config; do [[ -e $f ]] && basename "$(dirname "$f")"; done
        for f in /run/netns/vl-*; do [[ -e $f ]] && printf '%s\n' "${f#/run/netns/vl-}"; done
        ip -o link show type veth 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); if ($2 ~ /^vl-/) print substr($2, 4) }'
    } | sort -u
}

cmd_down() {
    local n start=$SECONDS
    local -a pids
    require_root
    take_lock
    # Everything we started (by marker) plus anything else living in a lab netns.
    mapfile -t pids < <(lab_pids; for n in $(stray_names); do lab_pids "$n"; done)
    kill_pids "${pids[@]}"
    "$LAB_DIR/idp.py" down --state "$STATE"
    for n in $(stray_names); do destroy_host "$n"; done
    if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
    # `ip netns add` made /run/netns a (shared) mount point: undo that if no
    # namespace is left in it.
    if [[ -d /run/netns ]] && [[ -z $(ls -A /run/netns) ]]; then
        umount -n /run/netns 2>/dev/null || true
        rmdir /run/netns 2>/dev/null || true
    fi
    brnf_restore
    say "down in $((SECONDS - start))s"
}

cmd_status() {
    local n a d rc=0 addrs dbus fw sshd lis
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        say "bridge $BRIDGE: $(ip -br addr show dev "$BRIDGE" | awk '{$1=""; $2=""; print}' | xargs)"
    else
        say "bridge $BRIDGE: MISSING"; rc=1
    fi
    "$LAB_DIR/idp.py" status --state "$STATE" || rc=1
    printf '%-10s %-9s %-30s %-6s %-5s %-9s %-5s %-9s\n' HOST BACKEND ADDRESSES ANCHOR DBUS FIREWALLD SSHD LISTENERS
    for n in "${HOSTS[@]}"; do
        d=$STATE/$n
        addrs=- dbus=down fw=down sshd=down lis=down
        if a=$(anchor_pid "$n"); then
            addrs=$(ip -n "vl-$n" -br addr show dev eth0 2>/dev/null | awk '{for (i = 3; i <= NF; i++) if ($i !~ /^fe80/) printf "%s ", $i}')
            daemon_pid "$n" dbus/pid "$a" >/dev/null && dbus=up
            if [[ ${BACKEND[$n]} == firewalld ]]; then
                if daemon_pid "$n" firewalld.pid "$a" >/dev/null; then
                    fw=$(fw_state "$a"); fw=${fw:-noreply}; fw=${fw,,}
                fi
            else
                fw=n/a
            fi
            daemon_pid "$n" sshd.pid "$a" >/dev/null && [[ -n $(ss -N "vl-$n" -Hltn 'sport = :22' 2>/dev/null) ]] && sshd=up
            daemon_pid "$n" vorlab-listeners.pid "$a" >/dev/null && [[ -f $d/run/vorlab-listeners.ready ]] && lis=up
            printf '%-10s %-9s %-30s %-6s %-5s %-9s %-5s %-9s\n' "$n" "${BACKEND[$n]}" "${addrs% }" up "$dbus" "$fw" "$sshd" "$lis"
            [[ $dbus == up && $sshd == up && $lis == up && ($fw == running || $fw == n/a) ]] || rc=1
        else
            printf '%-10s %-9s %-30s %-6s %-5s %-9s %-5s %-9s\n' "$n" "${BACKEND[$n]}" - down - - - -
            rc=1
        fi
    done
    return "$rc"
}

cmd_exec() {
    local n=${1:-} a
    [[ -n $n ]] || die "usage: lab.sh exec HOST [CMD...]"
    shift
    require_root
    a=$(anchor_pid "$n") || die "host $n is not up"
    (($#)) || set -- bash -i
    exec nsenter -t "$a" -n -m -u --wd=/ -- env -u DBUS_SYSTEM_BUS_ADDRESS -u DBUS_SESSION_BUS_ADDRESS "$@"
}

cmd_ssh() {
    local n=${1:-}
    [[ -n $n ]] || die "usage: lab.sh ssh HOST [CMD...]"
    shift
    [[ -f $STATE/ssh_config ]] || die "no $STATE/ssh_config: run 'lab.sh up' first"
    exec ssh -F "$STATE/ssh_config" "$n" "$@"
}

cmd_deps() {
    local rc=0 policy=/usr/sbin/policy-rc.d
    require_root
    # Without systemd, maintainer scripts would start sshd/firewalld in the
    # root namespace: forbid service starts for the install (unless the
    # machine already has a policy of its own).
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update || rc=$?
    ((rc)) || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        iproute2 util-linux dbus-daemon dbus-bin openssh-server openssh-client \
        python3 firewalld ufw nftables socat dnsmasq-base openssl || rc=$?
    return "$rc"
}

usage() {
    cat <<EOF
usage: $0 COMMAND
  up [--fresh]        build or repair the lab (--fresh: also reset each host's
                      /etc/firewalld, /etc/ufw, ... to the package defaults)
  down                stop everything, remove namespaces, veths and the bridge
  status              show hosts and daemons; exit 1 if anything is down
  exec HOST [CMD...]  run CMD (default: bash) inside HOST's namespaces
  ssh HOST [CMD...]   ssh to HOST as root with the lab key
  inventory           (re)generate the inventory ($INVENTORY)
  deps                apt-get install what the lab needs
environment: VORLAB_STATE (default /var/lib/vorlab), LAB_HOSTS_FILE,
  VORLAB_TCP_PORTS, VORLAB_UDP_PORTS, VORLAB_FW_TIMEOUT, VORLAB_FW_BIND,
  VORLAB_BRNF, VORLAB_INVENTORY
EOF
}

main() {
    local cmd=${1:-}
    (($#)) && shift
    case $cmd in
        up) load_hosts; cmd_up "$@" ;;
        down) load_hosts; cmd_down ;;
        status) load_hosts; cmd_status ;;
        exec) load_hosts; cmd_exec "$@" ;;
        ssh) load_hosts; cmd_ssh "$@" ;;
        inventory) load_hosts; write_inventory ;;
        deps) cmd_deps ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

# Sourcing (for tests of single functions) defines everything but runs nothing.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
