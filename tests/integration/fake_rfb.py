#!/usr/bin/env python3
"""fake_rfb.py MODE PORT - an RFB server that misbehaves, for tests/integration/test_vnc.sh.

Modes (each connection is served the same way, so reconnects see it again):
  stall      sends its version and then nothing: the handshake never ends
  midupdate  RFB 3.8, None, a 640x480 ServerInit; answers the first update
             request with half a Raw rectangle, then closes
  bigrect    as midupdate, but announces a 1000x1000 rectangle on a 640x480 screen
  unknown    as midupdate, but sends server message type 99
  empty      a whole 640x480 frame first, then every request answered at once with an
             empty update; prints "requests N" each second (a client must not spin)
Prints "listening" once it accepts connections.
"""
import socket
import struct
import sys
import threading
import time


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        part = c.recv(n - len(b))
        if not part:
            raise ConnectionError
        b += part
    return b


def serve(c, mode):
    try:
        c.sendall(b"RFB 003.008\n")
        if mode == "stall":
            c.recv(100)
            threading.Event().wait(600)
            return
        recv_exact(c, 12)
        c.sendall(b"\x01\x01")
        recv_exact(c, 1)
        c.sendall(struct.pack(">I", 0))
        recv_exact(c, 1)
        pf = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
        c.sendall(struct.pack(">HH", 640, 480) + pf + struct.pack(">I", 4) + b"fake")
        # SetPixelFormat (20), SetEncodings (4 + 4n), then a request (10).
        recv_exact(c, 20)
        n = struct.unpack(">xxH", recv_exact(c, 4))[0]
        recv_exact(c, 4 * n)
        recv_exact(c, 10)
        if mode == "empty":
            c.sendall(struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, 640, 480, 0))
            c.sendall(b"\x40" * (640 * 480 * 4))
            count, last = 0, time.monotonic()
            while True:
                recv_exact(c, 10)
                count += 1
                c.sendall(struct.pack(">BxH", 0, 0))
                if time.monotonic() - last >= 1:
                    print("requests %d" % count, flush=True)
                    count, last = 0, time.monotonic()
        if mode == "unknown":
            c.sendall(b"\x63")
        elif mode == "bigrect":
            c.sendall(struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, 1000, 1000, 0))
            c.sendall(b"\0" * 4096)
        else:
            c.sendall(struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, 640, 480, 0))
            c.sendall(b"\x40" * (640 * 240 * 4))
        threading.Event().wait(0.2)
    except (ConnectionError, OSError):
        pass
    finally:
        c.close()


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode), daemon=True).start()


if __name__ == "__main__":
    main()
