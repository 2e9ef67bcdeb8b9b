"""test_install.py — `make install` into a temporary PREFIX (and under a
DESTDIR) puts `sluice` on PATH, the README's first commands (the sh block
of "Using it", kcat against a running agent) work as printed with that
`sluice`, `make uninstall` removes it, and docs/sluice.service passes
`systemd-analyze verify` pointed at the installed binary. Builds nothing:
the build dir of SLUICE_BIN is already built."""
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import SLUICE_BIN
from util import free_port

SOURCE = os.environ.get("SLUICE_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")


def make(*args):
    r = subprocess.run(["make", "--no-print-directory", "-C", SOURCE,
                        "BUILD=%s" % os.path.dirname(os.path.abspath(SLUICE_BIN))] + list(args),
                       capture_output=True, timeout=600)
    assert r.returncode == 0, "make %s: %s%s" % (" ".join(args), r.stdout.decode(), r.stderr.decode())


def readme_first_commands():
    """The sh block under README's "## Using it"."""
    with open(os.path.join(SOURCE, "README.md")) as f:
        text = f.read()
    section = text[text.index("## Using it"):]
    m = re.search(r"```sh\n(.*?)```", section, re.S)
    assert m, "no sh block under Using it"
    return m.group(1)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if not os.path.isfile(SLUICE_BIN):
        pytest.skip("no sluice binary at %s" % SLUICE_BIN)
    prefix = tmp_path_factory.mktemp("install") / "prefix"
    make("install", "PREFIX=%s" % prefix)
    return prefix


def test_readme_commands_run_from_the_install(installed, tmp_path):
    env = dict(os.environ, PATH="%s:%s" % (installed / "bin", os.environ["PATH"]))
    port = free_port()
    data = tmp_path / "data"
    log = open(tmp_path / "sluice.log", "wb")
    # As `make run` starts it, on a free port instead of 9092.
    agent = subprocess.Popen(["sluice", "serve", "--data", str(data),
                              "--listen", "127.0.0.1:%d" % port],
                             env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        import socket
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and agent.poll() is None, "agent did not start"
                time.sleep(0.05)
        script = readme_first_commands().replace("127.0.0.1:9092", "127.0.0.1:%d" % port)
        r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], env=env,
                           capture_output=True, timeout=60, cwd=str(tmp_path))
        out = r.stdout.decode()
        assert r.returncode == 0, "README commands failed:\n%s\n%s" % (out, r.stderr.decode())
        # Produced, read back in order, and listed.
        assert "one\ntwo\nthree\n" in out, out
        assert 'topic "demo"' in out, out
    finally:
        agent.terminate()
        assert agent.wait(15) == 0
        log.close()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_systemd_unit_verifies(installed, tmp_path):
    with open(os.path.join(SOURCE, "docs", "sluice.service")) as f:
        unit = f.read()
    assert "ExecStart=/usr/local/bin/sluice serve" in unit
    path = tmp_path / "sluice.service"
    path.write_text(unit.replace("/usr/local/bin/sluice", str(installed / "bin" / "sluice")))
    r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()


# Last: it uninstalls the module's install.
def test_install_uninstall_destdir(installed, tmp_path):
    exe = installed / "bin" / "sluice"
    assert os.access(exe, os.X_OK)
    env = dict(os.environ, PATH="%s:%s" % (installed / "bin", os.environ["PATH"]))
    r = subprocess.run(["sluice", "version"], env=env, capture_output=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith(b"sluice "), r
    assert shutil.which("sluice", path=env["PATH"]) == str(exe)
    make("uninstall", "PREFIX=%s" % installed)
    assert not exe.exists()
    dest = tmp_path / "dest"
    make("install", "DESTDIR=%s" % dest, "PREFIX=/opt/sluice")
    assert os.access(dest / "opt" / "sluice" / "bin" / "sluice", os.X_OK)
