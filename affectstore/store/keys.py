"""Reversible mapping from video ids of any form to keys that are safe in any Zarr store.

BAH ids hold slashes and spaces, other datasets may hold unicode; a Zarr key must not
contain "/" inside a node name, should not start with "." or "__", and file systems cap
names at 255 bytes. Percent-encoding (RFC 3986 unreserved characters kept) is
reversible, readable and survives every backend (local, zip, object stores).
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote, unquote

# Room for the hash suffix below and for temp-file suffixes of atomic writes.
_MAX_KEY_BYTES = 180
_HASHED = "~h"


def encode_id(video_id: str) -> str:
    """Return the store key of `video_id`; `decode_key` gives the id back.

    Ids whose encoding is too long for a file name get a truncated prefix plus a
    SHA-256 suffix; those keys do not decode (the id is kept in the video's records).
    """
    if not isinstance(video_id, str) or not video_id:
        raise ValueError(f"A video id must be a non-empty string. Got {video_id!r} instead.")
    key = quote(video_id, safe="-_.~")
    # "~" is kept by quote(); encode it so that a plain id can never look like a hashed key.
    key = key.replace("~", "%7E")
    if key[0] in "._":
        # Leading "." hides files (and "." / ".." are path parts); "__" is reserved by Zarr.
        key = f"%{ord(key[0]):02X}" + key[1:]
    if len(key) > _MAX_KEY_BYTES:
        digest = hashlib.sha256(video_id.encode("utf-8")).hexdigest()[:24]
        head = key[: _MAX_KEY_BYTES - 40]
        cut = head.rfind("%", len(head) - 2)  # never split a %XX escape
        key = (head[:cut] if cut != -1 else head) + _HASHED + digest
    return key


def decode_key(key: str) -> str | None:
    """Return the video id of a key made by `encode_id`, or None for a hashed (too long) key."""
    if _HASHED in key:
        return None
    return unquote(key)
