"""Client certificates and kubeconfigs for drills' identities, signed by a CA made here (the cluster part,
RBAC and the API server's 403, is in tests/test_faults_cluster.py)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drills.adapters.kube import identities as ids_mod
from drills.adapters.kube.client import Kube
from drills.errors import EnvironmentProblem
from drills.model.events import ActorKind
from drills.timing import FakeClock


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt, k = tmp_path / "ca.crt", tmp_path / "ca.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return crt, k


def test_certificate_names_user_and_group_and_is_signed_by_the_ca(ca: tuple[Path, Path]) -> None:
    clock = FakeClock(datetime(2026, 3, 3, 12, 0, tzinfo=UTC))
    cert_pem, key_pem = ids_mod.issue_certificate(
        "drills:responder:ana", ["drills:responders"], ca_cert=ca[0], ca_key=ca[1], clock=clock
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "drills:responder:ana"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "drills:responders"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert cert.not_valid_after_utc == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    cert.verify_directly_issued_by(ca_cert)  # raises if the signature is not the CA's
    assert isinstance(serialization.load_pem_private_key(key_pem, None), ec.EllipticCurvePrivateKey)


def test_issue_identities_writes_private_loadable_kubeconfigs(ca: tuple[Path, Path], tmp_path: Path) -> None:
    ids = ids_mod.issue_identities(
        ca_cert=ca[0],
        ca_key=ca[1],
        server="https://127.0.0.1:6443",
        context="drills-test",
        directory=tmp_path / "ids",
        responder="Ana Lopez",
        namespaces=["production"],
    )
    assert ids.responder.user == "drills:responder:Ana-Lopez"
    assert [i.actor_kind for i in ids.all()] == [ActorKind.DRILLS, ActorKind.RESPONDER, ActorKind.BOT]
    for ident in ids.all():
        assert stat.S_IMODE(ident.kubeconfig.stat().st_mode) == 0o600
        cfg = yaml.safe_load(ident.kubeconfig.read_text())
        assert cfg["current-context"] == "drills-test"
        kube = Kube(ident.kubeconfig)  # the client accepts it
        assert kube.server == "https://127.0.0.1:6443"
        kube.close()
    again = ids_mod.Identities.load(tmp_path / "ids")
    assert again.responder == ids.responder and again.namespaces == ("production",)
    assert again.actor_kind("drills:bot") == ActorKind.BOT
    assert again.actor_kind("drills:responder:someone-else") == ActorKind.RESPONDER
    assert again.actor_kind("kwok-admin") is None


def test_missing_ca_is_an_environment_problem(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="cannot read the cluster CA"):
        ids_mod.issue_certificate("x", [], ca_cert=tmp_path / "nope.crt", ca_key=tmp_path / "nope.key")


def test_responder_rbac_rules_never_grant_cluster_wide_writes_except_named_nodes() -> None:
    rules = ids_mod._cluster_rules(["node-a1", "node-b1"])
    writes = [r for r in rules if set(r["verbs"]) - {"get", "list", "watch"}]
    assert {tuple(r["resources"]) for r in writes} == {("nodes",), ("namespaces",)}
    node_write = next(r for r in writes if r["resources"] == ["nodes"] and "patch" in r["verbs"])
    assert node_write["resourceNames"] == ["node-a1", "node-b1"]
