#!/usr/bin/env python3
"""tls.py — what TLS and SASL cost: SSL and SASL_SSL against PLAINTEXT
on one binary.

    bench/tls.py [--bin build/sluice] [--rounds 3] [--data-root /dev/shm]
                 [--driver build/bench/driver] [--duration-s 8]
                 [--backlog-mib 256] [--handshake-s 5] [--connections 1000]
                 [--protocols PLAINTEXT,SSL,SASL_SSL] [--catchup-only]
                 [--base BASE_BIN] [--no-extras]

Makes a CA and a server certificate (RSA 2048, openssl command line),
then alternates the two listeners round by round (PLAINTEXT, SSL, ...)
on a fresh broker each round, which listens on both: `driver produce`
(1 KiB x 8 partitions, acks=all) and a cold catch-up of a --backlog-mib
backlog in 64 partitions after a restart (`driver consume`), the SSL
rounds with `--conf security.protocol=ssl`, the SASL_SSL ones logged
in as a SCRAM-SHA-512 user (4,096 iterations) made with `sluice users
add` (every librdkafka connection authenticates once). Prints per
protocol the median MB/s and broker CPU seconds per GB, as bench/ab.py
does (and, for the catch-up, the consuming driver's own CPU per GB), and
each against PLAINTEXT. Then SCRAM-SHA-512 logins per second
over SASL_SSL (TLS handshake and SASL exchange per connection, as
handshakes below) and
TLS handshakes per second (two client threads connecting, handshaking
and closing for --handshake-s; the broker's CPU per handshake beside
it), and the broker's RSS growth per idle connection with
--connections connections open (TLS, each after one ApiVersions, and
plaintext for comparison). Only the standard library and the driver.

--catchup-only skips the produce row (more rounds in the same time).
--base BASE_BIN alternates a second binary with --bin round by round
(each protocol on BASE, then on --bin) and prints its table too, with
--bin against it: an A/B of a TLS change with PLAINTEXT beside it in
the same run. --no-extras skips the handshakes, logins and idle memory.
"""
import argparse
import os
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ab  # noqa: E402  (free_port, cpu_s, driver)

ROOT = ab.ROOT


def make_certs(d):
    def run(*a):
        subprocess.run(["openssl"] + list(a), cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=bench-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
        "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return {k: os.path.join(d, k + ".pem") for k in ("ca", "server")} | {
        "key": os.path.join(d, "server.key")}


SASL_USER, SASL_PASSWORD = "bench", "bench-secret"


def sasl_conf(certs):
    return ["--conf", "security.protocol=sasl_ssl", "--conf", "ssl.ca.location=" + certs["ca"],
            "--conf", "sasl.mechanisms=SCRAM-SHA-512", "--conf", "sasl.username=" + SASL_USER,
            "--conf", "sasl.password=" + SASL_PASSWORD]


class Broker:
    def __init__(self, binary, data, certs):
        self.plain, self.secure, self.sasl = ab.free_port(), ab.free_port(), ab.free_port()
        if not os.path.exists(os.path.join(data, "meta.db")):
            subprocess.run([binary, "users", "add", SASL_USER, "--password-stdin", "--data",
                            data], input=SASL_PASSWORD.encode(), check=True,
                           capture_output=True)
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen",
             "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d" % (
                 self.plain, self.secure, self.sasl), "--tls-cert", certs["server"], "--tls-key",
             certs["key"], "--data", data, "--log-level", "warn",
             "--default-partitions", "8"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.plain), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not start")

    def bootstrap(self, proto):
        return "127.0.0.1:%d" % {"SSL": self.secure, "SASL_SSL": self.sasl}.get(proto, self.plain)

    def cpu(self):
        return ab.cpu_s(self.proc.pid)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


def one_round(args, certs, proto, binary):
    conf = []
    if proto == "SSL":
        conf = ["--conf", "security.protocol=ssl", "--conf", "ssl.ca.location=" + certs["ca"]]
    elif proto == "SASL_SSL":
        conf = sasl_conf(certs)
    data = tempfile.mkdtemp(prefix="sluice-tls-", dir=args.data_root)
    try:
        b = Broker(binary, data, certs)
        produce = (0.0, 0.0)
        if not args.catchup_only:
            c0 = b.cpu()
            mb_s, nbytes = ab.driver(args, "produce", "--bootstrap", b.bootstrap(proto),
                                     "--topic", "p", "--partitions", "8", "--msg-bytes",
                                     "1024", "--duration-s", str(args.duration_s), "--acks",
                                     "all", *conf)
            produce = (mb_s, (b.cpu() - c0) / (nbytes / 1e9))
        count = args.backlog_mib * 1024
        ab.driver(args, "produce", "--bootstrap", b.bootstrap("PLAINTEXT"), "--topic", "c",
                  "--partitions", "64", "--msg-bytes", "1024", "--count", str(count),
                  "--acks", "all")
        b.stop()
        b = Broker(binary, data, certs)
        c0, k0 = b.cpu(), children_cpu_s()
        mb_s, nbytes = ab.driver(args, "consume", "--bootstrap", b.bootstrap(proto), "--topic",
                                 "c", "--partitions", "64", "--count", str(count), *conf)
        catchup = (mb_s, (b.cpu() - c0) / (nbytes / 1e9),
                   (children_cpu_s() - k0) / (nbytes / 1e9))
        b.stop()
        return produce, catchup
    finally:
        shutil.rmtree(data, ignore_errors=True)


def children_cpu_s():
    """User+system CPU of the children waited for so far (the driver runs
    are; the broker of the round is not until it stops)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def api_versions(sock):
    sock.sendall(b"\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\xff\xff")
    size = int.from_bytes(sock.recv(4), "big")
    got = 0
    while got < size:
        got += len(sock.recv(size - got))


def per_second(args, b, one):
    """one() over and over from two client threads for --handshake-s:
    (calls per second, broker CPU ms per call)."""
    count = [0, 0]
    end = time.monotonic() + args.handshake_s

    def loop(i):
        while time.monotonic() < end:
            one()
            count[i] += 1

    c0 = b.cpu()
    t0 = time.monotonic()
    ts = [threading.Thread(target=loop, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.monotonic() - t0
    n = sum(count)
    return n / secs, (b.cpu() - c0) / n * 1000


def handshakes(args, certs, b):
    ctx = ssl.create_default_context(cafile=certs["ca"])

    def one():
        with socket.create_connection(("127.0.0.1", b.secure)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                pass

    return per_second(args, b, one)


def scram_logins(args, certs, b):
    """SCRAM-SHA-512 logins per second over SASL_SSL: connect, TLS,
    SaslHandshake v1, the two SaslAuthenticate rounds, close."""
    import base64
    import hashlib
    import hmac
    ctx = ssl.create_default_context(cafile=certs["ca"])

    def req(sock, key, version, body, cid):
        hdr = key.to_bytes(2, "big") + version.to_bytes(2, "big") + cid.to_bytes(4, "big") + \
            b"\x00\x05bench"
        sock.sendall((len(hdr) + len(body)).to_bytes(4, "big") + hdr + body)
        size = int.from_bytes(recv(sock, 4), "big")
        return recv(sock, size)[4:]

    def recv(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def token(resp):
        assert resp[:2] == b"\x00\x00", resp
        msg_len = int.from_bytes(resp[2:4], "big", signed=True)
        at = 4 + max(msg_len, 0)
        n = int.from_bytes(resp[at:at + 4], "big")
        return resp[at + 4:at + 4 + n]

    def login(sock):
        mech = b"SCRAM-SHA-512"
        assert req(sock, 17, 1, len(mech).to_bytes(2, "big") + mech, 1)[:2] == b"\x00\x00"
        nonce = base64.b64encode(os.urandom(18)).decode()
        bare = "n=%s,r=%s" % (SASL_USER, nonce)
        first = ("n,," + bare).encode()
        sf = token(req(sock, 36, 1, len(first).to_bytes(4, "big") + first, 2)).decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        salted = hashlib.pbkdf2_hmac("sha512", SASL_PASSWORD.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        ck = hmac.new(salted, b"Client Key", "sha512").digest()
        wo = "c=biws,r=" + attrs["r"]
        sig = hmac.new(hashlib.sha512(ck).digest(), ",".join([bare, sf, wo]).encode(),
                       "sha512").digest()
        final = (wo + ",p=" + base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig))).decode()
                 ).encode()
        token(req(sock, 36, 1, len(final).to_bytes(4, "big") + final, 3))

    def one():
        with socket.create_connection(("127.0.0.1", b.sasl)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                login(s)

    return per_second(args, b, one)


def idle_memory(args, certs, b, proto):
    ctx = ssl.create_default_context(cafile=certs["ca"])
    time.sleep(0.5)
    before = b.rss_kb()
    socks = []
    for _ in range(args.connections):
        s = socket.create_connection(("127.0.0.1", b.secure if proto == "SSL" else b.plain))
        if proto == "SSL":
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        api_versions(s)
        socks.append(s)
    time.sleep(1)
    after = b.rss_kb()
    for s in socks:
        s.close()
    return (after - before) / args.connections


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sluice"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-root", default="/dev/shm")
    ap.add_argument("--driver", default=os.path.join(ROOT, "build", "bench", "driver"))
    ap.add_argument("--duration-s", type=int, default=8)
    ap.add_argument("--backlog-mib", type=int, default=256)
    ap.add_argument("--handshake-s", type=float, default=5)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--protocols", default="PLAINTEXT,SSL,SASL_SSL",
                    help="listeners to compare, PLAINTEXT first")
    ap.add_argument("--catchup-only", action="store_true")
    ap.add_argument("--base", help="a second binary, alternated with --bin")
    ap.add_argument("--no-extras", action="store_true")
    args = ap.parse_args()
    protos = args.protocols.split(",")
    bins = ([("base", args.base)] if args.base else []) + [("new" if args.base else "", args.bin)]
    d = tempfile.mkdtemp(prefix="sluice-tls-certs-")
    certs = make_certs(d)
    res = {(name, p): [] for name, _ in bins for p in protos}
    for r in range(args.rounds):
        for proto in protos:
            for name, binary in bins:
                p, c = one_round(args, certs, proto, binary)
                res[(name, proto)].append((p, c))
                print("round %d %-4s %-9s produce %7.1f MB/s %5.2f cpu-s/GB   catch-up %7.1f "
                      "MB/s %5.2f cpu-s/GB (client %5.2f)"
                      % (r + 1, name, proto, p[0], p[1], c[0], c[1], c[2]), flush=True)
    med = {}
    for key, rows in res.items():
        med[key] = [statistics.median(x) for x in (
            [p[0] for p, _ in rows], [p[1] for p, _ in rows],
            [c[0] for _, c in rows], [c[1] for _, c in rows], [c[2] for _, c in rows])]

    def ratio(a, b):
        return tuple(x / y if y else float("nan") for x, y in zip(med[a], med[b]))
    for name, _ in bins:
        print("\n%s| listener | produce MB/s | produce CPU s/GB | catch-up MB/s | "
              "catch-up CPU s/GB | catch-up client CPU s/GB |" % (name + " " if name else ""))
        print("|---|---|---|---|---|---|")
        for proto in protos:
            print("| %s | %.1f | %.2f | %.1f | %.2f | %.2f |"
                  % ((proto,) + tuple(med[(name, proto)])))
        for proto in protos[1:]:
            print("| %s/%s | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
                (proto, protos[0]) + ratio((name, proto), (name, protos[0]))))
    if args.base:
        print("\n| new/base | produce MB/s | produce CPU s/GB | catch-up MB/s | catch-up CPU s/GB "
              "| catch-up client CPU s/GB |")
        print("|---|---|---|---|---|---|")
        for proto in protos:
            print("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
                (proto,) + ratio(("new", proto), ("base", proto))))
    if args.no_extras:
        shutil.rmtree(d, ignore_errors=True)
        return 0
    data = tempfile.mkdtemp(prefix="sluice-tls-", dir=args.data_root)
    try:
        b = Broker(args.bin, data, certs)
        rate, cpu_ms = handshakes(args, certs, b)
        print("\nTLS handshakes: %.0f/s (2 client threads), broker CPU %.2f ms each" % (rate, cpu_ms))
        rate, cpu_ms = scram_logins(args, certs, b)
        print("SASL_SSL SCRAM-SHA-512 logins: %.0f/s (2 client threads, each a TLS handshake "
              "too), broker CPU %.2f ms each" % (rate, cpu_ms))
        for proto in ("PLAINTEXT", "SSL"):
            kb = idle_memory(args, certs, b, proto)
            print("idle %s connection: %.1f KiB of broker RSS each (%d open)" % (
                proto, kb, args.connections))
        b.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
