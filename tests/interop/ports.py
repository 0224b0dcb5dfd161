# SPDX-License-Identifier: BSD-3-Clause
"""Ports for servers that the tests start with a port given on their command
line (nats-server, rsyslog): they cannot be told to take port 0.

Picking a port by binding to port 0 and closing it races with the whole
machine: the kernel hands out that same ephemeral range to every outgoing
connection, so on a busy machine the port may be taken again before the
server binds it.  These come from below the ephemeral range instead
(/proc/sys/net/ipv4/ip_local_port_range), where only explicit binds land,
chosen at random and checked free.
"""

import random
import socket

HOST = "127.0.0.1"


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(kind=socket.SOCK_STREAM, host=HOST):
    """A port no one listens on now, outside the kernel's ephemeral range."""
    high = min(_ephemeral_low(), 65536) - 1
    low = max(1024, min(10000, high - 1000))
    # An ephemeral range that starts low (1024) leaves no room below it.
    tries = 200 if high - low >= 100 else 0
    for _ in range(tries):
        port = random.randint(low, high)
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    # No room, or everything tried was busy: let the kernel choose after all.
    s = socket.socket(socket.AF_INET, kind)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port
