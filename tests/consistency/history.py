"""history.py — the recorded history of a consistency run: one JSON object
per line, appended by many threads under one lock, flushed per event so a
run that dies still leaves what happened. Times are seconds on
time.monotonic() since the run began (one clock for every thread, so the
checker can order a poll against a commit). The event schema is in
README.md; checker.py reads it."""
import json
import threading
import time


class History:
    def __init__(self, path):
        self.path = path
        self.t_start = time.monotonic()
        self._lock = threading.Lock()
        self._f = open(path, "w")
        self.count = 0

    def now(self):
        return round(time.monotonic() - self.t_start, 6)

    def add(self, op, **fields):
        fields["op"] = op
        fields.setdefault("t", self.now())
        line = json.dumps(fields, sort_keys=True)
        with self._lock:
            self._f.write(line + "\n")
            self._f.flush()
            self.count += 1

    def close(self):
        with self._lock:
            self._f.close()
