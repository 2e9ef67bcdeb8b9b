"""TxnOffsetCommit v3's member information (KIP-447), raw: a transactional
offset commit naming a member of a group is checked as Kafka 3.9's group
coordinator checks it (GroupCoordinator.handleTxnCommitOffsets →
validateOffsetCommit with isTransactional): the instance id first
(FENCED_INSTANCE_ID when it belongs to another member id), then the
member (UNKNOWN_MEMBER_ID), then the generation (ILLEGAL_GENERATION); an
unknown group is created Empty and checked alike; a commit without member
information is let in whatever the group's state, one with generation -1
into an Empty group whatever its member id, and a member's into a group
completing its rebalance. A refused partition
leaves no offset behind at the transaction's commit; an accepted one
becomes the group's offset."""
from confluent_kafka import Consumer, TopicPartition

import kproto
import util

NONE = 0
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
FENCED_INSTANCE_ID = 82


def _v0(sock, key, version, body):
    r = kproto.Reader(kproto.roundtrip(sock, key, version, body))
    r.i32()  # throttle
    return r


def join_static(sock, group, instance, member=""):
    """JoinGroup v5 of a static member: (error, generation, member id)."""
    body = (kproto.string(group) + kproto.i32(30000) + kproto.i32(30000) +
            kproto.string(member) + kproto.string(instance) + kproto.string("consumer") +
            kproto.array([kproto.string("range") + kproto.bytes_(b"")]))
    r = _v0(sock, 11, 5, body)
    err, generation = r.i16(), r.i32()
    r.string()  # protocol
    r.string()  # leader
    return err, generation, r.string()


def sync(sock, group, generation, member, instance):
    """SyncGroup v3 of the leader giving itself nothing: the error."""
    body = (kproto.string(group) + kproto.i32(generation) + kproto.string(member) +
            kproto.string(instance) +
            kproto.array([kproto.string(member) + kproto.bytes_(b"")]))
    return _v0(sock, 14, 3, body).i16()


def init_producer_id(sock, txn_id):
    r = _v0(sock, 22, 1, kproto.string(txn_id) + kproto.i32(60000))
    err, pid, epoch = r.i16(), r.i64(), r.i16()
    assert err == NONE, err
    return pid, epoch


def add_offsets(sock, txn_id, pid, epoch, group):
    body = kproto.string(txn_id) + kproto.i64(pid) + kproto.i16(epoch) + kproto.string(group)
    return _v0(sock, 25, 1, body).i16()


def end_txn(sock, txn_id, pid, epoch, commit):
    body = kproto.string(txn_id) + kproto.i64(pid) + kproto.i16(epoch) + kproto.i8(int(commit))
    return _v0(sock, 26, 1, body).i16()


def txn_offset_commit_v3(sock, txn_id, pid, epoch, group, generation, member, instance,
                         topic, partition, offset):
    """TxnOffsetCommit v3 (flexible) of one partition: its error."""
    cstr = kproto.compact_string
    body = (cstr(txn_id) + cstr(group) + kproto.i64(pid) + kproto.i16(epoch) +
            kproto.i32(generation) + cstr(member) +
            (b"\x00" if instance is None else cstr(instance)) +
            kproto.compact_array([cstr(topic) + kproto.compact_array(
                [kproto.i32(partition) + kproto.i64(offset) + kproto.i32(-1) + b"\x00" +
                 kproto.NO_TAGS]) + kproto.NO_TAGS]) + kproto.NO_TAGS)
    sock.sendall(kproto.request_v2(28, 3, 71, body))
    cid, data = kproto.recv_response(sock)
    assert cid == 71
    r = kproto.FlexReader(data)
    r.tags()
    r.i32()  # throttle
    errors = []

    def part():
        r.i32()
        errors.append(r.i16())
        r.tags()

    def top():
        r.cstring()
        r.carray(part)
        r.tags()
    r.carray(top)
    r.tags()
    assert r.done() and len(errors) == 1, errors
    return errors[0]


def committed(bootstrap, group, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        return [tp.offset for tp in c.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10)]
    finally:
        c.close()


def test_member_information_checked(broker_factory):
    b = broker_factory(extra_args=["--group-initial-rebalance-delay-ms", "0"])
    topic = util.create_topic(b.bootstrap, util.topic_name("txoc"), 4)
    group = util.topic_name("txoc-g")
    fresh = util.topic_name("txoc-new")      # never joined
    joining = util.topic_name("txoc-join")   # joined, not synced
    tid = util.topic_name("txoc-tid")
    s = kproto.connect(b.bootstrap)
    m = kproto.connect(b.bootstrap)
    err, gen, member = join_static(m, group, "i1")
    assert err == NONE and gen >= 1 and member
    assert sync(m, group, gen, member, "i1") == NONE
    err, jgen, jmember = join_static(m, joining, "j1")
    assert err == NONE
    pid, epoch = init_producer_id(s, tid)
    for g in (group, fresh, joining):
        assert add_offsets(s, tid, pid, epoch, g) == NONE

    def commit(g, generation, member_id, instance, partition, offset=7):
        return txn_offset_commit_v3(s, tid, pid, epoch, g, generation, member_id,
                                    instance, topic, partition, offset)

    # The current member: accepted (partition 0 at 10).
    assert commit(group, gen, member, "i1", 0, 10) == NONE
    # A stale or future generation of the current member.
    assert commit(group, gen - 1, member, "i1", 1) == ILLEGAL_GENERATION
    assert commit(group, gen + 1, member, None, 1) == ILLEGAL_GENERATION
    # A member id the group does not have, dynamic or static.
    assert commit(group, gen, "nobody", None, 1) == UNKNOWN_MEMBER_ID
    assert commit(group, gen, "nobody", "i2", 1) == UNKNOWN_MEMBER_ID
    assert commit(group, -1, "nobody", None, 1) == UNKNOWN_MEMBER_ID
    # The instance belongs to another member id (a zombie of i1), whatever
    # the generation: fenced before anything else is looked at.
    assert commit(group, gen, "old-" + member, "i1", 1) == FENCED_INSTANCE_ID
    assert commit(group, gen - 1, "old-" + member, "i1", 1) == FENCED_INSTANCE_ID
    # No member information: let in though the group has a member
    # (partition 2 at 20), as Kafka exempts transactional commits.
    assert commit(group, -1, "", None, 2, 20) == NONE
    # A group that does not exist is created Empty: it has no member (a
    # plain OffsetCommit's answer would be ILLEGAL_GENERATION), and
    # generation -1 is let in whatever the member id says, as a plain
    # commit into an Empty group (partition 1 at 40).
    assert commit(fresh, 1, "ghost", None, 0) == UNKNOWN_MEMBER_ID
    assert commit(fresh, -1, "ghost", "i9", 1, 40) == NONE
    # A group completing its rebalance: its member's commit is let in
    # (Kafka's REBALANCE_IN_PROGRESS is for plain OffsetCommit only).
    assert commit(joining, jgen, jmember, "j1", 3, 30) == NONE
    assert end_txn(s, tid, pid, epoch, True) == NONE
    s.close()
    m.close()
    # What the commit made visible: the accepted offsets only.
    assert committed(b.bootstrap, group, topic, 4) == [10, -1001, 20, -1001]
    assert committed(b.bootstrap, fresh, topic, 4) == [-1001, 40, -1001, -1001]
    assert committed(b.bootstrap, joining, topic, 4) == [-1001, -1001, -1001, 30]
