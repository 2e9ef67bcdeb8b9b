#!/usr/bin/python3
"""capture-requests.py SLUICE_BIN OUTDIR — golden request bytes from real
clients, for tests/unit/test_proto.c (test_golden_captured).

Starts SLUICE_BIN on loopback behind a small TCP proxy (the broker
advertises the proxy's port, so every connection of every client goes
through it), runs the clients installed for the integration tests through
a short script each (kcat, confluent-kafka and kafka-python under
/usr/bin/python3, kafkajs from tests/integration/js), and writes the
first request of each (client, api, version) the proxy saw as
OUTDIR/<api_key>-<api name>-v<version>-<client>.hex: one comment line
naming the client and its version, then the frame without its size prefix
(request header and body) as hex, 32 bytes a line. Files already there
are kept; requests whose bytes cannot be compared with a re-encoding
(none today) would need a note in the test.

Run it by hand after a client upgrade or to cover a new api; the tests
read only the files, never the clients. Standard library and the clients.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, "..", "tests", "integration", "js")
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from ports import free_port  # noqa: E402
API_NAMES = {0: "produce", 1: "fetch", 2: "list_offsets", 3: "metadata", 8: "offset_commit",
             9: "offset_fetch", 10: "find_coordinator", 11: "join_group", 12: "heartbeat",
             13: "leave_group", 14: "sync_group", 15: "describe_groups", 16: "list_groups",
             18: "api_versions", 19: "create_topics", 20: "delete_topics",
             21: "delete_records", 22: "init_producer_id", 32: "describe_configs",
             33: "alter_configs", 37: "create_partitions", 42: "delete_groups", 44: "incremental_alter_configs",
             47: "offset_delete", 60: "describe_cluster"}

captured = {}          # (client, key, version) -> frame bytes
current = ["?"]        # the client whose script is running
lock = threading.Lock()


def pump(src, dst, record):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if not record:
                continue
            buf += data
            while len(buf) >= 4:
                n = struct.unpack(">i", buf[:4])[0]
                if len(buf) < 4 + n:
                    break
                frame, buf = buf[4:4 + n], buf[4 + n:]
                key, ver = struct.unpack(">hh", frame[:4])
                with lock:
                    captured.setdefault((current[0], key, ver), frame)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def proxy(listen_port, broker_port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen_port))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        b = socket.create_connection(("127.0.0.1", broker_port))
        threading.Thread(target=pump, args=(c, b, True), daemon=True).start()
        threading.Thread(target=pump, args=(b, c, False), daemon=True).start()


def run(cmd, **kw):
    subprocess.run(cmd, check=True, timeout=120, **kw)


def kcat_script(bs):
    run(["kcat", "-b", bs, "-L"], stdout=subprocess.DEVNULL)
    run(["kcat", "-b", bs, "-P", "-t", "golden-kcat", "-K:"], input=b"k1:v1\nk2:v2\n")
    run(["kcat", "-b", bs, "-C", "-t", "golden-kcat", "-o", "beginning", "-e", "-q"],
        stdout=subprocess.DEVNULL)


def confluent_script(bs):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    a = AdminClient({"bootstrap.servers": bs})
    for f in a.create_topics([NewTopic("golden-ck", 2, 1)]).values():
        f.result()
    for f in a.describe_configs([ConfigResource("topic", "golden-ck")]).values():
        f.result()
    for f in a.alter_configs([ConfigResource("topic", "golden-ck",
                                             set_config={"retention.ms": "86400000"})]).values():
        f.result()
    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "linger.ms": 1})
    p.produce("golden-ck", key=b"k", value=b"v", partition=0)
    p.flush(10)
    c = Consumer({"bootstrap.servers": bs, "group.id": "golden-ck-group",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["golden-ck"])
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            c.commit(m, asynchronous=False)
            break
    c.committed([TopicPartition("golden-ck", 0)], timeout=10)
    c.get_watermark_offsets(TopicPartition("golden-ck", 0), timeout=10)
    c.close()
    a.list_groups(timeout=10)
    for f in a.delete_topics(["golden-ck"]).values():
        f.result()


def kafka_python_script(bs):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic
    a = KafkaAdminClient(bootstrap_servers=bs)
    a.create_topics([NewTopic("golden-kp", 1, 1)])
    from kafka.admin import ConfigResource, ConfigResourceType
    a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "golden-kp",
                                    configs={"retention.ms": "86400000"})])
    p = KafkaProducer(bootstrap_servers=bs)
    p.send("golden-kp", key=b"k", value=b"v", partition=0).get(10)
    p.close()
    c = KafkaConsumer("golden-kp", bootstrap_servers=bs, group_id="golden-kp-group",
                      auto_offset_reset="earliest", enable_auto_commit=False)
    deadline = time.time() + 30
    got = False
    while time.time() < deadline and not got:
        for recs in c.poll(500).values():
            got = bool(recs)
    c.commit()
    c.close()
    a.describe_consumer_groups(["golden-kp-group"])
    a.list_consumer_groups()
    from kafka.admin import NewPartitions
    a.create_partitions({"golden-kp": NewPartitions(2)})
    a.delete_consumer_groups(["golden-kp-group"])
    a.close()


# Admin calls of kafkajs that its other scripts do not make.
KAFKAJS_ADMIN = """
'use strict';
const { Kafka, logLevel } = require('kafkajs');
(async () => {
  const [bootstrap, topic, group] = process.argv.slice(2);
  const admin = new Kafka({ clientId: 'golden', brokers: [bootstrap],
                            logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.describeCluster();
  await admin.fetchTopicMetadata({ topics: [topic] });
  await admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] });
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '1' }] });
  await admin.deleteGroups([group]);
  await admin.disconnect();
})().catch((e) => { console.error(e); process.exit(1); });
"""


def kafkajs_script(bs):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as f:
        f.write('{"k": "k", "v": "76", "ts": 1700000000000, "p": 0}\n')
        f.flush()
        run(["node", os.path.join(JS_DIR, "produce.js"), bs, "golden-js", f.name],
            stdout=subprocess.DEVNULL)
    run(["node", os.path.join(JS_DIR, "group_consume.js"), bs, "golden-js",
         "golden-js-group", "1", "1"], stdout=subprocess.DEVNULL)
    # Run from JS_DIR so require() finds its node_modules.
    with tempfile.NamedTemporaryFile("w", suffix=".js", dir=JS_DIR) as f:
        f.write(KAFKAJS_ADMIN)
        f.flush()
        run(["node", f.name, bs, "golden-js", "golden-js-group"], stdout=subprocess.DEVNULL,
            cwd=JS_DIR)


def versions():
    import confluent_kafka
    import kafka
    kcat = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    kcat = [l for l in kcat.splitlines() if l.startswith("Version")][0].split(" (")[0]
    with open(os.path.join(JS_DIR, "node_modules", "kafkajs", "package.json")) as f:
        js = [l for l in f if '"version"' in l][0].split('"')[3]
    return {"kcat": "kcat %s (librdkafka %s)" % (kcat.split()[1], confluent_kafka.libversion()[0]),
            "confluent": "confluent-kafka %s (librdkafka %s)" % (
                confluent_kafka.version()[0], confluent_kafka.libversion()[0]),
            "kafkapython": "kafka-python %s" % kafka.__version__,
            "kafkajs": "kafkajs %s" % js}


def main():
    sluice, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    data = tempfile.mkdtemp(prefix="sluice-capture-")
    bport, pport = free_port(), free_port()
    bs = "127.0.0.1:%d" % pport
    threading.Thread(target=proxy, args=(pport, bport), daemon=True).start()
    broker = subprocess.Popen([sluice, "serve", "--listen", "127.0.0.1:%d" % bport,
                               "--advertise", bs, "--data", data],
                              stderr=open(os.path.join(data, "stderr.log"), "wb"))
    try:
        time.sleep(0.5)
        # The topic kcat and kafkajs use, made outside any capture.
        current[0] = "setup"
        run(["kcat", "-b", bs, "-L"], stdout=subprocess.DEVNULL)
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({"bootstrap.servers": bs})
        for f in a.create_topics([NewTopic(t, 1, 1)
                                  for t in ("golden-kcat", "golden-js")]).values():
            f.result()
        del a
        for name, script in (("kcat", kcat_script), ("confluent", confluent_script),
                             ("kafkapython", kafka_python_script), ("kafkajs", kafkajs_script)):
            time.sleep(0.5)
            with lock:
                current[0] = name
            script(bs)
        time.sleep(0.5)
    finally:
        broker.terminate()
        broker.wait()
        shutil.rmtree(data, ignore_errors=True)
    names = versions()
    wrote = 0
    for (client, key, ver), frame in sorted(captured.items()):
        if client not in names:
            continue
        path = os.path.join(out, "%02d-%s-v%d-%s.hex" % (key, API_NAMES.get(key, "api%d" % key),
                                                           ver, client))
        if os.path.exists(path):
            continue
        with open(path, "w") as f:
            f.write("# %s, captured by tools/capture-requests.py\n" % names[client])
            for i in range(0, len(frame), 32):
                f.write(frame[i:i + 32].hex() + "\n")
        wrote += 1
    print("%d requests captured, %d new files in %s" % (len(captured), wrote, out))


if __name__ == "__main__":
    main()
