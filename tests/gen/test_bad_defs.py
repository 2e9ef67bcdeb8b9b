#!/usr/bin/python3
"""test_bad_defs.py GEN_PROTO — the codec generator's error paths.

Runs tools/gen_proto.py on small .def files that are wrong in one way
each and checks that it exits 1 with `file:line: message` on stderr (the
line of the mistake, a message naming it, no Python traceback) and writes
no output. One good file checks the harness itself. A ctest entry
(gen/bad-defs); standard library only.
"""
import os
import subprocess
import sys
import tempfile

GOOD = """\
api Ping key=60 versions=0-1 flexible=1+
request
  name                     string
response
  error_code               int16
"""

# (what is wrong, .def text, line of the mistake, words the message must hold)
CASES = [
    ("unknown type", """\
api Ping key=60 versions=0-1 flexible=1+
request
  name                     strang
response
  error_code               int16
""", 3, "unknown type 'strang'"),
    ("unknown array element type", """\
api Ping key=60 versions=0-1 flexible=1+
request
  names                    []strang
response
  error_code               int16
""", 3, "unknown element type"),
    ("api without a version range", """\
api Ping key=60 flexible=1+
request
  name                     string
response
  error_code               int16
""", 1, "needs key=, versions= and flexible="),
    ("api version range without an upper bound", """\
api Ping key=60 versions=0+ flexible=1+
request
  name                     string
response
  error_code               int16
""", 1, "need an upper bound"),
    ("field with a malformed version range", """\
api Ping key=60 versions=0-1 flexible=1+
request
  name                     string     x-1
response
  error_code               int16
""", 3, "bad version range"),
    ("field with an empty version range", """\
api Ping key=60 versions=0-3 flexible=1+
request
  name                     string     3-1
response
  error_code               int16
""", 3, "empty version range"),
    ("duplicate field", """\
api Ping key=60 versions=0-1 flexible=1+
request
  name                     string
  name                     int32
response
  error_code               int16
""", 4, "field 'name' defined twice"),
    ("duplicate section", """\
api Ping key=60 versions=0-1 flexible=1+
request
  name                     string
request
  other                    string
response
  error_code               int16
""", 4, "second 'request' section"),
    ("missing response section", """\
api Ping key=60 versions=0-1 flexible=1+
request
  name                     string
""", 1, "needs a request and a response"),
    ("unknown directive", """\
api Ping key=60 versions=0-1 flexible=1+
requests
  name                     string
response
  error_code               int16
""", 2, "unknown directive 'requests'"),
    ("field before any section", """\
  name                     string
api Ping key=60 versions=0-1 flexible=1+
""", 1, "field outside request, response or struct"),
    ("field name not snake_case", """\
api Ping key=60 versions=0-1 flexible=1+
request
  groupName                string
response
  error_code               int16
""", 3, "not snake_case"),
    ("field name is a C keyword", """\
api Ping key=60 versions=0-1 flexible=1+
request
  default                  string
response
  error_code               int16
""", 3, "C keyword"),
    ("unknown field attribute", """\
api Ping key=60 versions=0-1 flexible=1+
request
  name                     string     colour=red
response
  error_code               int16
""", 3, "unknown attribute 'colour'"),
    ("integer default out of range", """\
api Ping key=60 versions=0-1 flexible=1+
request
  small                    int8       default=300
response
  error_code               int16
""", 3, "out of range for int8"),
    ("tagged field before the first flexible version", """\
api Ping key=60 versions=0-1 flexible=1+
request
  name                     string     tag=0
response
  error_code               int16
""", 3, "first flexible version"),
    ("inconsistent indentation", """\
api Ping key=60 versions=0-1 flexible=1+
request
  items                    []Item
    a                      int32
   b                       int32
response
  error_code               int16
""", 5, "inconsistent indentation"),
    ("unknown struct", """\
api Ping key=60 versions=0-1 flexible=1+
request
  item                     Missing
response
  error_code               int16
""", 3, "Missing"),
    ("api key used twice", GOOD + """\
api Pong key=60 versions=0-1 flexible=1+
request
  name                     string
response
  error_code               int16
""", 6, "api key 60 already used"),
]


def run(gen, text, tmp):
    path = os.path.join(tmp, "case.def")
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.unlink(os.path.join(out, f))
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([sys.executable, gen, "-o", out, path],
                       capture_output=True, text=True)
    return path, p, os.listdir(out)


def main():
    gen = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        path, p, made = run(gen, GOOD, tmp)
        if p.returncode != 0 or sorted(made) != ["kmsg.c", "kmsg.h"]:
            print("FAIL good .def: exit %d, made %s\n%s" % (p.returncode, made, p.stderr))
            failures += 1
        for what, text, line, words in CASES:
            path, p, made = run(gen, text, tmp)
            err = p.stderr.strip()
            want = "%s:%d: " % (path, line)
            problems = []
            if p.returncode != 1:
                problems.append("exit status %d, want 1" % p.returncode)
            if "Traceback" in err:
                problems.append("a Python traceback instead of a message")
            if not err.startswith(want):
                problems.append("message does not start with %r" % want)
            if words not in err:
                problems.append("message does not say %r" % words)
            if made:
                problems.append("wrote %s" % made)
            if problems:
                failures += 1
                print("FAIL %s: %s\n  stderr: %s" % (what, "; ".join(problems), err))
            else:
                print("ok   %s: %s" % (what, err.split(": ", 1)[1]))
    print("%d of %d cases failed" % (failures, len(CASES) + 1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
