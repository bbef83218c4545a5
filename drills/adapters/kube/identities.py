"""Separate identities for drills itself, the responder and the bot, each with its own client certificate.

On the embedded cluster every component shares one admin identity, so neither the audit log nor RBAC could
tell a trainee's ``kubectl`` from drills' own fault injection. drills therefore signs a client certificate
per actor with the cluster's CA (the API server trusts it as ``--client-ca-file``):

- ``drills:injector`` (group ``drills:system``): drills' faults and reverts; cluster-admin, because the
  safety rails are in drills' code and a revert must be able to restore a deleted namespace;
- ``drills:responder:<name>`` (group ``drills:responders``): the trainee; RBAC lets it change objects only
  in the drill's namespaces (a RoleBinding per namespace) and patch only the drill's nodes, plus the
  cluster-wide reads ``kubectl drain`` needs (pods, nodes). Anything else, the API server itself refuses
  with 403, which drills reports as :class:`Forbidden`;
- ``drills:bot`` (group ``drills:responders``): the scripted responder, the same rights as a trainee.

Each gets a kubeconfig file (mode 0600) under the drill's directory; the audit log names the user, which is
how the observer tells who did what (:meth:`Identities.actor_kind`).
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drills.adapters.kube import resources as r
from drills.adapters.kube.client import Kube
from drills.errors import ClusterError, EnvironmentProblem
from drills.model.events import ActorKind
from drills.timing import SYSTEM_CLOCK, Clock

INJECTOR_USER = "drills:injector"
BOT_USER = "drills:bot"
RESPONDER_PREFIX = "drills:responder:"
SYSTEM_GROUP = "drills:system"
RESPONDERS_GROUP = "drills:responders"

#: RBAC object names; all labelled managed-by drills so they are easy to find and remove.
RESPONDER_ROLE = "drills:responder"
RESPONDER_CLUSTER_ROLE = "drills:responder-cluster"
RESPONDER_BINDING = "drills:responders"
INJECTOR_BINDING = "drills:injector"
MANAGED_BY = {"app.kubernetes.io/managed-by": "drills"}

IDENTITIES_FILE = "identities.json"

_ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
_READ = ["get", "list", "watch"]

#: What a responder may do inside a drill namespace (bound there by a RoleBinding).
RESPONDER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["apps"],
        "resources": [
            "deployments",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
            "daemonsets",
        ],
        "verbs": _ALL_VERBS,
    },
    {
        "apiGroups": [""],
        "resources": [
            "pods",
            "services",
            "endpoints",
            "configmaps",
            "secrets",
            "persistentvolumeclaims",
            "serviceaccounts",
        ],
        "verbs": _ALL_VERBS,
    },
    {"apiGroups": [""], "resources": ["pods/log", "pods/status"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": [""],
        "resources": ["pods/eviction", "pods/exec", "pods/portforward"],
        "verbs": ["create", "get"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": _READ},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": _READ},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _ALL_VERBS},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _ALL_VERBS},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _ALL_VERBS},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": _READ},
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]},
]


def _cluster_rules(nodes: Sequence[str] | None) -> list[dict[str, Any]]:
    node_write: dict[str, Any] = {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch", "update"]}
    if nodes:
        node_write["resourceNames"] = sorted(nodes)
    return [
        # reads `kubectl get nodes`, `kubectl drain` (pods on a node, in every namespace) and `top` need
        {"apiGroups": [""], "resources": ["nodes"], "verbs": _READ},
        node_write,
        {"apiGroups": [""], "resources": ["pods"], "verbs": _READ},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": _READ},
        # restoring a lost namespace from its backup manifests starts with creating the namespace
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]},
        {"apiGroups": ["metrics.k8s.io"], "resources": ["nodes", "pods"], "verbs": ["get", "list"]},
    ]


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...]
    actor_kind: ActorKind
    kubeconfig: Path
    context: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kubeconfig"] = str(self.kubeconfig)
        d["actor_kind"] = self.actor_kind.value
        d["groups"] = list(self.groups)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Identity:
        return cls(
            d["user"], tuple(d["groups"]), ActorKind(d["actor_kind"]), Path(d["kubeconfig"]), d["context"]
        )


@dataclass(frozen=True)
class Identities:
    injector: Identity
    responder: Identity
    bot: Identity
    namespaces: tuple[str, ...] = ()
    nodes: tuple[str, ...] | None = None
    directory: Path | None = field(default=None, compare=False)

    def all(self) -> list[Identity]:
        return [self.injector, self.responder, self.bot]

    def actor_kind(self, username: str | None) -> ActorKind | None:
        """Whose user name this is: one of ours, or None (someone else: a controller, an admin...)."""
        if not username:
            return None
        for ident in self.all():
            if ident.user == username:
                return ident.actor_kind
        if username.startswith(RESPONDER_PREFIX):
            return ActorKind.RESPONDER  # a responder of an earlier drill on the same cluster
        return None

    def save(self, directory: Path) -> Path:
        data = {
            "injector": self.injector.to_dict(),
            "responder": self.responder.to_dict(),
            "bot": self.bot.to_dict(),
            "namespaces": list(self.namespaces),
            "nodes": None if self.nodes is None else list(self.nodes),
        }
        path = directory / IDENTITIES_FILE
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path) -> Identities:
        path = directory / IDENTITIES_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise EnvironmentProblem(f"cannot read drill identities {path}: {e}") from e
        return cls(
            Identity.from_dict(data["injector"]),
            Identity.from_dict(data["responder"]),
            Identity.from_dict(data["bot"]),
            tuple(data.get("namespaces") or ()),
            None if data.get("nodes") is None else tuple(data["nodes"]),
            directory,
        )


def _load_ca(ca_cert: Path, ca_key: Path) -> tuple[x509.Certificate, Any]:
    try:
        with warnings.catch_warnings():
            # kwokctl's CA has a negative serial number, which cryptography warns about but still reads
            warnings.filterwarnings("ignore", message=".*serial number.*")
            cert = x509.load_pem_x509_certificate(ca_cert.read_bytes())
        key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise EnvironmentProblem(
            f"cannot read the cluster CA ({ca_cert}, {ca_key}): {e}",
            hint="separate identities need the embedded cluster's CA; is it up (`drill cluster status`)?",
        ) from e
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise EnvironmentProblem(f"the cluster CA key {ca_key} is neither RSA nor EC: cannot sign with it")
    return cert, key


def _pem_b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def issue_certificate(
    user: str,
    groups: Iterable[str],
    *,
    ca_cert: Path,
    ca_key: Path,
    clock: Clock = SYSTEM_CLOCK,
    validity: timedelta = timedelta(days=7),
) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for a client ``user`` in ``groups``, signed by the cluster CA."""
    ca, signer = _load_ca(ca_cert, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, user)]
        + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    )
    now = clock.now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # the API server's clock may be a little behind
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(signer, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_kubeconfig(
    path: Path, *, server: str, ca_cert: Path, context: str, user: str, cert_pem: bytes, key_pem: bytes
) -> Path:
    """A self-contained kubeconfig (certificates embedded), readable by its owner only."""
    cluster = f"{context}-cluster"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _pem_b64(ca_cert.read_bytes())},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _pem_b64(cert_pem), "client-key-data": _pem_b64(key_pem)},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-") or "trainee"


def issue_identities(
    *,
    ca_cert: Path,
    ca_key: Path,
    server: str,
    context: str,
    directory: Path,
    responder: str = "trainee",
    namespaces: Sequence[str] = (),
    nodes: Sequence[str] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Identities:
    """Sign a certificate per actor and write their kubeconfigs under ``directory`` (no RBAC yet: see
    :func:`grant`). The kubeconfigs keep the cluster's context name, so the context allow-list applies."""
    specs = [
        (INJECTOR_USER, (SYSTEM_GROUP,), ActorKind.DRILLS, "injector"),
        (f"{RESPONDER_PREFIX}{_safe(responder)}", (RESPONDERS_GROUP,), ActorKind.RESPONDER, "responder"),
        (BOT_USER, (RESPONDERS_GROUP,), ActorKind.BOT, "bot"),
    ]
    made = []
    for user, groups, kind, file_stem in specs:
        cert_pem, key_pem = issue_certificate(user, groups, ca_cert=ca_cert, ca_key=ca_key, clock=clock)
        path = write_kubeconfig(
            directory / f"{file_stem}.kubeconfig",
            server=server,
            ca_cert=ca_cert,
            context=context,
            user=user,
            cert_pem=cert_pem,
            key_pem=key_pem,
        )
        made.append(Identity(user, groups, kind, path, context))
    ids = Identities(
        made[0], made[1], made[2], tuple(namespaces), None if nodes is None else tuple(nodes), directory
    )
    ids.save(directory)
    return ids


def _apply(kube: Kube, obj: dict[str, Any]) -> None:
    """Create, or replace the parts we own (rules, subjects, roleRef) when it exists."""
    meta = obj["metadata"]
    current = r.get(kube, obj["kind"], meta["name"], meta.get("namespace"))
    if current is None:
        r.create(kube, obj)
        return
    changed = False
    for key in ("rules", "subjects"):
        if key in obj and current.get(key) != obj[key]:
            current[key] = obj[key]
            changed = True
    if "roleRef" in obj and current.get("roleRef") != obj["roleRef"]:
        # roleRef is immutable: replace the binding
        r.delete(kube, obj["kind"], meta["name"], meta.get("namespace"))
        r.create(kube, obj)
        return
    if changed:
        r.replace(kube, current)


def _subjects(ids: Identities) -> list[dict[str, str]]:
    return [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": ids.responder.user},
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": ids.bot.user},
    ]


def grant(admin: Kube, ids: Identities, *, namespaces: Sequence[str] | None = None) -> None:
    """Create or update the identities' RBAC (idempotent: call again after a namespace is recreated)."""
    namespaces = list(namespaces if namespaces is not None else ids.namespaces)
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole"}
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": RESPONDER_ROLE, "labels": MANAGED_BY},
            "rules": RESPONDER_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": RESPONDER_CLUSTER_ROLE, "labels": MANAGED_BY},
            "rules": _cluster_rules(ids.nodes),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": RESPONDER_CLUSTER_ROLE, "labels": MANAGED_BY},
            "roleRef": {**role_ref, "name": RESPONDER_CLUSTER_ROLE},
            "subjects": _subjects(ids),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": INJECTOR_BINDING, "labels": MANAGED_BY},
            "roleRef": {**role_ref, "name": "cluster-admin"},
            "subjects": [
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": ids.injector.user}
            ],
        },
    ]
    for ns in namespaces:
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": RESPONDER_BINDING, "namespace": ns, "labels": MANAGED_BY},
                "roleRef": {**role_ref, "name": RESPONDER_ROLE},
                "subjects": _subjects(ids),
            }
        )
    for obj in objects:
        try:
            _apply(admin, obj)
        except ClusterError as e:
            raise ClusterError(
                f"cannot set up RBAC for the drill identities ({r.ref(obj)}): {e.message}",
                hint="the admin kubeconfig must be able to manage RBAC; on the embedded cluster it can",
            ) from e


def revoke(admin: Kube, ids: Identities, *, namespaces: Sequence[str] | None = None) -> None:
    """Remove the identities' bindings, and those of people who joined (the ClusterRoles stay)."""
    people = _people(ids.directory) if ids.directory is not None else []
    for ns in namespaces if namespaces is not None else ids.namespaces:
        r.delete(admin, "RoleBinding", RESPONDER_BINDING, ns)
        for safe in people:
            r.delete(admin, "RoleBinding", f"{PERSON_BINDING_PREFIX}{safe}", ns)
    r.delete(admin, "ClusterRoleBinding", RESPONDER_CLUSTER_ROLE)
    for safe in people:
        r.delete(admin, "ClusterRoleBinding", f"{PERSON_BINDING_PREFIX}{safe}")


# ---- people who join a served drill (drill serve) ---------------------------------------------------------

PEOPLE_DIR = "people"
PERSON_BINDING_PREFIX = "drills:person:"


def person_kubeconfig_path(directory: Path, person: str) -> Path:
    return directory / PEOPLE_DIR / f"{_safe(person)}.kubeconfig"


def _people(directory: Path) -> list[str]:
    d = directory / PEOPLE_DIR
    return sorted(p.stem for p in d.glob("*.kubeconfig")) if d.is_dir() else []


def issue_person(
    admin: Kube,
    ids: Identities,
    person: str,
    *,
    ca_cert: Path,
    ca_key: Path,
    server: str,
    clock: Clock = SYSTEM_CLOCK,
) -> Identity:
    """One more responder, ``drills:responder:<person>``, with the drill responder's RBAC: a person who
    joined a served drill, so the audit log names them. Bound by name, so :func:`revoke` unbinds them."""
    if ids.directory is None:
        raise EnvironmentProblem("the drill's identities have no directory to keep a person's kubeconfig in")
    safe = _safe(person)
    user = f"{RESPONDER_PREFIX}{safe}"
    cert_pem, key_pem = issue_certificate(
        user, (RESPONDERS_GROUP,), ca_cert=ca_cert, ca_key=ca_key, clock=clock
    )
    role_ref: dict[str, Any] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole"}
    subject = [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}]
    name = f"{PERSON_BINDING_PREFIX}{safe}"
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": MANAGED_BY},
            "roleRef": {**role_ref, "name": RESPONDER_CLUSTER_ROLE},
            "subjects": subject,
        },
    ]
    for ns in ids.namespaces:
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": ns, "labels": MANAGED_BY},
                "roleRef": {**role_ref, "name": RESPONDER_ROLE},
                "subjects": subject,
            }
        )
    for obj in objects:
        try:
            _apply(admin, obj)
        except ClusterError as e:
            raise ClusterError(
                f"cannot grant {person} their drill identity ({r.ref(obj)}): {e.message}",
                hint="the admin kubeconfig must be able to manage RBAC; on the embedded cluster it can",
            ) from e
    path = write_kubeconfig(
        person_kubeconfig_path(ids.directory, person),
        server=server,
        ca_cert=ca_cert,
        context=ids.responder.context,
        user=user,
        cert_pem=cert_pem,
        key_pem=key_pem,
    )
    return Identity(user, (RESPONDERS_GROUP,), ActorKind.RESPONDER, path, ids.responder.context)


def setup(
    admin: Kube,
    *,
    ca_cert: Path,
    ca_key: Path,
    server: str,
    context: str,
    directory: Path,
    responder: str = "trainee",
    namespaces: Sequence[str],
    nodes: Sequence[str] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Identities:
    """Issue the three identities and grant their RBAC: what the runner calls at the start of a drill."""
    ids = issue_identities(
        ca_cert=ca_cert,
        ca_key=ca_key,
        server=server,
        context=context,
        directory=directory,
        responder=responder,
        namespaces=namespaces,
        nodes=nodes,
        clock=clock,
    )
    grant(admin, ids)
    return ids


def actor_kind_for(username: str | None, user_agent: str | None, ids: Identities | None) -> ActorKind:
    """Who made a request, from the audit log's user and user agent.

    Our identities first; then the components: their user agents name them (``kube-controller-manager/...``,
    ``kube-scheduler/...``, ``kwok-controller/...``), and ``system:`` users are the cluster's own. Anything
    else (the admin kubeconfig used by hand, say) is unknown: never credited to the responder.
    """
    if ids is not None:
        kind = ids.actor_kind(username)
        if kind is not None:
            return kind
    elif username == INJECTOR_USER:
        return ActorKind.DRILLS
    elif username == BOT_USER:
        return ActorKind.BOT
    elif username and username.startswith(RESPONDER_PREFIX):
        return ActorKind.RESPONDER
    agent = (user_agent or "").lower()
    if agent.startswith(
        ("kube-controller-manager", "kube-scheduler", "kwok", "kube-apiserver", "metrics-server")
    ):
        return ActorKind.CONTROLLER
    if username and username.startswith("system:"):
        return ActorKind.CONTROLLER
    return ActorKind.UNKNOWN
