"""Virtual users on the service graph: what users see each second, from the state of the real cluster.

Why a model and not a load generator: the embedded cluster's pods are kwok's, they serve nothing. What they
do have is the state a real service's users depend on: which pods are ready behind each Service (selector
included), on which nodes, with which env, how many replicas against the load. This module turns that state
into what users would have seen, per second and per feature: requests, errors by code, a latency histogram,
and **users affected** (a user whose request failed or was slower than the latency SLO). The seed's severity
(users affected, Down / Degraded / Slow) and "impact reduced" then come from what users saw.

It works on aggregates, not single requests: each second costs the same for 10,000 users or 100 million,
and deriving the services' state is one pass over the pods and endpoints, done when the cluster changes. The
arithmetic, for one second and one feature:

- the entry service's capacity is ready serving pods x requests/s per pod. Load over capacity is shed (503);
  latency is log-normal (p50, p99 of the graph) stretched by utilisation, ``max(1, 0.5 / (1 - u))``;
- each dependency call fails at once when there is no Service for its host (DNS), no ready pod (connection
  refused), or the dependency sheds or errors; it times out when the dependency is slower than the caller's
  timeout. Retries multiply the wait and divide the failures. A failed call fails the request: 504 after a
  timeout, 503 when it failed at once, 500 when the dependency answered with an error;
- with the seed's circuit breaker enabled (``CIRCUIT_BREAKER_ENABLED=true`` on the calling pods) and a
  dependency failing at or over the threshold, the breaker is open: no call is made, and the feature is
  served degraded (``degrade``) or refused at once (``fail_fast``) instead of waiting for timeouts;
- users: each sends ``requests_per_user_per_minute``; of those active in a second, the share affected is
  ``(1 - exp(-rate * p_bad)) / (1 - exp(-rate))``, ``p_bad`` the share of bad (failed or slow) requests.

Deterministic: the only noise, a small per-second jitter of the request count, is seeded. Pure: plain dicts
(API objects as JSON) in, dataclasses out; no clock, no I/O.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from drills.model.service_graph import CircuitBreaker, DependencyCall, Service, ServiceGraph

Obj = Mapping[str, Any]

#: Annotations faults use to tell the model what a pod, node or workload does to requests.
POD_ERROR_RATE = "impact.drills.io/error-rate"  # share 0-1 of this pod's requests that fail (500)
POD_EXTRA_LATENCY = "impact.drills.io/extra-latency-ms"  # added to every request this pod serves
NODE_PARTITIONED = "impact.drills.io/partitioned"  # "true": the node's pods are cut off from the network
#: On the Service users call: they send this many times the base traffic. Not on the Deployment: the deployment
#: controller copies a Deployment's annotations onto its ReplicaSet and never removes them, and `kubectl rollout
#: undo` copies that ReplicaSet's annotations back, so a spike long reverted would return with a rollback.
LOAD_FACTOR = "impact.drills.io/load-factor"

#: Upper bounds of the latency histogram (seconds), as Prometheus' client library defaults them.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_FAST_FAIL_S = 0.002  # a refused connection or a DNS failure answers in about this long
_Z99 = 2.3263478740408408  # the standard normal's 99th percentile

ServiceStatus = Literal["ok", "slow", "degraded", "down"]


@dataclass(frozen=True)
class ClusterView:
    """The objects the model reads (API JSON dicts), as the observer's caches hold them."""

    pods: Sequence[Obj] = ()
    endpoint_slices: Sequence[Obj] = ()
    nodes: Sequence[Obj] = ()
    services: Sequence[Obj] = ()
    configmaps: Sequence[Obj] = ()


@dataclass(frozen=True)
class ServiceState:
    """One service as its callers see it now."""

    name: str
    #: Ready endpoints behind the Service whose pods can be reached (node Ready, not partitioned).
    serving_pods: int
    error_rate: float = 0.0
    extra_latency_s: float = 0.0
    load_factor: float = 1.0
    #: Share of the serving pods with the circuit breaker enabled, and their mean threshold (percent).
    breaker_share: float = 0.0
    breaker_threshold_pct: float = 50.0
    #: Per dependency service: False when the host the caller reads has no Service (DNS failure).
    resolves: Mapping[str, bool] = field(default_factory=dict)


# ---- the cluster's state -----------------------------------------------------------------------------------


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _key(obj: Obj) -> tuple[str, str]:
    meta = _meta(obj)
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _node_serving(node: Obj) -> bool:
    if (_meta(node).get("annotations") or {}).get(NODE_PARTITIONED) == "true":
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _number(text: Any, default: float, low: float, high: float) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return default
    if math.isnan(value):
        return default
    return min(max(value, low), high)


def _env(pod: Obj) -> dict[str, str]:
    env: dict[str, str] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for item in container.get("env") or []:
            if "value" in item:
                env[str(item.get("name"))] = str(item.get("value"))
    return env


def _resolves(call: DependencyCall, caller: Service, graph: ServiceGraph, view: ClusterView) -> bool:
    target = graph.services[call.service]
    services = {_key(s) for s in view.services}
    if call.host_from is None:
        return (target.namespace, target.service) in services
    host = None
    for cm in view.configmaps:
        if _key(cm) == (caller.namespace, call.host_from.configmap):
            host = (cm.get("data") or {}).get(call.host_from.key)
    if not host:
        return False
    labels = str(host).split(".")
    name = labels[0]
    namespace = labels[1] if len(labels) > 1 and labels[1] != "svc" else caller.namespace
    # The host names a Service that exists (DNS answers) and is the dependency's (not another one's).
    return (namespace, name) in services and (namespace, name) == (target.namespace, target.service)


def derive_states(graph: ServiceGraph, view: ClusterView) -> dict[str, ServiceState]:
    """Each service's state from the cluster's objects: one pass over pods, endpoints and nodes."""
    nodes = {str(_meta(n).get("name")): _node_serving(n) for n in view.nodes}
    pods = {_key(p): p for p in view.pods}
    services = {_key(s): s for s in view.services}
    slices: dict[tuple[str, str], list[Obj]] = {}
    for s in view.endpoint_slices:
        svc = (_meta(s).get("labels") or {}).get("kubernetes.io/service-name")
        if svc:
            slices.setdefault((str(_meta(s).get("namespace", "")), str(svc)), []).append(s)
    states: dict[str, ServiceState] = {}
    for name, svc in graph.services.items():
        serving: list[Obj] = []
        if (svc.namespace, svc.service) in services:
            seen: set[str] = set()
            for s in slices.get((svc.namespace, svc.service), []):
                for ep in s.get("endpoints") or []:
                    conditions = ep.get("conditions") or {}
                    if conditions.get("ready") is False or conditions.get("terminating") is True:
                        continue
                    ref = ep.get("targetRef") or {}
                    pod_name = str(ref.get("name", ""))
                    pod = pods.get((svc.namespace, pod_name))
                    if pod is None or pod_name in seen or _meta(pod).get("deletionTimestamp"):
                        continue
                    node = (pod.get("spec") or {}).get("nodeName") or ep.get("nodeName")
                    if node is not None and not nodes.get(str(node), False):
                        continue
                    seen.add(pod_name)
                    serving.append(pod)
        n = len(serving)
        annotations = [_meta(p).get("annotations") or {} for p in serving]
        error_rate = sum(_number(a.get(POD_ERROR_RATE), 0.0, 0.0, 1.0) for a in annotations) / n if n else 0.0
        extra = (
            sum(_number(a.get(POD_EXTRA_LATENCY), 0.0, 0.0, 600_000.0) for a in annotations) / n if n else 0.0
        )
        breaker = svc.circuit_breaker
        envs = [_env(p) for p in serving]
        enabled = [e for e in envs if e.get(breaker.enabled_env, "").strip().lower() == "true"]
        threshold = (
            sum(
                _number(e.get(breaker.threshold_env), breaker.default_threshold_pct, 0.0, 100.0)
                for e in enabled
            )
            / len(enabled)
            if enabled
            else breaker.default_threshold_pct
        )
        entry = services.get((svc.namespace, svc.service))
        load = (
            _number((_meta(entry).get("annotations") or {}).get(LOAD_FACTOR), 1.0, 0.0, 100.0) if entry else 1.0
        )
        resolves = {
            call.service: _resolves(call, svc, graph, view)
            for feature in svc.features.values()
            for call in feature.calls
        }
        states[name] = ServiceState(
            name=name,
            serving_pods=n,
            error_rate=error_rate,
            extra_latency_s=extra / 1000.0,
            load_factor=load,
            breaker_share=len(enabled) / n if n else 0.0,
            breaker_threshold_pct=threshold,
            resolves=resolves,
        )
    return states


# ---- one second of traffic ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSecond:
    """What users of one feature saw in one second."""

    feature: str
    requests: int
    ok: int
    #: Served without a dependency (the circuit breaker open on ``degrade``): not an error, not the full page.
    degraded: int
    #: HTTP status -> count, errors only (500, 503, 504).
    errors: Mapping[int, int]
    #: Successful requests slower than the latency SLO.
    slow: int
    #: Cumulative counts per bucket of :data:`BUCKETS` (Prometheus' ``le``), then ``+Inf`` (= requests).
    buckets: tuple[int, ...]
    p99_seconds: float
    #: Total seconds the requests took (the histogram's ``_sum``).
    latency_sum_seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class ImpactSecond:
    """One second of the whole population."""

    second: int
    users: int
    users_active: int
    users_affected: int
    features: Mapping[str, FeatureSecond]
    status: ServiceStatus

    @property
    def requests(self) -> int:
        return sum(f.requests for f in self.features.values())

    @property
    def failed(self) -> int:
        return sum(f.failed for f in self.features.values())

    @property
    def affected_ratio(self) -> float:
        """Share of the users active in this second who were affected (0-1)."""
        return self.users_affected / self.users_active if self.users_active else 0.0

    @property
    def error_ratio(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    @property
    def p99_seconds(self) -> float:
        return max((f.p99_seconds for f in self.features.values() if f.requests), default=0.0)

    @property
    def features_down(self) -> list[str]:
        return sorted(name for name, f in self.features.items() if f.requests and f.ok + f.degraded == 0)


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class _LogNormal:
    """A log-normal latency (median ``m`` seconds, shape ``sigma``) plus a constant ``shift``."""

    m: float
    sigma: float
    shift: float = 0.0

    def cdf(self, x: float) -> float:
        y = x - self.shift
        if y <= 0:
            return 0.0
        if self.sigma <= 0:
            return 1.0 if y >= self.m else 0.0
        return _phi((math.log(y) - math.log(self.m)) / self.sigma)

    def over(self, x: float) -> float:
        return 1.0 - self.cdf(x)

    def mean(self) -> float:
        return self.shift + self.m * math.exp(self.sigma**2 / 2)


def _queueing(u: float) -> float:
    """How much slower requests get at utilisation ``u`` (1 up to half load, then a queue builds)."""
    return max(1.0, 0.5 / (1.0 - min(u, 0.98)))


def _latency(svc: Service, state: ServiceState, u: float) -> _LogNormal:
    p50 = svc.latency.p50.total_seconds()
    p99 = svc.latency.p99.total_seconds()
    sigma = (math.log(p99) - math.log(p50)) / _Z99 if p99 > p50 else 0.0
    return _LogNormal(p50 * _queueing(u), sigma, state.extra_latency_s)


@dataclass(frozen=True)
class _CallOutcome:
    """One dependency call of one request, all retries included."""

    fail: float  # probability the call finally fails
    cost: float  # expected seconds it adds to the request
    code: int  # the status a failure gives the request
    degraded: float  # probability the feature is served degraded instead (breaker open, degrade)


def _call(
    call: DependencyCall,
    caller: ServiceState,
    breaker: CircuitBreaker,
    dep_svc: Service,
    dep: ServiceState,
    dep_u: float,
) -> _CallOutcome:
    timeout = call.timeout.total_seconds()
    if not caller.resolves.get(call.service, True) or dep.serving_pods == 0:
        fast, timed_out, erred = 1.0, 0.0, 0.0
        latency = None
    else:
        latency = _latency(dep_svc, dep, dep_u)
        shed = max(0.0, 1.0 - 1.0 / dep_u) if dep_u > 1 else 0.0
        fast = shed
        timed_out = (1.0 - shed) * latency.over(timeout)
        erred = (1.0 - shed - timed_out) * dep.error_rate
    p_fail = min(1.0, fast + timed_out + erred)
    code = 504 if timed_out >= max(fast, erred) else (503 if fast >= erred else 500)
    # The breaker opens on the calling pods that enable it, once failures reach their threshold.
    open_share = caller.breaker_share if p_fail * 100 >= caller.breaker_threshold_pct and p_fail > 0 else 0.0
    attempts = call.retries + 1
    final_fail = p_fail**attempts
    fail_cost = timeout * (timed_out / p_fail) + _FAST_FAIL_S * ((fast + erred) / p_fail) if p_fail else 0.0
    ok_cost = 0.0
    if latency is not None:
        # the mean of a successful call: latencies under the timeout
        ok_cost = min(latency.mean(), timeout)
    # expected time: the failed attempts before the last, then the last (ok or not)
    tries_cost = sum(p_fail**i for i in range(attempts - 1)) * p_fail * fail_cost if attempts > 1 else 0.0
    closed_cost = tries_cost + (1 - final_fail) * ok_cost + final_fail * fail_cost
    closed = 1.0 - open_share
    if breaker.on_open == "degrade":
        return _CallOutcome(closed * final_fail, closed * closed_cost, code, open_share)
    return _CallOutcome(
        closed * final_fail + open_share, closed * closed_cost + open_share * _FAST_FAIL_S, 503, 0.0
    )


def _spike_factor(graph: ServiceGraph, second: int) -> float:
    factor = 1.0
    for spike in graph.users.spikes:
        start = spike.at.total_seconds()
        if start <= second < start + spike.lasting.total_seconds():
            factor *= spike.factor
    return factor


def _jitter(seed: int, second: int, rate: float) -> float:
    """The request count's per-second noise: seeded, about one standard deviation of a Poisson count."""
    if rate <= 0:
        return 0.0
    rng = random.Random(seed * 1_000_003 + second)
    return rng.gauss(0.0, math.sqrt(rate))


def _p99(parts: Sequence[tuple[float, _LogNormal | float]]) -> float:
    """The 99th percentile of a mixture of weighted log-normals and point masses (seconds)."""
    total = sum(w for w, _ in parts)
    if total <= 0:
        return 0.0

    def cdf(x: float) -> float:
        return sum(w * (c.cdf(x) if isinstance(c, _LogNormal) else float(x >= c)) for w, c in parts) / total

    lo, hi = 0.0, 1.0
    while cdf(hi) < 0.99 and hi < 3600:
        hi *= 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if cdf(mid) >= 0.99:
            hi = mid
        else:
            lo = mid
    return hi


def simulate_second(
    graph: ServiceGraph,
    states: Mapping[str, ServiceState],
    second: int,
    *,
    availability_objective: float = 0.999,
    latency_objective: float = 0.99,
) -> ImpactSecond:
    """What users saw in ``second`` (seconds since the drill's T0) with the services in ``states``."""
    users = graph.users
    entry_svc = graph.services[graph.entry]
    entry = states[graph.entry]
    per_user = users.requests_per_user_per_minute / 60.0 * _spike_factor(graph, second) * entry.load_factor
    base_rate = users.population * per_user
    rate = max(0.0, base_rate + _jitter(users.seed, second, base_rate))
    capacity = entry.serving_pods * entry_svc.capacity_rps_per_pod
    u = rate / capacity if capacity else math.inf
    shed = 1.0 if capacity == 0 else (max(0.0, 1.0 - 1.0 / u) if u > 1 else 0.0)
    served_rate = rate * (1.0 - shed)
    # Load each dependency gets from the entry's served requests.
    dep_load: dict[str, float] = {}
    for feature in entry_svc.features.values():
        for call in feature.calls:
            dep_load[call.service] = (
                dep_load.get(call.service, 0.0) + served_rate * feature.share * call.per_request
            )
    dep_u = {
        name: (load / (states[name].serving_pods * graph.services[name].capacity_rps_per_pod))
        if states[name].serving_pods
        else math.inf
        for name, load in dep_load.items()
    }
    entry_latency = _latency(entry_svc, entry, u)
    slo = users.latency_slo.total_seconds()
    features: dict[str, FeatureSecond] = {}
    p_bad_total = 0.0
    for fname, feature in entry_svc.features.items():
        requests = round(rate * feature.share)
        served = requests * (1.0 - shed)
        errors: dict[int, float] = {}
        if shed:
            errors[503] = requests * shed
        ok_p = 1.0 - entry.error_rate
        if entry.error_rate:
            errors[500] = errors.get(500, 0.0) + served * entry.error_rate
        cost = 0.0
        degraded_p = 0.0
        for call in feature.calls:
            outcome = _call(
                call,
                entry,
                entry_svc.circuit_breaker,
                graph.services[call.service],
                states[call.service],
                dep_u.get(call.service, 0.0),
            )
            # per_request calls, each must succeed
            n = call.per_request
            fail = 1.0 - (1.0 - outcome.fail) ** n
            degraded_p = 1.0 - (1.0 - degraded_p) * (1.0 - outcome.degraded) ** n
            lost = served * ok_p * fail
            if lost:
                errors[outcome.code] = errors.get(outcome.code, 0.0) + lost
            ok_p *= 1.0 - fail
            cost += n * outcome.cost
        good = served * ok_p
        degraded = good * degraded_p
        latency = _LogNormal(entry_latency.m, entry_latency.sigma, entry_latency.shift + cost)
        slow = good * latency.over(slo)
        failed = {code: round(count) for code, count in errors.items() if round(count) > 0}
        failed_latency = entry_latency.shift + cost  # failures wait about as long as the calls did
        parts: list[tuple[float, _LogNormal | float]] = [(good, latency)]
        if failed:
            parts.append((float(sum(failed.values())), max(failed_latency, _FAST_FAIL_S)))
        buckets = tuple(
            round(good * latency.cdf(b) + (sum(failed.values()) if failed_latency <= b else 0))
            for b in BUCKETS
        )
        ok = max(0, requests - sum(failed.values()))
        features[fname] = FeatureSecond(
            feature=fname,
            requests=requests,
            ok=ok - round(degraded),
            degraded=round(degraded),
            errors=failed,
            slow=min(ok, round(slow)),
            buckets=(*buckets, requests),
            p99_seconds=_p99(parts),
            latency_sum_seconds=good * latency.mean()
            + sum(failed.values()) * max(failed_latency, _FAST_FAIL_S),
        )
        bad = (sum(errors.values()) + slow) / requests if requests else 0.0
        p_bad_total += feature.share * min(1.0, bad)
    active = users.population * (1.0 - math.exp(-per_user)) if per_user else 0.0
    affected = users.population * (1.0 - math.exp(-per_user * p_bad_total)) if per_user else 0.0
    total = sum(f.requests for f in features.values())
    failed_total = sum(f.failed for f in features.values())
    good_total = sum(f.ok + f.degraded for f in features.values())
    slow_total = sum(f.slow for f in features.values())
    if total and good_total == 0:
        status: ServiceStatus = "down"
    elif total and failed_total / total > 1.0 - availability_objective:
        status = "degraded"
    elif good_total and slow_total / good_total > 1.0 - latency_objective:
        status = "slow"
    else:
        status = "ok"
    return ImpactSecond(
        second=second,
        users=users.population,
        users_active=round(active),
        users_affected=min(round(active), round(affected)),
        features=features,
        status=status,
    )
