#!/usr/bin/env python3
"""flamegraph.py — fold `perf script` output and draw it as an SVG flame graph.

    perf record -g -p PID -o perf.data -- sleep 10
    perf script -i perf.data | bench/flamegraph.py --title "produce, tmpfs" > out.svg
    perf script -i perf.data | bench/flamegraph.py --folded > out.folded

Debian 12 packages no flame graph tool, so this is ours: standard library
only. Each sample's stack (innermost frame first in perf script's output)
becomes one line "outer;...;inner count"; the SVG draws every frame as a
box whose width is its share of the samples, callers below callees, with
the frame's name, samples and share in a tooltip (<title>). Boxes
narrower than --min-width pixels are left out (their samples still count
in their callers). --grep NAME prints, instead, the share of samples
whose stack holds a frame matching NAME (a quick check such as "no
memmove under the produce path").
"""
import argparse
import collections
import html
import re
import sys


def fold(lines, comm=None):
    """Yield (stack tuple outer->inner) per sample of a perf script stream."""
    stack = []
    header = None
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if header is not None and stack:
                yield header, tuple(reversed(stack))
            header, stack = None, []
            continue
        if header is None:
            header = line.split()[0] if line.split() else ""
            continue
        parts = line.strip().split(None, 1)
        if len(parts) < 2:
            continue
        sym = parts[1]
        # "func+0x1f (/path/lib.so)" -> "func"; unknown frames keep the DSO
        m = re.match(r"(.*?)(\+0x[0-9a-f]+)? \((.*)\)$", sym)
        if m:
            name, dso = m.group(1), m.group(3)
            if name == "[unknown]":
                name = "[%s]" % dso.rsplit("/", 1)[-1]
        else:
            name = sym
        stack.append(name)
    if header is not None and stack:
        yield header, tuple(reversed(stack))


def color(name):
    h = 0
    for ch in name:
        h = (h * 31 + ord(ch)) & 0xFFFFFF
    if name.startswith(("[k]", "__x64", "entry_SYSCALL", "do_syscall")) or "kernel" in name:
        return "rgb(%d,%d,%d)" % (200 + h % 50, 120 + (h >> 8) % 60, 40)
    return "rgb(%d,%d,%d)" % (220 + h % 35, 60 + (h >> 8) % 120, 30 + (h >> 16) % 40)


def svg(counts, title, width, min_width):
    total = sum(counts.values())
    tree = {}
    for stack, n in counts.items():
        node = tree
        for f in stack:
            node = node.setdefault(f, [0, {}])
            node[0] += n
            node = node[1]
    depth = max((len(s) for s in counts), default=0)
    row = 16
    height = (depth + 3) * row + 10
    out = ['<?xml version="1.0" standalone="no"?>',
           '<svg version="1.1" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg" '
           'font-family="monospace" font-size="11">' % (width, height),
           '<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f0"/>' % (width, height),
           '<text x="%d" y="16" text-anchor="middle" font-size="14">%s (%d samples)</text>'
           % (width // 2, html.escape(title), total)]
    scale = (width - 20) / max(total, 1)

    def draw(node, x, level):
        for name, (n, kids) in sorted(node.items()):
            w = n * scale
            if w < min_width:
                x += w
                continue
            y = height - (level + 1) * row - 4
            label = html.escape(name)
            out.append('<g><title>%s: %d samples (%.2f%%)</title>'
                       '<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" rx="2"/>'
                       % (label, n, 100.0 * n / total, x, y, w, row - 1, color(name)))
            chars = int(w / 6.6)
            if chars >= 3:
                text = name if len(name) <= chars else name[:chars - 2] + ".."
                out.append('<text x="%.1f" y="%d">%s</text>' % (x + 2, y + row - 4,
                                                               html.escape(text)))
            out.append('</g>')
            draw(kids, x, level + 1)
            x += w

    draw(tree, 10, 0)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--title", default="flame graph")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--min-width", type=float, default=0.3)
    ap.add_argument("--comm", help="only samples of this command (perf script's first column)")
    ap.add_argument("--folded", action="store_true", help="print folded stacks, no SVG")
    ap.add_argument("--grep", action="append", default=[],
                    help="print the share of samples whose stack has a frame matching this regex")
    args = ap.parse_args()
    counts = collections.Counter()
    for comm, stack in fold(sys.stdin):
        if args.comm and comm != args.comm:
            continue
        counts[stack] += 1
    if args.grep:
        total = sum(counts.values())
        for pat in args.grep:
            r = re.compile(pat)
            n = sum(c for s, c in counts.items() if any(r.search(f) for f in s))
            print("%-40s %6d of %d samples (%.2f%%)" % (pat, n, total, 100.0 * n / max(total, 1)))
        return
    if args.folded:
        for stack, n in sorted(counts.items()):
            print("%s %d" % (";".join(stack), n))
        return
    sys.stdout.write(svg(counts, args.title, args.width, args.min_width))


if __name__ == "__main__":
    main()
