"""An independent reference for the flows VOR Stream's seed implies.

It reads the seed text itself (tests/fixtures/ports_reference.txt) -- never the collection's
data file or Rust code -- and the inventory as `ansible-inventory --list` prints it, and
returns the set of (host, direction, protocol, port, peer) flows. Tests compare `vorfw plan
--format flows` against it on inventories written for the test.
"""
from __future__ import annotations

import ipaddress
import json
import re
import socket
from pathlib import Path

SEED = Path(__file__).resolve().parent / "fixtures" / "ports_reference.txt"


def _section(lines, start, stop):
    i = lines.index(start) + 1
    out = []
    while i < len(lines) and not lines[i].startswith(stop):
        if lines[i].strip():
            out.append(lines[i].strip())
        i += 1
    return out


def parse_seed(text: str | None = None) -> dict:
    text = text if text is not None else SEED.read_text(encoding="utf-8")
    lines = [l.rstrip("\n") for l in text.splitlines()]
    mapping_lines = _section(lines, "Service Ansible host group", "External Traffic")
    mapping = {}
    for l in mapping_lines:
        svc, group = l.rsplit(" ", 1)
        mapping[svc] = group
    services = sorted(set(mapping) | {"SQL Server"}, key=len, reverse=True)
    alt = "|".join(re.escape(s) for s in services)
    row_re = re.compile(rf"^({alt}) (\d+) (.+) ({alt})$")
    internal = []
    for l in _section(lines, "Target Service Port Purpose / Notes Source Service", "Note"):
        m = row_re.match(l)
        assert m, f"unparsed seed row: {l!r}"
        target, port, purpose, source = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        internal.append(
            {
                "target": target,
                "port": port,
                "purpose": purpose,
                "source": source,
                "protocols": ["tcp", "udp"] if "TCP + UDP" in purpose else ["tcp"],
            }
        )
    ext_re = re.compile(r"^(Administrators / Power Users|Administrators|All users) (\S+) (\d+) (.+)$")
    external = []
    start = lines.index("Audience Host group Port Purpose Notes") + 1
    for l in lines[start:]:
        if not l.strip():
            continue
        m = ext_re.match(l.strip())
        assert m, f"unparsed external row: {l!r}"
        external.append({"audience": m.group(1), "group": m.group(2), "port": int(m.group(3)), "rest": m.group(4)})
    return {"mapping": mapping, "internal": internal, "external": external}


# Which variables hold each audience's sources (the seed's words, the variables).
AUDIENCE_VARS = {
    "Administrators": ["host_firewall_admin_sources"],
    "Administrators / Power Users": ["host_firewall_admin_sources", "host_firewall_power_user_sources"],
    "All users": ["host_firewall_user_sources"],
}
# "Connections originating from Vault are only necessary when you enable dynamic secrets for
# the destination service": the destination's name in host_firewall_vault_dynamic_secrets.
SECRET_NAME = {"Postgres": "postgres", "SQL Server": "sqlserver", "RabbitMQ": "rabbitmq"}


def _listvar(v, default):
    if v is None:
        return default
    if isinstance(v, str):
        s = v.strip()
        if s.startswith("["):
            return json.loads(s)
        return [x for x in re.split(r"[,\s]+", s) if x]
    return list(v)


def _net(s):
    return ipaddress.ip_network(s.strip(), strict=False)


def addresses(name, hv):
    a = hv.get("host_firewall_address")
    if a is not None:
        return [ipaddress.ip_address(x) for x in _listvar(a, [])]
    h = hv.get("ansible_host")
    if h is not None:
        try:
            return [ipaddress.ip_address(h)]
        except ValueError:
            pass
    infos = socket.getaddrinfo(h or name, 0)
    return sorted({ipaddress.ip_address(i[4][0]) for i in infos})


def expected_flows(inv: dict, seed: dict | None = None) -> set:
    seed = seed or parse_seed()
    hv = inv.get("_meta", {}).get("hostvars", {})

    # groups, children resolved
    def members(g, seen=None):
        seen = seen or set()
        if g in seen or g not in inv:
            return set()
        seen.add(g)
        out = set(inv[g].get("hosts", []))
        for c in inv[g].get("children", []):
            out |= members(c, seen)
        return out

    hosts = set(hv)
    for g in inv:
        if g != "_meta":
            hosts |= members(g)
    mapping = dict(seed["mapping"])
    mapping["SQL Server"] = "sqlserver"

    def runs(h, svc):
        g = mapping[svc]
        return g == "all" or h in members(g)

    addrs = {h: addresses(h, hv.get(h, {})) for h in hosts}
    flows = set()
    for t in hosts:
        v = hv.get(t, {})
        db = v.get("host_firewall_database", "postgres")
        secrets = set(_listvar(v.get("host_firewall_vault_dynamic_secrets"), []))
        own = set(addrs[t])
        for row in seed["internal"]:
            if not runs(t, row["target"]):
                continue
            if "Postgres is selected" in row["purpose"] and db != "postgres":
                continue
            if "SQL Server is selected" in row["purpose"] and db != "sqlserver":
                continue
            if row["source"] == "Vault" and SECRET_NAME[row["target"]] not in secrets:
                continue
            for s in hosts:
                if s == t or not runs(s, row["source"]):
                    continue
                for proto in row["protocols"]:
                    for a in addrs[s]:
                        if a not in own:
                            flows.add((t, "in", proto, row["port"], str(ipaddress.ip_network(a))))
                    for a in addrs[t]:
                        if a not in set(addrs[s]):
                            flows.add((s, "out", proto, row["port"], str(ipaddress.ip_network(a))))
        groups_of_t = {g for g in inv if g != "_meta" and t in members(g)}
        for row in seed["external"]:
            if row["group"] not in groups_of_t:
                continue
            nets = set()
            for var in AUDIENCE_VARS[row["audience"]]:
                default = ["0.0.0.0/0", "::/0"] if var == "host_firewall_user_sources" else []
                nets |= {_net(x) for x in _listvar(v.get(var), default)}
            for n in nets:
                flows.add((t, "in", "tcp", row["port"], str(n)))
        for n in _listvar(v.get("host_firewall_management_sources"), []):
            flows.add((t, "in", "tcp", 22, str(_net(n))))
    return flows
