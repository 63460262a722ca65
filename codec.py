"""Optional payload encryption: what the worker and the CLI write into Temporal history is AES-GCM ciphertext.

Temporal stores workflow inputs, activity inputs and results, heartbeats, summaries and the workflow
result as payloads. They hold the pod template (env values included), analysis URLs and headers, and
measured values, which anyone with read access to the Temporal namespace can see. With
``ROLLOUT_PAYLOAD_KEY_FILE`` set, every payload is encrypted on the client side before it leaves the
process (``connect.connect_temporal`` adds this codec to the data converter), so the server, its
database and its readers only see ciphertext.

The file holds one or more base64-encoded 32-byte keys, one per line: the first encrypts, every key
decrypts (rotation: add the new key first, keep the old one until no run still needs it). Every worker
and CLI of a namespace needs the same file. Payloads written without encryption (older runs) are read
as they are. Search attributes and workflow IDs are not payloads and stay in clear. The Temporal UI
shows the ciphertext unless it is pointed at a codec server that holds the keys.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

__all__ = ["ENCRYPTED", "KEY_FILE_ENV", "EncryptionCodec", "codec_from_env"]

KEY_FILE_ENV = "ROLLOUT_PAYLOAD_KEY_FILE"
ENCRYPTED = b"binary/encrypted"
_KEY_ID = "encryption-key-id"


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).hexdigest()[:16].encode()


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole payload (metadata included); ``keys[0]`` encrypts."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys or any(len(k) != 32 for k in keys):
            raise ValueError(f"{KEY_FILE_ENV}: every key must be 32 bytes (base64-encoded, one per line)")
        self._encrypt_id = _key_id(keys[0])
        self._ciphers = {_key_id(k): AESGCM(k) for k in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            nonce = os.urandom(12)
            data = nonce + self._ciphers[self._encrypt_id].encrypt(nonce, p.SerializeToString(), None)
            out.append(Payload(metadata={"encoding": ENCRYPTED, _KEY_ID: self._encrypt_id}, data=data))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCRYPTED:
                out.append(p)  # written before encryption was turned on
                continue
            cipher = self._ciphers.get(p.metadata.get(_KEY_ID, b""))
            if cipher is None:
                raise ValueError(f"a payload was encrypted with a key that is not in {KEY_FILE_ENV}")
            out.append(Payload.FromString(cipher.decrypt(p.data[:12], p.data[12:], None)))
        return out


def codec_from_env(env: dict[str, str] | None = None) -> EncryptionCodec | None:
    """The codec when ``ROLLOUT_PAYLOAD_KEY_FILE`` is set, else ``None``."""
    path = (os.environ if env is None else env).get(KEY_FILE_ENV)
    if not path:
        return None
    try:
        lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
        keys = [base64.b64decode(line, validate=True) for line in lines]
    except (OSError, ValueError) as exc:
        raise ValueError(f"{KEY_FILE_ENV}: cannot read keys from {path} ({type(exc).__name__})") from None
    return EncryptionCodec(keys)
