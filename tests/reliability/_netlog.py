"""Run the synth CLI while logging every address it resolves or connects to (one JSON line each)."""

import json
import socket
import sys

log = open(sys.argv[1], "a", buffering=1)
_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, address):
    log.write(json.dumps({"connect": list(address) if isinstance(address, tuple) else address}) + "\n")
    return _connect(self, address)


def connect_ex(self, address):
    log.write(json.dumps({"connect": list(address) if isinstance(address, tuple) else address}) + "\n")
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    log.write(json.dumps({"resolve": host}) + "\n")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
sys.argv = ["synth", *sys.argv[2:]]
from synth.cli import main  # noqa: E402

main()
