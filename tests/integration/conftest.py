"""conftest.py — starts and stops real Sluice brokers for the integration tests.

Owns the Broker handle (start, restart, SIGTERM stop, kill -9, RSS), the
fixtures that hand brokers to tests (a module-scoped one for read-mostly
tests and a factory for tests that restart or kill), and the report hook
that appends the tail of every live broker's stderr to a failing test.

Against a sanitized build (build-asan, tests/README.md) a sanitizer report
in any of a broker's logs fails the test at teardown, whatever the test
did with the broker: ctest's ASAN_OPTIONS/UBSAN_OPTIONS make the first
report stop the broker, which a test that only watches its clients could
take for an ordinary disconnect.
"""
import os
import signal
import socket
import subprocess
import time

import pytest

from util import forget_admin, free_port

SLUICE_BIN = os.environ.get("SLUICE_BIN") or os.path.join(
    os.environ.get("SLUICE_SOURCE_DIR",
                   os.path.join(os.path.dirname(__file__), "..", "..")),
    "build", "sluice")

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0

# Brokers started by the current module/test, newest last; the report hook
# prints their logs when a test fails.
_live_brokers = []


def log_tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "<no log: %s>" % e
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


class Broker:
    """One sluice process on a loopback port with its own data dir."""

    def __init__(self, data_dir, extra_args=(), port=None, env=None):
        self.data_dir = str(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.bootstrap = "%s:%d" % (self.host, self.port)
        self.extra_args = list(extra_args)
        self.env = env
        self.proc = None
        self.starts = 0
        self.stderr = None
        self.logs = []        # every start's stderr, for sanitizer_errors
        self._log = None

    def args(self):
        return [SLUICE_BIN, "serve", "--listen", self.bootstrap,
                "--data", self.data_dir] + self.extra_args

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        # One log per start, beside the data dir, kept after the test.
        self.stderr = os.path.join(os.path.dirname(self.data_dir.rstrip("/")),
                                   "%s.stderr.%d.log" % (
                                       os.path.basename(self.data_dir.rstrip("/")),
                                       self.starts))
        self._log = open(self.stderr, "wb")
        self.logs.append(self.stderr)
        env = dict(os.environ)
        # The 64 MiB of frame buffers a broker writes while it starts
        # (~0.2 s) are skipped unless a test asks (None: the default).
        env.setdefault("SLUICE_BUFFER_PRETOUCH_BYTES", "0")
        for k, v in (self.env or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     env=env)
        if self not in _live_brokers:
            _live_brokers.append(self)
        self.wait_ready()
        return self

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail("sluice exited with status %d before accepting "
                            "connections; args %s\nstderr:\n%s" % (
                                rc, self.args(), log_tail(self.stderr)))
            try:
                with socket.create_connection((self.host, self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.kill9()
        pytest.fail("sluice did not accept connections on %s within %.0f s; "
                    "stderr:\n%s" % (self.bootstrap, READY_TIMEOUT_S,
                                     log_tail(self.stderr)))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def sanitizer_errors(self):
        """The first ASan/LSan/UBSan report in any start's log, or None."""
        for path in self.logs:
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                           "runtime error:"):
                at = text.find(marker)
                if at >= 0:
                    return "%s:\n%s" % (path, text[max(0, at - 2000):at + 8000])
        return None

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM, wait, and assert a clean exit (status 0)."""
        assert self.running(), "broker is not running"
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._close_log()
            pytest.fail("sluice did not exit within %.0f s of SIGTERM; "
                        "stderr:\n%s" % (timeout, log_tail(self.stderr)))
        self._close_log()
        assert rc == 0, "sluice exited with status %d after SIGTERM; " \
            "stderr:\n%s" % (rc, log_tail(self.stderr))
        bad = self.sanitizer_errors()
        assert bad is None, "sanitizer report in sluice stderr:\n" + bad

    def kill9(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close_log()

    def restart(self, clean=True):
        """Stop (SIGTERM, or kill -9 when clean is False) and start again on
        the same port and data dir."""
        if self.running():
            if clean:
                self.stop()
            else:
                self.kill9()
        return self.start()

    def status_kb(self, field):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError("no %s for pid %d" % (field, self.proc.pid))

    def rss_kb(self):
        return self.status_kb("VmRSS")

    def vm_peak_kb(self):
        return self.status_kb("VmPeak")

    def teardown(self):
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()
        forget_admin(self.bootstrap)
        if self in _live_brokers:
            _live_brokers.remove(self)
        bad = self.sanitizer_errors()
        assert bad is None, "sanitizer report in sluice stderr:\n" + bad

    def __repr__(self):
        return "<Broker %s data=%s>" % (self.bootstrap, self.data_dir)


def _require_binary():
    if not os.path.isfile(SLUICE_BIN) or not os.access(SLUICE_BIN, os.X_OK):
        pytest.skip("sluice binary not found at %s (set SLUICE_BIN or build "
                    "with `make build`)" % SLUICE_BIN)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker shared by the read-mostly tests of one module."""
    _require_binary()
    b = Broker(tmp_path_factory.mktemp("broker") / "data")
    b.start()
    yield b
    b.teardown()


@pytest.fixture
def broker_factory(tmp_path):
    """make(extra_args=(), **kw) -> a started broker of this test alone."""
    _require_binary()
    made = []

    def make(extra_args=(), name=None, **kw):
        d = tmp_path / (name or "data%d" % len(made))
        b = Broker(d, extra_args, **kw)
        made.append(b)
        return b.start()

    yield make
    # Every broker is stopped even when an earlier one had a report.
    reports = []
    for b in made:
        try:
            b.teardown()
        except AssertionError as e:
            reports.append(str(e))
    assert not reports, "\n".join(reports)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in list(_live_brokers):
            if b.stderr:
                rep.sections.append(("sluice %s stderr (tail of %s)" % (
                    b.bootstrap, b.stderr), log_tail(b.stderr)))
