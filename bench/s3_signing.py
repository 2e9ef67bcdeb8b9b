#!/usr/bin/env python3
"""s3_signing.py — what hashing PUT bodies into the SigV4 signature costs.

    bench/s3_signing.py [--rounds 3] [--duration-s 8] [--data-root /dev/shm]

One local s3rver; per round, one broker with `payload_signing=true` (the
default for an http endpoint: x-amz-content-sha256 is the body's SHA-256)
and one with `payload_signing=false` (UNSIGNED-PAYLOAD, the default for
https), in alternating order, each running `driver produce` (1 KiB x 8
partitions, acks=all, --duration-s). Prints per mode the median MB/s and the
agent's CPU seconds per GB (utime+stime from /proc) and the ratio. s3rver
runs on the same cores and is what bounds MB/s here (bench/RESULTS.md), so
the agent's CPU per GB is the figure to read. Only the standard library;
loopback only; uses bench/suite.py's s3rver and process helpers.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402


def one(s3, tmp, data_root, signing, n, duration):
    data = tempfile.mkdtemp(prefix="s3sign-", dir=data_root)
    port = suite.free_port()
    url = ("s3://%s/r%d-%s?endpoint=http://127.0.0.1:%d&region=us-east-1&payload_signing=%s"
           % (s3.bucket, n, signing, s3.port, signing))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")
    log = open(os.path.join(tmp, "broker.log"), "ab")
    p = subprocess.Popen([suite.SLUICE, "serve", "--listen", "127.0.0.1:%d" % port,
                          "--data", data, "--store", url], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, env=env)
    try:
        if not suite.wait_port(port, p):
            raise RuntimeError("broker did not start (log in %s)" % tmp)
        cpu0, t0 = suite.proc_cpu_s(p.pid), time.monotonic()
        out = subprocess.run([suite.DRIVER, "produce", "--bootstrap", "127.0.0.1:%d" % port,
                              "--topic", "sign", "--partitions", "8", "--msg-bytes", "1024",
                              "--duration-s", str(duration), "--acks", "all"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=duration + 120).stdout
        cpu = suite.proc_cpu_s(p.pid) - cpu0
        csv = [ln[4:].split(",") for ln in out.splitlines() if ln.startswith("csv:")]
        if not csv:
            raise RuntimeError("driver printed no result:\n" + out)
        mb_s = float(csv[-1][4])
        gb = mb_s * (time.monotonic() - t0) / 1000.0
        return mb_s, cpu / gb if gb > 0 else float("nan")
    finally:
        p.terminate()
        p.wait(30)
        subprocess.run(["rm", "-rf", data])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration-s", type=int, default=8)
    ap.add_argument("--data-root", default="/dev/shm")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="s3sign-bench-")
    s3 = suite.S3rver(tmp).start()
    got = {"true": [], "false": []}
    try:
        for n in range(a.rounds):
            order = ("true", "false") if n % 2 == 0 else ("false", "true")
            for signing in order:
                mb_s, cpu_gb = one(s3, tmp, a.data_root, signing, n, a.duration_s)
                got[signing].append((mb_s, cpu_gb))
                print("round %d payload_signing=%s: %.1f MB/s, agent %.2f CPU s/GB"
                      % (n + 1, signing, mb_s, cpu_gb), flush=True)
    finally:
        s3.proc.terminate()
        s3.proc.wait(30)
        subprocess.run(["rm", "-rf", tmp])
    med = {k: (statistics.median(m for m, _ in v), statistics.median(c for _, c in v))
           for k, v in got.items()}
    print("\n| payload_signing | MB/s | agent CPU s/GB |\n|---|---|---|")
    for k in ("true", "false"):
        print("| %s | %.1f | %.2f |" % (k, med[k][0], med[k][1]))
    print("| false/true | %.2f | %.2f |" % (med["false"][0] / med["true"][0],
                                           med["false"][1] / med["true"][1]))


if __name__ == "__main__":
    main()
