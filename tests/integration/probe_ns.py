#!/usr/bin/env python
"""Independent prober, run inside a lab host's namespaces: stdlib sockets only, nothing of the
collection. Reads [[dst, port, proto], ...] as JSON on stdin, prints [[dst, port, proto, verdict]]
where verdict is "open", "closed" (RST / ICMP port unreachable: reachable) or "filtered"."""
import errno
import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

TIMEOUT = 1.0


def probe(t):
    dst, port, proto = t
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    if proto == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        try:
            s.connect((dst, port))
            return "open"
        except ConnectionRefusedError:
            return "closed"
        except OSError:
            return "filtered"
        finally:
            s.close()
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT / 2)
    try:
        s.connect((dst, port))
        for _try in range(2):
            s.send(b"probe\n")
            try:
                s.recv(512)
                return "open"
            except socket.timeout:
                continue
        return "filtered"
    except ConnectionRefusedError:
        return "closed"
    except OSError as e:
        return "closed" if e.errno == errno.ECONNREFUSED else "filtered"
    finally:
        s.close()


targets = json.load(sys.stdin)
with ThreadPoolExecutor(64) as ex:
    verdicts = list(ex.map(probe, targets))
json.dump([t + [v] for t, v in zip(targets, verdicts)], sys.stdout)
