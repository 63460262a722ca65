"""The webhook's certificate (security review F15): rotated without a restart, shared by replicas, and
client authentication when the apiserver presents a certificate.

Two ``CertKeeper``s stand for two replicas sharing the Secret; the certificate lives 6 s, so the leader
rotates it after 3 s. The server is never restarted: the same listening socket presents the new
certificate, and the published caBundle trusts both the old and the new one across the switch.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client as k8s

from declarative.certs import CertKeeper, SecretCertStore, make_serving_cert, server_context
from declarative.webhook import WebhookServer
from kube.client import Kube
from tests.helpers.poll import assert_eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _handshake(port: int, ca_pem: bytes, client: tuple[bytes, bytes] | None = None) -> bytes:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    if client is not None:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "c.pem").write_bytes(client[0] + client[1])
            ctx.load_cert_chain(Path(tmp) / "c.pem")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = tls.recv(200)
        assert b"200" in answer.split(b"\r\n", 1)[0]
        return tls.getpeercert(binary_form=True) or b""


def _server(ctx: ssl.SSLContext) -> WebhookServer:
    return WebhookServer(lambda dep: (None, lambda t: ""), ctx)


async def test_rotation_without_restart_and_replicas_follow(dapi: k8s.ApiClient) -> None:
    kube = Kube(dapi)
    ns = f"tls-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    validity = datetime.timedelta(seconds=6)
    bundles: list[bytes] = []
    store = SecretCertStore(kube, ns, "webhook", ["127.0.0.1"], validity)
    first = store.load_or_create()
    assert SecretCertStore(kube, ns, "webhook", ["127.0.0.1"], validity).load_or_create() == first

    def keeper(leader: bool) -> CertKeeper:
        cert = store.load_or_create()
        return CertKeeper(
            server_context(cert.cert_pem, cert.key_pem),
            cert,
            hosts=["127.0.0.1"],
            validity=validity,
            publish=bundles.append,
            may_rotate=lambda: leader,
            store=store,
        )

    leader, follower = keeper(True), keeper(False)
    assert not leader.check()  # a young certificate is kept
    servers = [_server(leader.ctx), _server(follower.ctx)]
    ports = [await s.start() for s in servers]
    try:
        before = {await asyncio.to_thread(_handshake, p, first.ca_pem) for p in ports}
        assert len(before) == 1  # both replicas present the one certificate of the Secret

        async def rotated() -> bool:
            await asyncio.to_thread(follower.check)  # a follower never rotates, only follows
            await asyncio.to_thread(leader.check)
            await asyncio.to_thread(follower.check)
            return leader.reloads == 1 and follower.reloads == 1

        await assert_eventually(rotated, timeout=20, interval=0.3, message="rotated at half its life")
        new = store.read()
        assert new.cert_pem != first.cert_pem
        # The bundle was published before the Secret changed, and trusts the old CA and the new one.
        assert bundles and bundles[0] == new.ca_pem
        assert first.ca_pem in new.ca_pem
        after = {await asyncio.to_thread(_handshake, p, new.ca_pem) for p in ports}
        assert len(after) == 1 and after != before  # the same sockets, a new certificate
        assert [s.port for s in servers] == ports
        assert not leader.check()  # the new one is young again: no second rotation
    finally:
        for s in servers:
            await s.stop()


def _client_cert(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[bytes, bytes]:
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apiserver client CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


async def test_client_certificate_required_when_a_client_ca_is_set() -> None:
    serving = make_serving_cert(["127.0.0.1"])
    ca_key, ca = _ca()
    client_ca = ca.public_bytes(serialization.Encoding.PEM)
    server = _server(server_context(serving.cert_pem, serving.key_pem, client_ca))
    port = await server.start()
    try:
        with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
            await asyncio.to_thread(_handshake, port, serving.ca_pem)  # any pod, no certificate
        other_key, other = _ca()  # a certificate from another CA is refused too
        with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
            await asyncio.to_thread(_handshake, port, serving.ca_pem, _client_cert(other_key, other))
        await asyncio.to_thread(_handshake, port, serving.ca_pem, _client_cert(ca_key, ca))
    finally:
        await server.stop()
