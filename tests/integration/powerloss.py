"""powerloss.py — rebuild a folder tree as a power cut leaves it, from
what the LD_PRELOAD shim tests/integration/powerloss/powerloss.c recorded
(its file head says the model): every folder whose entries were synced
(or existed at the start) gets those entries, a synced file its synced
content, a file whose name is durable but whose content never was comes
back empty, and anything else is gone.

    env = powerloss.env(lib, root, shadow)   # for the broker's process
    powerloss.rebuild(shadow, dst)           # after its kill -9

rebuild(..., unsynced=("objects/objects",)) replays those folders as if
they had never been synced after the start (their starting entries
only): the control that shows the double loses what a missing directory
fsync would lose."""
import os
import shutil

LIB_NAME = "libsluice_powerloss.so"


def find_lib(sluice_bin):
    """The shim, built beside the broker (build/tests/)."""
    d = os.path.dirname(os.path.abspath(sluice_bin))
    for cand in (os.path.join(d, "tests", LIB_NAME), os.path.join(d, LIB_NAME)):
        if os.path.isfile(cand):
            return cand
    return None


def env(lib, root, shadow):
    return {"LD_PRELOAD": lib, "SLUICE_POWERLOSS_ROOT": os.path.abspath(root),
            "SLUICE_POWERLOSS_SHADOW": os.path.abspath(shadow)}


def _listing(shadow, sub, rel):
    name = "=" if rel == "" else rel.replace("/", "%")
    path = os.path.join(shadow, sub, name)
    if not os.path.isfile(path):
        return None
    out = []
    with open(path) as f:
        for line in f:
            kind, ino, name = line.rstrip("\n").split(" ", 2)
            out.append((kind, ino, name))
    return out


def rebuild(shadow, dst, unsynced=()):
    """Lay the durable tree out at dst (created; must not exist)."""
    os.makedirs(dst)
    stats = {"files": 0, "empty": 0, "dirs": 1}

    def walk(rel):
        sub = "dirs0" if rel in unsynced else "dirs"
        entries = _listing(shadow, sub, rel)
        if entries is None:
            return  # created, but its entries never made durable
        for kind, ino, name in entries:
            r = name if rel == "" else rel + "/" + name
            target = os.path.join(dst, r)
            if kind == "d":
                os.makedirs(target, exist_ok=True)
                stats["dirs"] += 1
                walk(r)
            elif kind == "f":
                content = os.path.join(shadow, "files", ino)
                if os.path.isfile(content):
                    shutil.copyfile(content, target)
                    stats["files"] += 1
                else:
                    open(target, "wb").close()
                    stats["empty"] += 1

    walk("")
    return stats
