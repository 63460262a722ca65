"""``ROLLOUT_PAYLOAD_KEY_FILE``: what the CLI and the worker write into history is ciphertext (codec.py).

A client from ``connect_temporal`` with a key file starts a workflow (no worker needed: the input is
recorded at start); a reader without the key sees only ciphertext in the history, a reader with it
gets the input back. Payloads written before encryption was turned on stay readable.
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from codec import ENCRYPTED, EncryptionCodec, codec_from_env
from connect import connect_temporal

SECRET = "https://hooks.example.com/services/T0001/B0001/SLACKSECRETTOKENxyz"


async def test_history_holds_ciphertext_only(
    temporal_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "payload-keys"
    keys.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    monkeypatch.setenv("ROLLOUT_PAYLOAD_KEY_FILE", str(keys))
    target = temporal_client.service_client.config.target_host
    client = await connect_temporal(target, temporal_client.namespace)
    wid = f"codec-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        "Rollout", {"notifyUrls": [SECRET]}, id=wid, task_queue=f"nobody-{wid}", static_summary=SECRET
    )
    try:
        events = (await temporal_client.get_workflow_handle(wid).fetch_history()).events
        raw = b"".join(e.SerializeToString() for e in events)
        assert SECRET.encode() not in raw and b"SLACKSECRETTOKEN" not in raw
        started = events[0].workflow_execution_started_event_attributes
        [payload] = started.input.payloads
        assert payload.metadata["encoding"] == ENCRYPTED
        # With the key, the input comes back.
        [decoded] = await client.data_converter.decode([payload], [dict])
        assert decoded == {"notifyUrls": [SECRET]}
    finally:
        await handle.terminate()


async def test_codec_rotation_plain_payloads_and_bad_keys(tmp_path: Path) -> None:
    old, new = os.urandom(32), os.urandom(32)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}')
    [sealed] = await EncryptionCodec([old]).encode([plain])
    rotated = EncryptionCodec([new, old])  # the new key encrypts, the old one still decrypts
    assert await rotated.decode([sealed, plain]) == [plain, plain]
    [resealed] = await rotated.encode([plain])
    assert resealed.data != sealed.data and await EncryptionCodec([new]).decode([resealed]) == [plain]
    with pytest.raises(ValueError, match="not in ROLLOUT_PAYLOAD_KEY_FILE"):
        await EncryptionCodec([new]).decode([sealed])
    bad = tmp_path / "bad"
    bad.write_text(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="every key must be 32 bytes"):
        codec_from_env({"ROLLOUT_PAYLOAD_KEY_FILE": str(bad)})
    assert codec_from_env({}) is None
