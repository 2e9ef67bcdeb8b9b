"""test_startup.py — what `sluice serve` says when it cannot start: a store
folder or data dir it cannot write, a metadata store it cannot open or
write (each one line naming the path or the URL, exit status 1, where
before some started and failed every produce); a data dir that does not
exist yet (created); hostnames in --listen and --advertise; --help
listing every store and metadata URL form; and the frame pool written in
advance at start (--buffer-pretouch-bytes).

The tests run as root, for whom every folder is writable: the read-only
cases run the agent as nobody (runuser) in a world-readable folder."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from confluent_kafka.admin import AdminClient

import kproto
import util
from conftest import Broker, SLUICE_BIN, _require_binary


def serve(args, cwd=None, user=None, timeout=20):
    """Runs sluice serve expecting it to stop by itself; returns (status,
    stderr lines)."""
    cmd = [SLUICE_BIN, "serve", "--listen", "127.0.0.1:%d" % util.free_port()] + args
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    r = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=cwd)
    return r.returncode, r.stderr.decode().splitlines()


def one_error(status, lines):
    assert status == 1, "exit %d:\n%s" % (status, "\n".join(lines))
    assert len(lines) == 1 and " ERROR " in lines[0], \
        "want one error line:\n%s" % "\n".join(lines)
    return lines[0]


@pytest.fixture
def shared_dir():
    """A folder nobody can enter (tmp_path is root's, mode 0700)."""
    _require_binary()
    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root and runuser to run the agent as nobody")
    d = tempfile.mkdtemp(prefix="sluice-startup-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_store_folder_not_writable(shared_dir):
    """A file store in a folder the agent may read but not write."""
    ro = os.path.join(shared_dir, "ro")
    os.makedirs(os.path.join(ro, "objects"))
    data = os.path.join(shared_dir, "data")
    os.mkdir(data)
    os.chmod(data, 0o777)
    line = one_error(*serve(["--data", data, "--store", "file:" + ro], user="nobody"))
    assert ro in line and "Permission denied" in line, line


def test_data_dir_not_writable(shared_dir):
    """The default store and metadata store in a read-only data dir."""
    data = os.path.join(shared_dir, "data")
    os.mkdir(data)
    line = one_error(*serve(["--data", data], user="nobody"))
    assert data in line and "Permission denied" in line, line


def test_meta_file_not_writable(shared_dir):
    """An existing meta.db the agent may not write (its folder it may):
    SQLite would open it read-only without a word."""
    data = os.path.join(shared_dir, "data")
    b = Broker(data)
    b.start()
    b.stop()
    for root, dirs, files in os.walk(data):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o777)
    os.chmod(data, 0o777)
    os.chmod(os.path.join(data, "meta.db.lock"), 0o666)
    os.chmod(os.path.join(data, "meta.db"), 0o644)
    line = one_error(*serve(["--data", data], user="nobody"))
    assert os.path.join(data, "meta.db") + " is not writable" in line, line


def test_data_dir_is_a_file(tmp_path):
    _require_binary()
    f = tmp_path / "file"
    f.write_text("not a folder")
    line = one_error(*serve(["--data", str(f)]))
    assert str(f) in line and "Not a directory" in line, line
    line = one_error(*serve(["--data", str(tmp_path / "d"), "--meta",
                             "sqlite:%s/meta.db" % f]))
    assert str(f) in line and "Not a directory" in line, line


def test_meta_url_errors(tmp_path):
    _require_binary()
    data = str(tmp_path / "d")
    line = one_error(*serve(["--data", data, "--meta", "mysql://u:secret@h/db"]))
    assert "mysql://u:***@h/db" in line and "secret" not in line, line
    port = util.free_port()
    url = "postgresql://sluice:secret@127.0.0.1:%d/sluice" % port
    line = one_error(*serve(["--data", data, "--meta", url]))
    assert "postgresql://sluice@127.0.0.1:%d/sluice" % port in line, line
    assert "secret" not in line, line


def test_data_dir_created(tmp_path):
    """A data dir that does not exist yet is made, with its parents."""
    _require_binary()
    data = tmp_path / "a" / "b" / "data"
    b = Broker(data)
    os.rmdir(str(data))  # Broker made it; the agent must
    b.start()
    try:
        assert (data / "meta.db").is_file() and (data / "objects").is_dir()
    finally:
        b.teardown()


def test_hostnames(tmp_path):
    """--listen and --advertise take hostnames: the listener binds what
    localhost resolves to and Metadata advertises the name."""
    _require_binary()
    port = util.free_port()
    b = Broker(tmp_path / "data", ["--advertise", "localhost:%d" % port])
    b.port = port
    b.bootstrap = "localhost:%d" % port
    b.args = lambda: [SLUICE_BIN, "serve", "--listen", "localhost:%d" % port,
                      "--advertise", "localhost:%d" % port, "--data", b.data_dir]
    b.start()
    try:
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        assert [(x.host, x.port) for x in md.brokers.values()] == [("localhost", port)]
        util.create_topic(b.bootstrap, util.topic_name("host"), 1)
    finally:
        util.forget_admin(b.bootstrap)
        b.teardown()


def test_help_lists_urls():
    _require_binary()
    r = subprocess.run([SLUICE_BIN, "serve", "--help"], capture_output=True)
    out = r.stdout.decode()
    assert r.returncode == 0
    for form in ("file:PATH", "mem:", "s3://BUCKET[/PREFIX]", "endpoint=", "region=",
                 "path_style=", "verify_tls=", "timeout_ms=", "total_timeout_ms=",
                 "AWS_ACCESS_KEY_ID", "sqlite:PATH", "postgresql://", "postgres://",
                 "PGPASSWORD"):
        assert form in out, form


def test_port_taken(tmp_path):
    """A Kafka port another process listens on: exit 1 with one error line
    naming it (the registry and leases had started: their work is stopped
    and run out before the agent is freed, not crashed under)."""
    _require_binary()
    first = Broker(tmp_path / "first")
    first.start()
    try:
        for _ in range(3):
            r = subprocess.run([SLUICE_BIN, "serve", "--data", str(tmp_path / "second"),
                                "--listen", "127.0.0.1:%d" % first.port],
                               capture_output=True, timeout=20)
            lines = r.stderr.decode().splitlines()
            assert r.returncode == 1, "exit %d:\n%s" % (r.returncode, "\n".join(lines))
            errors = [l for l in lines if " ERROR " in l]
            assert len(errors) == 1 and "127.0.0.1:%d" % first.port in errors[0] \
                and "address already in use" in errors[0], "\n".join(lines)
    finally:
        first.teardown()


def test_buffer_pretouch(broker_factory):
    """By default the agent writes 64 MiB of 1 MiB frame buffers while it
    starts (a first produce load would otherwise pay for fresh memory on
    the loop): its resident memory holds them while idle, and the blocks
    then carry produce frames; 0 (the other tests' brokers, conftest.py)
    writes none, and more than the pool keeps is refused."""
    off = broker_factory(["--buffer-pretouch-bytes", "0"])
    on = broker_factory(env={"SLUICE_BUFFER_PRETOUCH_BYTES": None})
    topic = util.create_topic(on.bootstrap, util.topic_name("pretouch"), 1)
    deadline = time.monotonic() + 60
    while on.rss_kb() < 64 * 1024 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert on.rss_kb() >= 64 * 1024, "RSS %d kB" % on.rss_kb()
    assert off.rss_kb() < on.rss_kb() - 48 * 1024, (off.rss_kb(), on.rss_kb())
    s = kproto.connect(on.bootstrap)
    big = kproto.record_batch([(b"k%d" % i, bytes([i]) * 100000, ()) for i in range(9)])
    for i in range(3):
        assert kproto.produce_v3(s, {topic: {0: big}})[(topic, 0)] == (0, 9 * i)
    s.close()
    r = subprocess.run([SLUICE_BIN, "serve", "--listen", "127.0.0.1:%d" % util.free_port(),
                        "--data", str(on.data_dir) + "-x",
                        "--buffer-pretouch-bytes", str(64 * 1024 * 1024 + 1)],
                       capture_output=True, timeout=20)
    assert r.returncode != 0 and b"--buffer-pretouch-bytes" in r.stderr, r
