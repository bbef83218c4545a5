"""The service graph: what users call, what it calls in turn, and how much each part can take.

The seed judges an incident by what users see (users affected, Down / Degraded / Slow), so a drill needs
users. drills simulates them (:mod:`drills.engine.impact`) on top of the real cluster: the graph says which
Deployment and Service stand behind each service, how many requests per second one ready pod serves and how
fast, which features users use and which dependencies each feature calls, with what timeout and retries, and
what the seed's circuit-breaker switches (``CIRCUIT_BREAKER_ENABLED`` / ``_THRESHOLD`` / ``_TIMEOUT``, set with
``kubectl set env``) change when a dependency fails: fail fast, or degrade the feature instead of failing the
request.

A graph is YAML (``fixtures/service-graph.yaml`` for the runbook's world), validated like scenarios
(``extra="forbid"``, line-numbered errors); a scenario may extend or override it (``service_graph:``). No I/O
here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drills.model.durations import Duration

_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(_Strict):
    """Response time of one request served by a pod at low utilisation (log-normal: two quantiles)."""

    p50: Duration = Field(description="Median latency at low utilisation.")
    p99: Duration = Field(description="99th percentile at low utilisation; at least p50.")

    @model_validator(mode="after")
    def _ordered(self) -> Latency:
        if self.p99 < self.p50:
            raise ValueError("p99 must be at least p50")
        if self.p50 <= timedelta(0):
            raise ValueError("p50 must be more than 0s")
        return self


class HostFrom(_Strict):
    """Where the caller reads the dependency's address (a ConfigMap key, as the app reads DB_HOST)."""

    configmap: str = Field(pattern=_NAME)
    key: str = Field(min_length=1, max_length=253)


class DependencyCall(_Strict):
    """A feature's calls to another service of the graph, for each request users make."""

    service: str = Field(pattern=_NAME, description="The service called (a key of `services`).")
    per_request: float = Field(default=1.0, gt=0, le=100, description="Calls per user request.")
    timeout: Duration = Field(default=timedelta(seconds=1), description="The caller gives up after this.")
    retries: int = Field(default=0, ge=0, le=10, strict=True, description="Retries after a failed call.")
    host_from: HostFrom | None = Field(
        default=None,
        description="Read the dependency's host from a ConfigMap: a host with no Service behind it is a DNS "
        "failure (calls fail at once).",
    )


class Feature(_Strict):
    """Something users do (checkout, cart, browse): its share of requests and the calls it makes."""

    share: float = Field(gt=0, le=1, description="Share of user requests, 0-1; shares add up to 1.")
    calls: list[DependencyCall] = Field(default_factory=list)


class CircuitBreaker(_Strict):
    """What the seed's circuit-breaker env changes when a dependency fails (read from the workload's env).

    Closed (the default, or ``CIRCUIT_BREAKER_ENABLED`` not ``true``): every call is tried and waits for its
    timeout. Open (enabled, and the dependency's failed share of calls at or over ``_THRESHOLD`` percent): no
    call is made; ``on_open`` says what users get instead: ``degrade`` serves the feature without the
    dependency (a degraded page, not an error), ``fail_fast`` answers 503 at once instead of after the timeout.
    """

    enabled_env: str = "CIRCUIT_BREAKER_ENABLED"
    threshold_env: str = "CIRCUIT_BREAKER_THRESHOLD"
    timeout_env: str = "CIRCUIT_BREAKER_TIMEOUT"
    default_threshold_pct: float = Field(default=50, gt=0, le=100)
    on_open: Literal["degrade", "fail_fast"] = "degrade"


class Service(_Strict):
    """One service of the graph and the Kubernetes objects behind it."""

    namespace: str = Field(default="production", pattern=_NAME)
    deployment: str = Field(pattern=_NAME, description="The Deployment whose pods serve it.")
    service: str = Field(pattern=_NAME, description="The Service in front of it (its endpoints are used).")
    capacity_rps_per_pod: float = Field(gt=0, le=1_000_000, description="Requests/s one ready pod serves.")
    latency: Latency
    features: dict[str, Feature] = Field(
        default_factory=dict, description="What users do here; empty for a service only others call."
    )
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)

    @model_validator(mode="after")
    def _shares(self) -> Service:
        if self.features:
            total = sum(f.share for f in self.features.values())
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"feature shares must add up to 1 (they add up to {total:g})")
        return self


class Spike(_Strict):
    """More traffic for a while: ``factor`` times the base rate from ``at`` (after T0) for ``lasting``."""

    at: Duration
    lasting: Duration
    factor: float = Field(gt=0, le=100)


class Users(_Strict):
    """The virtual user population: how many, how often each sends a request, spikes."""

    population: int = Field(default=10_000, ge=1, le=100_000_000, strict=True)
    requests_per_user_per_minute: float = Field(default=6.0, gt=0, le=6000)
    spikes: list[Spike] = Field(default_factory=list)
    latency_slo: Duration = Field(
        default=timedelta(milliseconds=500),
        description="A request slower than this broke the latency SLO: its user counts as affected.",
    )
    seed: int = Field(default=0, strict=True, description="Seeds the per-second noise of the traffic.")


class ServiceGraph(_Strict):
    """Services, the entry service users call, and the user population."""

    entry: str = Field(pattern=_NAME, description="The service users call (a key of `services`).")
    services: dict[str, Service]
    users: Users = Field(default_factory=Users)

    @model_validator(mode="after")
    def _references(self) -> ServiceGraph:
        if self.entry not in self.services:
            raise ValueError(f"entry {self.entry!r} is not one of the services ({', '.join(self.services)})")
        if not self.services[self.entry].features:
            raise ValueError(f"the entry service {self.entry!r} needs features (what users do)")
        for name, svc in self.services.items():
            for fname, feature in svc.features.items():
                for call in feature.calls:
                    if call.service not in self.services:
                        raise ValueError(
                            f"services.{name}.features.{fname}: calls {call.service!r}, which is not a service"
                        )
                    if call.service == name:
                        raise ValueError(f"services.{name}.features.{fname}: a service cannot call itself")
        return self

    def merged(self, override: ServiceGraphOverride | None) -> ServiceGraph:
        """This graph with a scenario's changes: services added, a service's fields replaced (its
        features merged one by one), the users' fields replaced. Raises ValueError when the result is not a
        valid graph (a new service without its deployment, shares that no longer add up)."""
        if override is None:
            return self
        services = dict(self.services)
        for name, patch in override.services.items():
            changes = patch.model_dump(exclude_unset=True, exclude={"features"})
            base = services.get(name)
            if base is None:
                missing = [
                    f
                    for f in ("deployment", "service", "capacity_rps_per_pod", "latency")
                    if f not in changes
                ]
                if missing:
                    raise ValueError(
                        f"services.{name}: a new service needs {', '.join(missing)} (it is not in the world's graph)"
                    )
                data = changes
                data["features"] = dict(patch.features or {})
            else:
                data = {**base.model_dump(), **changes}
                data["features"] = {**base.features, **(patch.features or {})}
            services[name] = Service.model_validate(data)
        users = self.users
        if override.users is not None:
            users = Users.model_validate(
                {**self.users.model_dump(), **override.users.model_dump(exclude_unset=True)}
            )
        return ServiceGraph(entry=override.entry or self.entry, services=services, users=users)


class ServicePatch(_Strict):
    """A scenario's change to one service: any field of :class:`Service`; ``features`` are merged by name."""

    namespace: str | None = Field(default=None, pattern=_NAME)
    deployment: str | None = Field(default=None, pattern=_NAME)
    service: str | None = Field(default=None, pattern=_NAME)
    capacity_rps_per_pod: float | None = Field(default=None, gt=0, le=1_000_000)
    latency: Latency | None = None
    features: dict[str, Feature] | None = None
    circuit_breaker: CircuitBreaker | None = None


class UsersPatch(_Strict):
    """A scenario's change to the users: any field of :class:`Users`."""

    population: int | None = Field(default=None, ge=1, le=100_000_000, strict=True)
    requests_per_user_per_minute: float | None = Field(default=None, gt=0, le=6000)
    spikes: list[Spike] | None = None
    latency_slo: Duration | None = None
    seed: int | None = Field(default=None, strict=True)


class ServiceGraphOverride(_Strict):
    """A scenario's ``service_graph:``: extends or overrides the world's graph (see :meth:`ServiceGraph.merged`)."""

    entry: str | None = Field(default=None, pattern=_NAME)
    services: dict[str, ServicePatch] = Field(default_factory=dict)
    users: UsersPatch | None = None
