"""TLS for the webhook: a private CA and a serving certificate, made with ``cryptography``.

The controller makes both (nothing to rotate by hand, no cert-manager needed) and writes the CA into
the webhook configurations' ``caBundle``; the apiserver then trusts exactly this server.

- Several replicas share one certificate through a Secret (``SecretCertStore``): the first replica
  makes it, the others read it, so every replica serves what the one ``caBundle`` trusts.
- Rotation: once a certificate has lived half its validity, the leader makes a new CA and certificate,
  first writes a ``caBundle`` that trusts the new CA *and* the old one, then the Secret; every replica
  notices the Secret changed and loads the new certificate into its live TLS context (new handshakes
  use it, no restart). The old CA leaves the bundle at the next rotation.
- ``FileCertSource``: certificates made elsewhere (cert-manager) in a mounted directory, reloaded
  when the files change.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes.client.exceptions import ApiException

__all__ = [
    "CertKeeper",
    "FileCertSource",
    "SecretCertStore",
    "ServingCert",
    "load_into",
    "make_serving_cert",
    "needs_rotation",
    "server_context",
]

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class ServingCert:
    """PEM bytes: the CA certificate (the caBundle), the server certificate and its key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_serving_cert(
    hosts: list[str], validity: datetime.timedelta = VALIDITY, trust_also: bytes = b""
) -> ServingCert:
    """A fresh CA and a certificate for ``hosts`` (DNS names or IP addresses) signed by it.

    ``trust_also``: CA certificates appended to ``ca_pem`` (the previous CA, during a rotation).
    """
    now = datetime.datetime.now(datetime.UTC)
    backdate = min(datetime.timedelta(minutes=5), validity / 10)  # clock skew; a small part of its life
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("temporal-rollouts webhook CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ServingCert(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM) + trust_also,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def server_context(cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes = b"") -> ssl.SSLContext:
    """A TLS server context; the key only touches disk in a private temporary directory.

    With ``client_ca_pem`` a client must present a certificate signed by one of those CAs (the
    apiserver's webhook client certificate), or the handshake fails.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if client_ca_pem:
        ctx.load_verify_locations(cadata=client_ca_pem.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED
    load_into(ctx, cert_pem, key_pem)
    return ctx


def load_into(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Put a certificate into a live context: handshakes from now on present it (rotation)."""
    with tempfile.TemporaryDirectory(prefix="rollout-webhook-") as tmp:
        cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_file.write_bytes(cert_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key_pem)
        ctx.load_cert_chain(cert_file, key_file)


def _first_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem)[0]


def needs_rotation(cert_pem: bytes, now: datetime.datetime | None = None) -> bool:
    """True once the serving certificate has lived half its validity (or is not valid at all now)."""
    cert = _first_cert(cert_pem)
    now = now or datetime.datetime.now(datetime.UTC)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return now >= start + (end - start) / 2 or now < start


def rotated(current: ServingCert, hosts: list[str], validity: datetime.timedelta) -> ServingCert:
    """A new CA and certificate; the bundle trusts the new CA and the one that signed ``current``."""
    previous_ca = _first_cert(current.ca_pem).public_bytes(serialization.Encoding.PEM)
    return make_serving_cert(hosts, validity, trust_also=previous_ca)


class FileCertSource:
    """``tls.crt``, ``tls.key`` and ``ca.crt`` in a directory (a mounted Secret): read when they change."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def read(self) -> ServingCert:
        d = self.directory
        return ServingCert(
            ca_pem=(d / "ca.crt").read_bytes(),
            cert_pem=(d / "tls.crt").read_bytes(),
            key_pem=(d / "tls.key").read_bytes(),
        )


class SecretCertStore:
    """The webhook certificate shared by every replica in one Secret (``ca.crt``, ``tls.crt``, ``tls.key``).

    ``kube`` is a ``kube.client.Kube`` (blocking; call from a thread).
    """

    def __init__(
        self, kube: Any, namespace: str, name: str, hosts: list[str], validity: datetime.timedelta = VALIDITY
    ) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.hosts, self.validity = hosts, validity
        self.path = f"/api/v1/namespaces/{namespace}/secrets/{name}"

    @staticmethod
    def _decode(secret: dict[str, Any]) -> ServingCert:
        data = secret.get("data") or {}
        return ServingCert(*(base64.b64decode(data.get(k) or "") for k in ("ca.crt", "tls.crt", "tls.key")))

    @staticmethod
    def _data(cert: ServingCert) -> dict[str, str]:
        return {
            k: base64.b64encode(v).decode()
            for k, v in (("ca.crt", cert.ca_pem), ("tls.crt", cert.cert_pem), ("tls.key", cert.key_pem))
        }

    def read(self) -> ServingCert:
        return self._decode(self.kube.request("GET", self.path))

    def load_or_create(self) -> ServingCert:
        """The shared certificate; the first replica to come makes it (a create race: the loser reads)."""
        try:
            return self.read()
        except ApiException as exc:
            if exc.status != 404:
                raise
        cert = make_serving_cert(self.hosts, self.validity)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": self.name, "labels": {"app.kubernetes.io/name": "rollout-controller"}},
            "data": self._data(cert),
        }
        try:
            self.kube.request("POST", f"/api/v1/namespaces/{self.namespace}/secrets", body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            return self.read()
        return cert

    def rotate_if_due(self, publish_bundle: Any) -> ServingCert | None:
        """Rotate a certificate past half its life: ``publish_bundle(ca_pem)`` (the webhook
        configurations trust old and new CA) first, then the Secret. Returns the new one, or None."""
        secret = self.kube.request("GET", self.path)
        current = self._decode(secret)
        if not needs_rotation(current.cert_pem):
            return None
        new = rotated(current, self.hosts, self.validity)
        publish_bundle(new.ca_pem)
        secret["data"] = self._data(new)
        self.kube.request("PUT", self.path, secret)  # resourceVersion: one rotation wins a race
        return new


class CertKeeper:
    """Keeps a live server context on the current certificate; ``check()`` is one look (blocking).

    Source: a ``SecretCertStore`` (shared by replicas), a ``FileCertSource``, or neither (this
    process's own certificate). ``publish(ca_pem)`` writes the webhook configurations' ``caBundle``;
    ``may_rotate()`` says whether this replica may rotate now (the leader, or the only replica).
    Files are never rotated here: whoever writes them (cert-manager) rotates them.
    """

    def __init__(
        self,
        ctx: ssl.SSLContext,
        current: ServingCert,
        *,
        hosts: list[str],
        validity: datetime.timedelta,
        publish: Any,
        may_rotate: Any,
        store: SecretCertStore | None = None,
        files: FileCertSource | None = None,
    ) -> None:
        self.ctx, self.current = ctx, current
        self.hosts, self.validity = hosts, validity
        self.publish, self.may_rotate = publish, may_rotate
        self.store, self.files = store, files
        self.reloads = 0

    def current_expiry(self) -> datetime.datetime:
        return _first_cert(self.current.cert_pem).not_valid_after_utc

    def check(self) -> bool:
        """Rotate when due and allowed; load a changed certificate. True when it loaded one."""
        if self.files is not None:
            latest = self.files.read()
        elif self.store is not None:
            if self.may_rotate():
                self.store.rotate_if_due(self.publish)
            latest = self.store.read()
        elif self.may_rotate() and needs_rotation(self.current.cert_pem):
            latest = rotated(self.current, self.hosts, self.validity)
        else:
            return False
        if latest == self.current:
            return False
        if latest.ca_pem != self.current.ca_pem:
            self.publish(latest.ca_pem)  # trusted before it is served
        load_into(self.ctx, latest.cert_pem, latest.key_pem)
        self.current = latest
        self.reloads += 1
        return True
