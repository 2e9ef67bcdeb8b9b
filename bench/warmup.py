#!/usr/bin/env python3
"""warmup.py — is targets.py's half-rate produce p99 a fresh broker's
warm-up? Runs its step 2 (1 KiB x 8 partitions, acks=all, linger 5 ms, one
producer at --rate msgs/s for --duration-s) with `driver --per-second`:

    bench/warmup.py [--bin build/sluice] [--driver build/bench/driver]
                    [--rounds 2] [--duration-s 10] [--rate 220000] [--skip-s 3]
                    [--tmpfs-root /dev/shm] [--disk-root /tmp]
                    [--env-ab NAME=VALUE] [--targets disk,tmpfs,mock] [--brokers fresh,warm]

Each round, against the file store on the disk, on tmpfs and the mock
(`driver mock-serve`), each on a broker of its own started for it:
  fresh: the half-rate run on a just-started broker (as targets.py);
  warm:  a --duration-s run at full speed, a sync(), then the half-rate
         run on the same broker and topic.
The targets alternate (reversed every other round), each after a sync().
--env-ab NAME=VALUE runs each Sluice target twice a round, without and
with that variable in the broker's environment (an A/B of one setting,
e.g. SLUICE_BUFFER_PRETOUCH_BYTES=67108864; "+" in the table).
Prints per run p50/p99/max per second of produce() time, the p99 of the
whole run and of the records sent from --skip-s on, and for Sluice the
agent's own Produce p99 (the bucket of sluice_request_duration_seconds
holding it, scraped before the half-rate run, when the driver reports
second --skip-s and after: the whole run's and from --skip-s on). Asserts
nothing.
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from targets import ROOT, Mock, Sluice, bucket_quantile  # noqa: E402


def run(args, tgt, *extra):
    """One driver run; for Sluice, the agent's Produce p99 bucket before and
    after the driver's progress line for second --skip-s (stderr)."""
    h0 = tgt.produce_hist()
    p = subprocess.Popen([args.driver, "produce", "--bootstrap", tgt.bootstrap, "--topic", "h",
                          "--partitions", "8", "--msg-bytes", "1024", "--duration-s",
                          str(args.duration_s), "--acks", "all", "--linger-ms", "5",
                          "--per-second", str(args.skip_s)] + list(extra),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hs, err = None, []
    for line in p.stderr:
        err.append(line)
        m = re.match(r"driver: +([0-9.]+) s ", line)
        if hs is None and m and float(m.group(1)) >= args.skip_s:
            hs = tgt.produce_hist()
    stdout = p.stdout.read()
    if p.wait() != 0:
        raise RuntimeError("driver failed: %s" % "".join(err)[-2000:])
    h1 = tgt.produce_hist()
    lines = stdout.splitlines()
    csv = [l for l in lines if l.startswith("csv:")][-1].split(",")
    after = [l for l in lines if l.startswith("after:")][-1][6:].split(",")
    return {"msgs_s": float(csv[5]), "p50": float(csv[6]), "p99": float(csv[7]),
            "after_p99": float(after[3]),
            "secs": [l[4:].split(",") for l in lines if l.startswith("sec:")],
            "agent_p99": bucket_quantile(h0, h1, 0.99),
            "agent_first": bucket_quantile(h0, hs, 0.99) if hs else float("nan"),
            "agent_after": bucket_quantile(hs, h1, 0.99) if hs else float("nan")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sluice"))
    ap.add_argument("--driver", default=os.path.join(ROOT, "build", "bench", "driver"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration-s", type=int, default=10)
    ap.add_argument("--rate", type=int, default=220000)
    ap.add_argument("--skip-s", type=int, default=3)
    ap.add_argument("--tmpfs-root", default="/dev/shm")
    ap.add_argument("--disk-root", default="/tmp")
    ap.add_argument("--env-ab", default=None)
    ap.add_argument("--targets", default="disk,tmpfs,mock")
    ap.add_argument("--brokers", default="fresh,warm")
    args = ap.parse_args()
    ab_name, _, ab_value = (args.env_ab or "").partition("=")
    load0 = open("/proc/loadavg").read().split()[:3]
    res = {}
    for rnd in range(args.rounds):
        order = [(t + v, w) for w in args.brokers.split(",") for t in args.targets.split(",")
                 for v in ("", "+") if v == "" or (args.env_ab and t != "mock")]
        for tv, w in order[::-1] if rnd % 2 else order:
            t = tv.rstrip("+")
            os.environ.pop(ab_name, None)
            if tv.endswith("+"):
                os.environ[ab_name] = ab_value
            os.sync()
            tgt = Mock(args) if t == "mock" else Sluice(
                args.bin, args.tmpfs_root if t == "tmpfs" else args.disk_root)
            os.environ.pop(ab_name, None)
            try:
                full = run(args, tgt) if w == "warm" else None
                if full:
                    os.sync()  # the warm-up's writes are not written back during the run
                r = run(args, tgt, "--rate", str(args.rate))
            finally:
                tgt.stop()
            res.setdefault((tv, w), []).append(r)
            print("round %d %s %s%s: %.0f msgs/s, p50/p99 %.2f/%.2f ms, p99 from %d s %.2f ms, "
                  "agent p99 <= %g ms (<= %g before %d s, <= %g after); per second p50/p99/max: %s" % (
                      rnd + 1, tv, w, " (after %.0f msgs/s full speed)" % full["msgs_s"]
                      if full else "", r["msgs_s"], r["p50"], r["p99"], args.skip_s,
                      r["after_p99"], r["agent_p99"], r["agent_first"], args.skip_s,
                      r["agent_after"],
                      " ".join("%s:%s/%s/%s" % (s[0], s[2], s[3], s[4]) for s in r["secs"])),
                  flush=True)
    load1 = open("/proc/loadavg").read().split()[:3]
    print("\nload average %s at the start, %s at the end; rate %d msgs/s, %d s runs"
          % (" ".join(load0), " ".join(load1), args.rate, args.duration_s))
    print("\n| target | broker | p99 ms (runs) | p99 from %d s ms (runs) | agent p99 ms (bucket) "
          "| agent p99 from %d s ms (bucket) |" % (args.skip_s, args.skip_s))
    print("|---|---|---|---|---|---|")
    for (t, w), rs in sorted(res.items()):
        print("| %s | %s | %s | %s | %s | %s |" % (
            t, w, " ".join("%.0f" % r["p99"] for r in rs),
            " ".join("%.0f" % r["after_p99"] for r in rs),
            " ".join("<= %g" % r["agent_p99"] for r in rs) if t != "mock" else "-",
            " ".join("<= %g" % r["agent_after"] for r in rs) if t != "mock" else "-"))
    print("\ncommand: bench/warmup.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
