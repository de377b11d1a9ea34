#!/usr/bin/env python3
"""Regenerates the committed seed corpus under fuzz/corpus/ from the project's test vectors.

Run from anywhere: `python3 fuzz/seeds.py`. It rewrites fuzz/corpus/<target>/seed-* for every
target except peer_ops, whose seeds (`arbitrary` byte streams) were kept from a fuzzing run.
Inputs: crates/corestore-keys/tests/vectors/js-keys.json,
crates/corestore-proto/tests/vectors/replication-trace.json,
crates/hypercore-lite/tests/fixtures/hc10.38/ (stores written by JavaScript hypercore 10.38).
The binary formats are documented at the top of each fuzz_targets/<target>.rs.
"""

import hashlib
import json
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"
KEYS = json.loads((ROOT / "crates/corestore-keys/tests/vectors/js-keys.json").read_text())
TRACE = json.loads((ROOT / "crates/corestore-proto/tests/vectors/replication-trace.json").read_text())
PROOFS = json.loads((ROOT / "crates/hypercore-lite/tests/fixtures/hc10.38/proofs.json").read_text())
FIXTURES = ROOT / "crates/hypercore-lite/tests/fixtures/hc10.38"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)


def clear(target):
    d = CORPUS / target
    if d.is_dir():
        for f in d.glob("seed-*"):
            f.unlink()


def uint(n):
    if n <= 0xFC:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def read_uint(b, i):
    first = b[i]
    if first == 0xFD:
        return struct.unpack_from("<H", b, i + 1)[0], i + 3
    if first == 0xFE:
        return struct.unpack_from("<I", b, i + 1)[0], i + 5
    if first == 0xFF:
        return struct.unpack_from("<Q", b, i + 1)[0], i + 9
    return first, i + 1


def trace_frames(side=None):
    return [bytes.fromhex(f["hex"]) for f in TRACE["frames"] if side is None or f["from"] == side]


def channel_messages(frame):
    """(type, payload) of every channel message in a protomux frame, batches unpacked."""
    ch, i = read_uint(frame, 0)
    ty, i = read_uint(frame, i)
    if ch != 0:
        return [(ty, frame[i:])]
    if ty != 0:
        return []
    out = []
    _, i = read_uint(frame, i)  # first channel of the batch
    while i < len(frame):
        n, i = read_uint(frame, i)
        if n == 0:
            _, i = read_uint(frame, i)
            continue
        item = frame[i : i + n]
        i += n
        t, j = read_uint(item, 0)
        out.append((t, item[j:]))
    return out


def compact_encoding():
    clear("compact_encoding")
    for i, m in enumerate(KEYS["manifests"][:4]):
        write("compact_encoding", f"manifest-{i}", b"\x00" + bytes.fromhex(m["encoded"]))
    sigs = {h["mode"]: h["signature"] for h in KEYS["hypercore"]}
    for mode, sig in sigs.items():
        write("compact_encoding", f"signature-{mode}", b"\x00" + bytes.fromhex(sig))
    strings = b"".join(bytes.fromhex(s["encoded"]) for s in KEYS["compact"]["strings"])
    control = bytes(range(19))
    write("compact_encoding", "readers", bytes([len(control)]) + control + strings)


def key_parse():
    clear("key_parse")
    for i, s in enumerate(KEYS["keys"][0]["accepted"]):
        write("key_parse", f"accepted-{i}", s.encode())
    for i, s in enumerate(KEYS["invalid_ids"][:4]):
        write("key_parse", f"invalid-{i}", s.encode())
    write("key_parse", "manifest", bytes.fromhex(KEYS["manifests"][0]["encoded"]))


def frame_decoder():
    clear("frame_decoder")
    stream = b"".join(struct.pack("<I", len(f))[:3] + f for f in trace_frames())
    write("frame_decoder", "trace-unlimited", b"\xff\xff\x07" + stream)
    write("frame_decoder", "trace-limit-64", struct.pack("<H", 64) + b"\x2a" + stream)
    write("frame_decoder", "empty-frames", b"\x10\x00\x01" + b"\x00\x00\x00" * 3 + b"\x02\x00\x00ab")


def wire_decode():
    clear("wire_decode")
    seen = set()
    for f in trace_frames():
        for ty, payload in channel_messages(f):
            seed = bytes([ty]) + payload
            if seed not in seen:
                seen.add(seed)
                write("wire_decode", f"trace-{len(seen)}", seed)
    # A handshake payload (flags, capability) and a few proofs JavaScript built.
    write("wire_decode", "handshake", b"\x01\x01" + bytes.fromhex(TRACE["capability_initiator"]))
    picked = 0
    for case in PROOFS["cases"]:
        wire = case.get("wire") or {}
        if picked < 4 and wire.get("data") and len(wire["data"]) < 1200:
            write("wire_decode", f"proof-request-{picked}", b"\x01" + bytes.fromhex(wire["request"]))
            write("wire_decode", f"proof-data-{picked}", b"\x03" + bytes.fromhex(wire["data"]))
            picked += 1


def record(op, data):
    return bytes([op]) + struct.pack("<H", len(data)) + data


def mux():
    clear("mux")
    # We are A: open the traced channel, then receive what B sent.
    hs = b"\x01" + bytes.fromhex(TRACE["capability_initiator"])
    tape = record(4, b"\x00\x01" + hs)
    tape += b"".join(record(0, f) for f in trace_frames("B"))
    write("mux", "trace-as-a", tape)
    # We are B: the remote opens first (a pending open), we accept, then A's frames.
    frames = trace_frames("A")
    tape = record(0, frames[0]) + record(6, b"\x00\x01") + b"".join(record(1, f) for f in frames[1:])
    write("mux", "trace-as-b", tape)
    tape = record(8, b"") + record(4, b"\x01\x02hs") + record(7, b"\x00\x05hello") + record(9, b"")
    tape += record(5, b"\x00")
    write("mux", "cork-open-send-close", tape)


def tape_record(op, data=b""):
    return bytes([op, len(data)]) + data


def handshake():
    clear("handshake")
    # Raw: a message-1 sized frame of garbage.
    write("handshake", "raw-msg1", b"\x00\x05" + b"\x20\x00\x00" + bytes(range(32)))
    # Honest: deliver msg1, deliver msg3 + header, send two messages, deliver.
    honest = tape_record(0) + tape_record(0) + tape_record(6, b"hello") + tape_record(6, b"world")
    honest += tape_record(0)
    write("handshake", "honest-stream", b"\x01" + honest)
    tampered = tape_record(0) + tape_record(3, b"\x00\x05\x80") + tape_record(0)
    write("handshake", "tampered-msg3", b"\x02" + tampered)
    # Honest into a Connection: A's side of the traced session reaches the replication peer.
    conn = tape_record(0) + tape_record(0)
    conn += b"".join(tape_record(6, f) for f in trace_frames("A")[:3]) + tape_record(0)
    write("handshake", "connection-trace", b"\x03" + conn)


def unique_cores(scenarios):
    seen = {}
    for scenario in scenarios:
        for core in sorted((FIXTURES / scenario / "store/cores").glob("*/*/*")):
            files = {f.name: f.read_bytes() for f in core.iterdir()}
            digest = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()
            if digest not in seen:
                seen[digest] = (f"{scenario}-{core.name[:8]}", files)
    return list(seen.values())


def oplog_decode():
    clear("oplog_decode")
    seen = set()
    for name, files in unique_cores(sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())):
        oplog = files.get("oplog")
        if oplog and oplog not in seen:
            seen.add(oplog)
            write("oplog_decode", name, oplog)


def core_open():
    clear("core_open")
    scenarios = [
        "flushed",
        "truncated",
        "userdata",
        "oplog-only",
        "oplog-only-truncated",
        "flushed-tree-bitflip",
        "flushed-data-bitflip",
    ]
    for name, files in unique_cores(scenarios):
        blob = b""
        for f in ["oplog", "tree", "bitfield", "data", "header"]:
            data = files.get(f, b"")
            blob += struct.pack("<I", len(data)) + data
        write("core_open", name, blob)
        if name.startswith(("flushed-", "truncated-")):
            # The same store with a few operations after open (append, truncate, user data, flush).
            write("core_open", name + "-ops", blob + bytes([0, 3, 1, 4]))


if __name__ == "__main__":
    compact_encoding()
    key_parse()
    frame_decoder()
    wire_decode()
    mux()
    handshake()
    oplog_decode()
    core_open()
