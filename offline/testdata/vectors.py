#!/usr/bin/env python3
"""Reference implementation of SmartBox offline codes (contract section 8).

This is the offline-code algorithm written a second time, in another
language and without looking at the Go package, so the two can check each
other. It writes vectors.json (read by the Go tests) and vectors.md (the
table the README shows). Run it from this directory:

    python3 vectors.py

and commit both files. It uses only the Python standard library.

A code has 14 digits M C HHHH TTTTTTTT:
  M     mode: 1 pickup, 2 drop-off, 3 pickup once, 4 drop-off once
  C     duration class 0-9: 1, 2, 4, 8, 24, 48, 72, 168, 336, 672 hours
  HHHH  S mod 10000, S = whole hours since 2024-01-01T00:00:00Z
  TTTT  first 8 bytes of HMAC-SHA256(key,
            "smartbox-offline-1|" + box_id + "|" + key_id + "|" + M + C + "|" + S)
        as a big-endian unsigned integer, mod 10^8, 8 digits
The box takes the largest S with remainder HHHH that is at most its
current hour plus one.
"""

import base64
import datetime
import hashlib
import hmac
import json

EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
HOURS = [1, 2, 4, 8, 24, 48, 72, 168, 336, 672]
MODES = {1: "pickup", 2: "dropoff", 3: "pickup_once", 4: "dropoff_once"}

# A fixed test key: SHA-256 of the ASCII text "smartbox offline test key".
KEY = hashlib.sha256(b"smartbox offline test key").digest()
BOX_ID = "box-0042"
KEY_IDS = ["key-1", "7f3c2a9e-1b4d-4e8a-9c61-0d2f5b7a8e13", "Schlüssel 3", "k"]


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def fmt_time(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def hour_of(t):
    """Whole hours since the epoch, rounded down (negative before it)."""
    return int((t - EPOCH).total_seconds() // 3600)


def message(box_id, key_id, mode, cls, s):
    return "smartbox-offline-1|%s|%s|%d%d|%d" % (box_id, key_id, mode, cls, s)


def tag(key, box_id, key_id, mode, cls, s):
    mac = hmac.new(key, message(box_id, key_id, mode, cls, s).encode("utf-8"),
                   hashlib.sha256).digest()
    return "%08d" % (int.from_bytes(mac[:8], "big") % 10**8)


def code(key, box_id, key_id, mode, cls, s):
    return "%d%d%04d%s" % (mode, cls, s % 10000, tag(key, box_id, key_id, mode, cls, s))


def resolve(hour_mod, now):
    """The S a box takes for a code's HHHH at instant now."""
    top = hour_of(now) + 1
    return top - (top - hour_mod) % 10000


def window(s, cls):
    start = EPOCH + datetime.timedelta(hours=s)
    return start, start + datetime.timedelta(hours=HOURS[cls])


STARTS = [
    ("2024-01-01T00:00:00Z", 0),            # the epoch hour itself
    ("2024-01-01T00:59:59Z", 0),            # still its first hour
    ("2025-02-20T14:00:00Z", 9998),
    ("2025-02-20T15:30:00Z", 9999),         # the last S before HHHH wraps
    ("2025-02-20T16:00:00Z", 10000),        # HHHH = 0000
    ("2025-02-20T17:05:00Z", 10001),
    ("2025-03-30T02:30:00+02:00", 10896),   # an offset other than UTC: 00:30Z
    ("2026-07-15T09:00:00Z", 22233),
    ("2027-12-31T23:59:59Z", 35063),
    ("2030-06-01T12:00:00-07:00", 56251),
]


def vectors():
    out = []
    i = 0
    for start, want in STARTS:
        t = parse_time(start)
        s = hour_of(t)
        assert s == want, (start, s, want)
        for mode in (1, 2, 3, 4):
            # Every mode at every start, the classes and key ids turning
            # over, so that each class and each key id appears many times.
            cls = (i * 3 + mode) % 10
            key_id = KEY_IDS[i % len(KEY_IDS)]
            i += 1
            frm, to = window(s, cls)
            out.append({
                "key_id": key_id,
                "mode": mode,
                "mode_name": MODES[mode],
                "class": cls,
                "hours": HOURS[cls],
                "start": start,
                "s": s,
                "message": message(BOX_ID, key_id, mode, cls, s),
                "code": code(KEY, BOX_ID, key_id, mode, cls, s),
                "from": fmt_time(frm),
                "to": fmt_time(to),
            })
    # Every class once more at one start, with one key id.
    t = parse_time("2024-06-01T08:00:00Z")
    s = hour_of(t)
    for cls in range(10):
        mode = cls % 4 + 1
        frm, to = window(s, cls)
        out.append({
            "key_id": "key-1", "mode": mode, "mode_name": MODES[mode],
            "class": cls, "hours": HOURS[cls], "start": fmt_time(t), "s": s,
            "message": message(BOX_ID, "key-1", mode, cls, s),
            "code": code(KEY, BOX_ID, "key-1", mode, cls, s),
            "from": fmt_time(frm), "to": fmt_time(to),
        })
    return out


# Box-side resolution: which S a box takes for a code's HHHH at a given
# instant.
RESOLVE = [
    (0, "2024-01-01T00:00:00Z", 0),
    (1, "2024-01-01T00:00:00Z", 1),           # the next hour
    (2, "2024-01-01T00:00:00Z", -9998),       # two hours ahead: taken as past, before the epoch
    (9999, "2025-02-20T15:00:00Z", 9999),     # this hour
    (9999, "2025-02-20T15:59:59Z", 9999),
    (0, "2025-02-20T15:00:00Z", 10000),       # the next hour, HHHH wrapped to 0000
    (0, "2025-02-20T14:59:59Z", 0),           # two hours before S = 10000: the old 0
    (9998, "2025-02-20T16:10:00Z", 9998),     # after the wrap, hours before it
    (9999, "2025-02-20T16:10:00Z", 9999),
    (1, "2025-02-20T16:10:00Z", 10001),       # the next hour after the wrap
    (2, "2025-02-20T16:10:00Z", 2),           # two hours ahead: ten thousand back
    (5000, "2026-07-15T09:00:00Z", 15000),
    (4321, "2031-01-01T00:00:00Z", 54321),
]


def resolutions():
    out = []
    for hour_mod, now, want in RESOLVE:
        s = resolve(hour_mod, parse_time(now))
        assert s == want, (hour_mod, now, s, want)
        out.append({"hour_mod": hour_mod, "now": now, "s": s})
    return out


def markdown(vs):
    rows = [
        "| key id | mode | class | start | code | valid from | valid until |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in vs[:4] + vs[12:20]:
        rows.append("| `%s` | %d %s | %d (%d h) | %s | `%s` | %s | %s |" % (
            v["key_id"], v["mode"], v["mode_name"], v["class"], v["hours"],
            v["start"], v["code"], v["from"], v["to"]))
    head = [
        "Offline-code test vectors, for box id `%s` and the 32-byte key" % BOX_ID,
        "",
        "```",
        "hex    %s" % KEY.hex(),
        "base64 %s" % base64.b64encode(KEY).decode(),
        "```",
        "",
    ]
    return "\n".join(head + rows) + "\n"


def main():
    vs = vectors()
    doc = {
        "comment": "Offline-code test vectors (contract section 8), written by vectors.py.",
        "key_hex": KEY.hex(),
        "key_base64": base64.b64encode(KEY).decode(),
        "box_id": BOX_ID,
        "vectors": vs,
        "resolve": resolutions(),
    }
    with open("vectors.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open("vectors.md", "w", encoding="utf-8") as f:
        f.write(markdown(vs))


if __name__ == "__main__":
    main()
