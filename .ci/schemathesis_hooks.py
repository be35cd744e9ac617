"""Schemathesis hooks for Amparo's API bad-input sweep (run by .ci/schemathesis.sh).

Without these, the sweep would mostly bounce off the relay's first checks: random
bytes are almost never a well-framed envelope batch, and a random Amparo-Signature
never verifies, so the storage paths would never be reached. These hooks:

* seed the sweep's own mailbox with well-framed envelopes, so fetches return pages
  and acknowledgements hit real ids;
* sign mailbox requests for real (Ed25519 over exactly the bytes sent, PROTOCOL.md
  §12), for most generated cases whose header has the documented shape, after
  pointing them at the sweep's mailbox; the rest keep the generated header and
  mailbox, so the refusals are swept too;
* generate envelope batches mixing valid and broken frames next to the schema's
  random bytes, and signed many-mailbox fetches (by key and by grant, live and
  expired) and acknowledgements, some tampered or cut;
* check that the binary bodies (results, mailbox pages, the directory) follow the
  framing the OpenAPI document describes, which the schema checks cannot see.

AMPARO_SWEEP_URL must be the relay's base URL (http://127.0.0.1:PORT).
"""

import atexit
import base64
import collections
import hashlib
import json
import os
import random
import re
import struct
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import requests
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

SIZE_CLASSES = (1086, 1598, 4158, 16446, 65598)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _key(label: bytes) -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label).digest())
    return key, key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


KEY, PUBLIC = _key(b"amparo schemathesis sweep key")
# The relay under the sweep is started with this coordinator key
# (`python .ci/schemathesis_hooks.py` prints it), so signed directories reach storage.
COORDINATOR, COORDINATOR_PUBLIC = _key(b"amparo schemathesis coordinator key")
if __name__ == "__main__":
    print(b64(COORDINATOR_PUBLIC))
    raise SystemExit(0)

BASE = os.environ["AMPARO_SWEEP_URL"].rstrip("/")

MAILBOX_RAW = hashlib.sha256(b"amparo-mailbox-v1" + PUBLIC).digest()[:12]
MAILBOX = b64(MAILBOX_RAW)
HEADER_SHAPE = re.compile(r"^[A-Za-z0-9_-]{160}$")
MAILBOX_PATH = re.compile(r"^/v1/mailboxes/([^/]*)/(envelopes|ack)$")


def envelope(size: int, mailbox: bytes, rng: random.Random, version: int = 1, suite: int = 1) -> bytes:
    """A well-framed envelope: the relay checks framing only (it cannot open it)."""
    head = bytes([version, suite]) + mailbox
    return head + rng.randbytes(max(0, size - len(head)))


def batch(frames) -> bytes:
    return b"".join(struct.pack(">I", len(f)) + f for f in frames)


def signed_directory(version: int, body: bytes) -> bytes:
    """A directory signed by the sweep's coordinator (PROTOCOL.md §8)."""
    key_id = hashlib.sha256(b"amparo-key-id-v1" + COORDINATOR_PUBLIC).digest()[:8]
    head = b"AMPD\x01" + struct.pack(">Q", version) + key_id + struct.pack(">I", len(body))
    return head + body + COORDINATOR.sign(b"amparo-directory-v1" + head + body)


# A focal point whose mailbox is the sweep's (its signing key is the sweep's
# key): holds of check-in timers are for focal points only (PROTOCOL.md
# §12.16), so the valid directories list it and the timer routes reach storage.
FOCAL_POINT = json.dumps({
    "id": "pe-sweep",
    "name": {"es": "Barrido", "pt": "Varredura", "en": "Sweep"},
    "organization": "Sweep",
    "regions": ["PE-LIM"],
    "categories": ["legal_advice"],
    "languages": ["es"],
    "keys": {"sealing_key": b64(hashlib.sha256(b"sweep sealing").digest()), "signing_key": b64(PUBLIC)},
    "valid_from": 0,
    "valid_until": 2**40,
}).encode()

DIRECTORY_BODIES = [
    b'{"focal_points":[' + FOCAL_POINT + b']}',
    b'{"focal_points":[' + FOCAL_POINT + b'],"service_routes":[],"relays":[]}',
    b"{}",
    b"not json",
    b'{"focal_points":[{"id":"Not An Id"}]}',
]

SEEDED_IDS: list[str] = []
_lock = threading.Lock()
_calls = 0


def seed_mailbox() -> None:
    rng = random.Random()
    envs = [envelope(rng.choice(SIZE_CLASSES[:2]), MAILBOX_RAW, rng) for _ in range(6)]
    r = requests.post(f"{BASE}/v1/envelopes", data=batch(envs), timeout=30)
    if r.status_code == 429:
        # Admission is on by default: seeding often floods the sweep's
        # mailbox and the relay asks work (PROTOCOL.md §14). What is
        # already there still makes pages to fetch.
        return
    r.raise_for_status()
    with _lock:
        SEEDED_IDS.extend(b64(hashlib.sha256(e).digest()[:16]) for e in envs)
        del SEEDED_IDS[:-200]


seed_mailbox()
requests.put(f"{BASE}/v1/directory", data=signed_directory(1, DIRECTORY_BODIES[0]), timeout=30).raise_for_status()


def proof(method: str, target: str, body: bytes) -> str:
    ts = struct.pack(">Q", int(time.time()))
    nonce = os.urandom(16)
    signed = (
        b"amparo-request-v1\x00"
        + method.encode()
        + b"\x00"
        + target.encode()
        + b"\x00"
        + ts
        + nonce
        + hashlib.sha256(body).digest()
    )
    return b64(PUBLIC + ts + nonce + KEY.sign(signed))


def sign_if_shaped(request: requests.PreparedRequest) -> None:
    global _calls
    parts = urlsplit(request.url)
    m = MAILBOX_PATH.match(parts.path)
    if not m:
        return
    with _lock:
        _calls += 1
        reseed = _calls % 100 == 0
    if reseed:
        seed_mailbox()
    header = request.headers.get("Amparo-Signature")
    if not isinstance(header, str) or not HEADER_SHAPE.match(header):
        return  # a missing or malformed header stays as generated
    if random.random() < 0.2:
        return  # and some well-shaped ones stay unsigned (401/403 paths)
    path = f"/v1/mailboxes/{MAILBOX}/{m.group(2)}"
    request.url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    request.headers["Amparo-Signature"] = proof(request.method, request.path_url, body)


_send = requests.Session.send


def _signing_send(self, request, **kwargs):
    sign_if_shaped(request)
    return _send(self, request, **kwargs)


requests.Session.send = _signing_send


@st.composite
def frames(draw):
    """A mix of valid and broken envelope frames."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    kind = draw(st.sampled_from(["valid", "version", "suite", "size", "short"]))
    size = draw(st.sampled_from(SIZE_CLASSES[:2]))
    mailbox = draw(st.sampled_from([MAILBOX_RAW, bytes(12)])) if kind == "valid" else rng.randbytes(12)
    if kind == "version":
        return envelope(size, mailbox, rng, version=draw(st.integers(0, 255).filter(lambda v: v != 1)))
    if kind == "suite":
        return envelope(size, mailbox, rng, suite=draw(st.integers(0, 255).filter(lambda v: v != 1)))
    if kind == "size":
        return envelope(draw(st.integers(15, 5000).filter(lambda n: n not in SIZE_CLASSES)), mailbox, rng)
    if kind == "short":
        return rng.randbytes(draw(st.integers(0, 14)))
    return envelope(size, mailbox, rng)


@st.composite
def batches(draw):
    body = batch(draw(st.lists(frames(), max_size=6)))
    cut = draw(st.sampled_from(["none", "none", "none", "truncate", "huge_length"]))
    if cut == "truncate" and body:
        return body[: draw(st.integers(0, len(body) - 1))]
    if cut == "huge_length":
        return body + struct.pack(">I", draw(st.integers(65599, 2**32 - 1))) + b"\x01\x01"
    return body


def many_request(op: int, middle: bytes, signers, rng: random.Random) -> bytes:
    """A many-mailbox request (PROTOCOL.md §12.14/§12.15), signed by `signers` in order."""
    unsigned = bytes([1, op]) + struct.pack(">Q", int(time.time())) + rng.randbytes(16) + middle
    digest = hashlib.sha256(unsigned).digest()
    return unsigned + b"".join(k.sign(b"amparo-mailboxes-v1\x00" + digest) for k in signers)


def grant(key: Ed25519PrivateKey, public: bytes, not_after: int) -> bytes:
    mailbox = hashlib.sha256(b"amparo-mailbox-v1" + public).digest()[:12]
    signed = b"AMPG\x01" + mailbox + public + struct.pack(">Q", max(0, not_after))
    return signed + key.sign(b"amparo-fetch-grant-v1" + signed)


def _timer_key(seed: bytes) -> tuple[Ed25519PrivateKey, bytes]:
    return _key(b"sweep timer " + seed)


@st.composite
def holds(draw):
    """Check-in timers' holds (PROTOCOL.md §17.2): signed, for the sweep's
    focal point or another mailbox, at hours in and out of range; some
    tampered or cut."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    key, public = _timer_key(draw(st.sampled_from([b"a", b"b", b"c"])) + rng.randbytes(draw(st.sampled_from([0, 4]))))
    now_hour = int(time.time()) // 3600
    hour = now_hour + draw(st.sampled_from([1, 2, 5, 744, 745, 0, -1]))
    mailbox = draw(st.sampled_from([MAILBOX_RAW, MAILBOX_RAW, rng.randbytes(12)]))
    env = envelope(draw(st.sampled_from(SIZE_CLASSES[:2])), mailbox, rng)
    head = bytes([1]) + public + struct.pack(">I", max(0, hour) & 0xFFFFFFFF)
    sig = key.sign(b"amparo-hold-v1" + public + head[33:37] + hashlib.sha256(env).digest())
    body = head + sig + env
    how = draw(st.sampled_from(["as is", "as is", "as is", "tamper", "truncate"]))
    if how == "tamper":
        return _tampered(body, draw(st.integers(0, 2**32)))
    if how == "truncate":
        return body[: draw(st.integers(0, len(body) - 1))]
    return body


@st.composite
def check_ins(draw):
    """Check-ins and cancels (PROTOCOL.md §17.3) for the timers `holds`
    makes: in order, replayed, stale, earlier, out of range, tampered."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    key, public = _timer_key(draw(st.sampled_from([b"a", b"b", b"c", b"d"])))
    now_hour = int(time.time()) // 3600
    action = draw(st.sampled_from([1, 1, 1, 2, 3]))
    seq = draw(st.sampled_from([0, 1, 2, 16, 17, 2**63 - 1, 2**63, 2**64 - 1]))
    hour = 0 if action == 2 else now_hour + draw(st.sampled_from([1, 2, 3, 6, 744, 745, 0]))
    unsigned = bytes([1, action]) + public + struct.pack(">QI", seq, max(0, hour) & 0xFFFFFFFF)
    body = unsigned + key.sign(b"amparo-check-in-v1" + unsigned)
    if draw(st.integers(0, 5)) == 0:
        return _tampered(body, draw(st.integers(0, 2**32)))
    return body if rng.random() < 0.95 else body[:-1]


def _tampered(body: bytes, at: int) -> bytes:
    i = at % len(body)
    return body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]


@st.composite
def many_fetches(draw):
    """Signed fetches of the sweep's mailbox and of random ones, by key or by grant."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    keys = [(KEY, PUBLIC)] + [_key(rng.randbytes(8)) for _ in range(draw(st.integers(0, 3)))]
    entries, signers = b"", []
    for key, public in keys:
        after = draw(st.sampled_from([0, 0, 1, 2**63 - 1, 2**64 - 1]))
        if draw(st.booleans()):
            lifetime = draw(st.sampled_from([3600, 3600, -10, 30 * 86400]))
            entries += b"\x02" + grant(key, public, int(time.time()) + lifetime) + struct.pack(">Q", after)
        else:
            entries += b"\x01" + public + struct.pack(">Q", after)
            signers.append(key)
    limit = draw(st.sampled_from([1, 50, 100, 100, 0, 101]))
    middle = struct.pack(">HH", limit, len(keys)) + entries
    body = many_request(1, middle, signers, rng)
    how = draw(st.sampled_from(["as is", "as is", "as is", "tamper", "truncate"]))
    if how == "tamper":
        return _tampered(body, draw(st.integers(0, 2**32)))
    if how == "truncate":
        return body[: draw(st.integers(0, len(body) - 1))]
    return body


@st.composite
def many_acks(draw):
    """Signed acknowledgements of the sweep's seeded ids (and of random ones)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    with _lock:
        known = list(SEEDED_IDS)
    ids = draw(st.lists(st.sampled_from(known), min_size=1, max_size=8)) if known else []
    raw = [base64.urlsafe_b64decode(i + "==") for i in ids] or [rng.randbytes(16)]
    entry = PUBLIC + struct.pack(">H", len(raw)) + b"".join(raw)
    body = many_request(2, struct.pack(">H", 1) + entry, [KEY], rng)
    if draw(st.integers(0, 4)) == 0:
        return _tampered(body, draw(st.integers(0, 2**32)))
    return body


@schemathesis.hook
def flatmap_body(context, body):
    op = context.operation
    if op is not None and op.method.upper() == "POST" and op.path == "/v1/envelopes":
        return st.one_of(st.just(body), batches())
    if op is not None and op.method.upper() == "PUT" and op.path == "/v1/directory":
        signed = st.builds(
            signed_directory,
            st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1)),
            st.sampled_from(DIRECTORY_BODIES),
        )
        tampered = st.tuples(signed, st.integers(0, 2**32)).map(
            lambda t: t[0][: t[1] % len(t[0])] + bytes([t[0][t[1] % len(t[0])] ^ 1]) + t[0][t[1] % len(t[0]) + 1 :]
        )
        return st.one_of(st.just(body), signed, tampered)
    if op is not None and op.method.upper() == "POST" and op.path == "/v1/timers":
        return st.one_of(st.just(body), holds())
    if op is not None and op.method.upper() == "POST" and op.path == "/v1/timers/check-in":
        return st.one_of(st.just(body), check_ins())
    if op is not None and op.method.upper() == "POST" and op.path == "/v1/mailboxes/fetch":
        return st.one_of(st.just(body), many_fetches())
    if op is not None and op.method.upper() == "POST" and op.path == "/v1/mailboxes/ack":
        return st.one_of(st.just(body), many_acks())
    if op is not None and op.method.upper() == "POST" and op.path.endswith("/ack"):
        with _lock:
            known = list(SEEDED_IDS)
        if known:
            return st.one_of(st.just(body), st.lists(st.sampled_from(known), max_size=8).map(lambda ids: {"ids": ids}))
    return st.just(body)


def _framed(content: bytes, record) -> int:
    """Walks a sequence of records; `record(content, offset)` returns the next offset."""
    offset, count = 0, 0
    while offset < len(content):
        offset = record(content, offset)
        count += 1
    if offset != len(content):
        raise AssertionError(f"binary body ends inside a record ({offset} != {len(content)})")
    return count


def _result(content: bytes, offset: int) -> int:
    tag = content[offset]
    if tag == 1:
        receipt = content[offset + 1 : offset + 94]
        if len(receipt) != 93 or receipt[0] != 1:
            raise AssertionError("a receipt is not 93 bytes of version 1")
        return offset + 94
    if tag == 0:
        code = content[offset + 1 : offset + 2]
        if len(code) != 1 or code[0] not in (1, 2, 3, 4, 5, 6, 7):
            raise AssertionError(f"undocumented reject code {code!r}")
        return offset + 2
    raise AssertionError(f"result tag {tag} is neither 0 nor 1")


def _page_entry(content: bytes, offset: int) -> int:
    head = content[offset : offset + 12]
    if len(head) != 12:
        raise AssertionError("a page entry is cut inside its cursor or length")
    (length,) = struct.unpack(">I", head[8:])
    if length not in SIZE_CLASSES:
        raise AssertionError(f"a page holds an envelope of {length} bytes")
    return offset + 12 + length


def _frames_in(body: bytes) -> int | None:
    count, offset = 0, 0
    while offset < len(body):
        if offset + 4 > len(body):
            return None
        (length,) = struct.unpack(">I", body[offset : offset + 4])
        offset += 4 + length
        count += 1
    return count if offset == len(body) else None


@schemathesis.check
def binary_bodies_are_framed(ctx, response, case):
    """The 200 bodies in application/octet-stream follow the documented framing."""
    if response.status_code != 200:
        return None
    path = urlsplit(response.request.url).path
    method = response.request.method
    content = response.content
    if method == "POST" and path == "/v1/envelopes":
        results = _framed(content, _result)
        body = response.request.body or b""
        frames_sent = _frames_in(body.encode() if isinstance(body, str) else body)
        if frames_sent is not None and frames_sent != results:
            raise AssertionError(f"{frames_sent} envelopes sent, {results} results")
    elif method == "GET" and MAILBOX_PATH.match(path):
        _framed(content, _page_entry)
        more = response.headers.get("amparo-more", [""])
        if more not in (["0"], ["1"]):
            raise AssertionError(f"Amparo-More is {more!r}, not 0 or 1")
    elif method == "POST" and path == "/v1/mailboxes/fetch":
        (count,) = struct.unpack(">H", content[:2])
        offset = 2
        for _ in range(count):
            tag = content[offset]
            offset += 1
            if tag == 0:
                continue
            if tag != 1 or content[offset] not in (0, 1):
                raise AssertionError(f"result tag {tag} or its more flag is undocumented")
            (n,) = struct.unpack(">H", content[offset + 1 : offset + 3])
            offset += 3
            for _ in range(n):
                offset = _page_entry(content, offset)
        if offset != len(content):
            raise AssertionError("the many-mailbox answer has bytes after its last result")
    elif method == "GET" and path == "/v1/directory":
        if content[:5] != b"AMPD\x01" or len(content) < 89:
            raise AssertionError("the directory does not start with AMPD v1")
        (n,) = struct.unpack(">I", content[21:25])
        if len(content) != 25 + n + 64:
            raise AssertionError("the directory's length does not match its header")
    return None


STATUSES: collections.Counter = collections.Counter()


@schemathesis.hook
def after_call(context, case, response):
    op = case.operation
    STATUSES[(f"{op.method.upper()} {op.path}", response.status_code)] += 1


@atexit.register
def _print_statuses() -> None:
    print("\nResponses by operation and status (the sweep reached each of these):")
    for (op, status), n in sorted(STATUSES.items()):
        print(f"  {op:45} {status}  x{n}")
