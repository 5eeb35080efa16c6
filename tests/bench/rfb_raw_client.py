#!/usr/bin/env python3
"""rfb_raw_client.py PORT N - a minimal RFB client in the Python 3 standard library, the
reference kvmgate's vnc driver is measured against (tests/bench/vnc.sh).

It does what simple VNC screenshot tools do: RFB 3.8 with security None, 32-bit pixels,
Raw encoding only, one full (non-incremental) FramebufferUpdateRequest per screenshot, the
whole update read into a framebuffer. Prints, in milliseconds: the cold screenshot (connect,
handshake, first full frame) and p50/p99 of N warm screenshots on the open connection.
"""
import socket
import struct
import sys
import time


def recv_exact(s, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = s.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError("server closed")
        got += k
    return bytes(buf)


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    recv_exact(s, 12)
    s.sendall(b"RFB 003.008\n")
    n = recv_exact(s, 1)[0]
    types = recv_exact(s, n)
    if 1 not in types:
        raise SystemExit("the server needs authentication")
    s.sendall(b"\x01")
    if struct.unpack(">I", recv_exact(s, 4))[0] != 0:
        raise SystemExit("security failed")
    s.sendall(b"\x01")
    w, h = struct.unpack(">HH", recv_exact(s, 4))
    recv_exact(s, 16)
    recv_exact(s, struct.unpack(">I", recv_exact(s, 4))[0])
    pf = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
    s.sendall(b"\x00\x00\x00\x00" + pf + struct.pack(">BxHi", 2, 1, 0))
    return s, w, h


def screenshot(s, w, h, fb):
    """One full frame: request, then every rectangle of the update into fb."""
    s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    while True:
        t = recv_exact(s, 1)[0]
        if t == 0:
            break
        if t == 2:
            continue
        if t == 3:
            recv_exact(s, 3)
            recv_exact(s, struct.unpack(">I", recv_exact(s, 4))[0])
            continue
        raise SystemExit("unexpected message %d" % t)
    n = struct.unpack(">xH", recv_exact(s, 3))[0]
    for _ in range(n):
        x, y, rw, rh, enc = struct.unpack(">HHHHi", recv_exact(s, 12))
        if enc != 0:
            raise SystemExit("encoding %d" % enc)
        data = recv_exact(s, rw * rh * 4)
        for row in range(rh):
            off = ((y + row) * w + x) * 4
            fb[off:off + rw * 4] = data[row * rw * 4:(row + 1) * rw * 4]


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    t0 = time.perf_counter()
    s, w, h = connect(port)
    fb = bytearray(w * h * 4)
    screenshot(s, w, h, fb)
    cold = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(n):
        t = time.perf_counter()
        screenshot(s, w, h, fb)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print("%.2f %.2f %.2f %dx%d" % (cold, times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))], w, h))


if __name__ == "__main__":
    main()
