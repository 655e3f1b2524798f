#!/usr/bin/env python
"""Port listeners for one VOR Stream lab host (stdlib only, one process).

Every lab host runs one instance of this script inside its own network and
mount namespaces (started by tests/lab/lab.sh).  It opens, on both the IPv4
and the IPv6 wildcard address:

* a TCP listener on every port of --tcp: each accepted connection gets a
  one-line banner ``vorlab <host> tcp/<port>`` and is then closed;
* a UDP socket on every port of --udp: each datagram is answered with one
  datagram ``vorlab <host> udp/<port>``.

So a client can tell "reached the right host" (banner/answer received) from
"blocked" (timeout, ICMP reject) and from "nothing listening" (RST).  Every
connection/datagram is logged with its peer address to --log (or stderr),
which lets tests observe flows from the receiving side as well.

A port that cannot be bound (for example because a real service now owns it)
is reported and skipped; the script exits 1 only if nothing could be bound.

Port lists are comma/space separated; their defaults come from the
environment variables VORLAB_TCP_PORTS / VORLAB_UDP_PORTS, else the VOR
Stream port matrix below.
"""

import argparse
import asyncio
import datetime
import os
import signal
import socket
import sys

DEFAULT_TCP = "23234 8300 8301 8600 8001 1962 5432 1433 15672 5672 9000 8200 8081 8500 18080"
DEFAULT_UDP = "8301 8600 18080"


def parse_ports(spec):
    ports = []
    for item in spec.replace(",", " ").split():
        port = int(item)
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {item}")
        if port not in ports:
            ports.append(port)
    return ports


class Logger:
    def __init__(self, path):
        self.fh = open(path, "a", buffering=1) if path else sys.stderr

    def __call__(self, msg):
        stamp = datetime.datetime.now().isoformat(timespec="milliseconds")
        self.fh.write(f"{stamp} {msg}\n")


def fmt_peer(peer):
    if not peer:
        return "?"
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def make_socket(family, kind, port):
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # Separate v4 and v6 sockets, so each wildcard is bound explicitly.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
        sock.setblocking(False)
        return sock
    except OSError:
        sock.close()
        raise


class UdpResponder(asyncio.DatagramProtocol):
    def __init__(self, banner, log, port):
        self.banner, self.log, self.port = banner, log, port
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.log(f"udp/{self.port} from {fmt_peer(addr)} ({len(data)} bytes)")
        self.transport.sendto(self.banner, addr)

    def error_received(self, exc):  # e.g. ICMP port unreachable for a reply
        self.log(f"udp/{self.port} error: {exc}")


async def main(args):
    log = Logger(args.log)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    families = [socket.AF_INET]
    if socket.has_ipv6 and os.path.exists("/proc/net/if_inet6"):
        families.append(socket.AF_INET6)

    bound, failed = [], []
    servers, transports = [], []

    def tcp_handler(port):
        banner = f"vorlab {args.name} tcp/{port}\n".encode()

        async def handle(reader, writer):
            log(f"tcp/{port} from {fmt_peer(writer.get_extra_info('peername'))}")
            try:
                writer.write(banner)
                await asyncio.wait_for(writer.drain(), 2)
            except (OSError, asyncio.TimeoutError):
                pass
            finally:
                writer.close()

        return handle

    for port in args.tcp:
        for fam in families:
            try:
                sock = make_socket(fam, socket.SOCK_STREAM, port)
            except OSError as exc:
                failed.append(f"tcp/{port}/{fam.name}: {exc.strerror}")
                continue
            servers.append(await asyncio.start_server(tcp_handler(port), sock=sock))
            bound.append(f"tcp/{port}/{'v6' if fam == socket.AF_INET6 else 'v4'}")

    for port in args.udp:
        banner = f"vorlab {args.name} udp/{port}\n".encode()
        for fam in families:
            try:
                sock = make_socket(fam, socket.SOCK_DGRAM, port)
            except OSError as exc:
                failed.append(f"udp/{port}/{fam.name}: {exc.strerror}")
                continue
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda b=banner, p=port: UdpResponder(b, log, p), sock=sock)
            transports.append(transport)
            bound.append(f"udp/{port}/{'v6' if fam == socket.AF_INET6 else 'v4'}")

    for item in failed:
        log(f"WARNING: could not bind {item}")
    if not bound:
        log("ERROR: no port could be bound")
        return 1
    log(f"listening ({len(bound)} sockets): {' '.join(bound)}")
    if args.ready_file:
        with open(args.ready_file, "w") as fh:
            fh.write(f"{os.getpid()}\n")

    await stop.wait()
    log("stopping")
    for srv in servers:
        srv.close()
    for tr in transports:
        tr.close()
    if args.ready_file:
        try:
            os.unlink(args.ready_file)
        except OSError:
            pass
    return 0


def cli():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", default=socket.gethostname(), help="host name used in banners")
    p.add_argument("--tcp", type=parse_ports,
                   default=parse_ports(os.environ.get("VORLAB_TCP_PORTS", DEFAULT_TCP)),
                   help="TCP ports (comma/space separated)")
    p.add_argument("--udp", type=parse_ports,
                   default=parse_ports(os.environ.get("VORLAB_UDP_PORTS", DEFAULT_UDP)),
                   help="UDP ports (comma/space separated)")
    p.add_argument("--log", help="append a line per connection/datagram here (default stderr)")
    p.add_argument("--ready-file", help="written once all sockets are bound, removed on exit")
    return asyncio.run(main(p.parse_args()))


if __name__ == "__main__":
    sys.exit(cli())
