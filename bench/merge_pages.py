#!/usr/bin/env python3
"""bench/merge_pages.py — the CPU of a `sluice compact` pass whose merged
object spans many row pages (issue 15): one partition of small one-record
batches, pipelined so the writer joins them into rows of up to 256
batches, merged with SLUICE_MERGE_PAGE_ROWS (hidden) making a page that
many batches; each binary runs on its own copy of the same data, A/B
alternating. Printed, never asserted.

    python3 bench/merge_pages.py --base OLD_SLUICE --new NEW_SLUICE
                                 [--batches 100000] [--page-rows 1] [--rounds 2]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


def build(sluice, data, batches):
    os.environ["SLUICE_BIN"] = sluice
    import kproto
    import util
    from conftest import Broker
    b = Broker(data, ["--merge-interval-ms", "0"])
    b.start()
    util.create_topic(b.bootstrap, "pages", partitions=1)
    with kproto.connect(b.bootstrap) as s:
        for r in range(batches // 1000):
            for i in range(1000):
                body = (kproto.string(None) + kproto.i16(-1) + kproto.i32(10000) + kproto.array(
                    [kproto.string("pages") + kproto.array(
                        [kproto.i32(0) + kproto.bytes_(kproto.record_batch(
                            [(b"k%d" % i, b"v%d-%d" % (r, i), ())]))])]))
                s.sendall(kproto.request(kproto.API_PRODUCE, 3, i, body))
            for i in range(1000):
                kproto.recv_response(s)
    b.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--batches", type=int, default=100000)
    ap.add_argument("--page-rows", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="merge-pages-")
    try:
        src = os.path.join(tmp, "src")
        build(a.new, src, a.batches)
        print(subprocess.run([a.new, "inspect", "partition", "--data", src, "pages", "0"],
                             capture_output=True, text=True).stdout.splitlines()[0])
        env = dict(os.environ, SLUICE_MERGE_PAGE_ROWS=str(a.page_rows))
        for r in range(a.rounds):
            for name, binary in (("base", a.base), ("new", a.new)):
                run = os.path.join(tmp, "run")
                shutil.rmtree(run, ignore_errors=True)
                shutil.copytree(src, run)
                t0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                out = subprocess.run([binary, "compact", "--data", run, "pages", "0"],
                                     capture_output=True, text=True, env=env, check=True).stdout
                t1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (t1.ru_utime - t0.ru_utime) + (t1.ru_stime - t0.ru_stime)
                print("round %d %s: %.2f s CPU; %s" % (r + 1, name, cpu, out.strip()[:90]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
