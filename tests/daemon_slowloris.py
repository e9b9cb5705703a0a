#!/usr/bin/python3
"""Slowloris check for lowrankd (reliability goal H4), run by tests/daemon.sh.

    daemon_slowloris.py PORT [ATTACKERS] [PROBES]

Opens ATTACKERS (600) connections from 127.0.0.2 that each send a partial
request and then one more header line every 5 s, and meanwhile sends PROBES
(100) requests for GET /livez and GET /v1/jobs from 127.0.0.1, each on a new
connection with a 2 s deadline. Prints how many attacker connections the
server kept open and how many probes were answered in time; exits 0 when
at least 99% were.
"""
import socket
import sys
import threading
import time

port = int(sys.argv[1])
attackers = int(sys.argv[2]) if len(sys.argv) > 2 else 600
probes = int(sys.argv[3]) if len(sys.argv) > 3 else 100
stop = False
socks = []


def attack():
    for _ in range(attackers):
        try:
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(1)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            pass
    while not stop:
        for s in list(socks):
            try:
                s.sendall(b"X-Trickle: 1\r\n")
            except OSError:
                socks.remove(s)
        time.sleep(5)


def probe(path):
    t0 = time.time()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = s.recv(64)
        s.close()
        return data.startswith(b"HTTP/1.1 200") and time.time() - t0 < 2
    except OSError:
        return False


t = threading.Thread(target=attack, daemon=True)
t.start()
time.sleep(6)
ok = sum(probe(b"/livez" if i % 2 else b"/v1/jobs") for i in range(probes))
alive = 0
for s in list(socks):
    try:
        s.sendall(b"X-Trickle: 1\r\n")
        alive += 1
    except OSError:
        pass
stop = True
print("attacker connections still open: %d of %d; probes answered within 2 s: %d of %d"
      % (alive, attackers, ok, probes))
sys.exit(0 if ok >= probes * 0.99 else 1)
