"""Cost of the virtual-user model per simulated second, at 10,000 and 1,000,000 users, 10 and 1,000 pods.

The drill runs the model once a second (1 s resolution). Each simulated second here re-derives every service's
state from the cluster's objects (the worst case: in a drill that happens only when the cluster changed) and
simulates the second. Goal (issue #14): 1,000,000 users and 1,000 pods within 5 % of one core, i.e. at most
50 ms of CPU per simulated second. It prints figures; it is not a timed test.

    .venv/bin/python benchmarks/bench_impact.py [--seconds 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from drills.adapters.files.impact import load_service_graph
from drills.engine.impact import ClusterView, derive_states, simulate_second
from drills.model.service_graph import ServiceGraph

ROOT = Path(__file__).resolve().parent.parent


def view(pods: int) -> ClusterView:
    """``pods`` app pods (90 %) and db-proxy pods (10 %) spread over 50 nodes, all ready."""
    ns = "production"
    nodes = [
        {"metadata": {"name": f"node-{i}"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        for i in range(50)
    ]
    objs: dict[str, list[dict[str, Any]]] = {"app": [], "db-proxy": []}
    for i in range(pods):
        app = "db-proxy" if i % 10 == 0 else "app"
        objs[app].append(
            {
                "metadata": {"name": f"{app}-{i}", "namespace": ns, "annotations": {}},
                "spec": {"nodeName": f"node-{i % 50}", "containers": [{"name": app, "env": [{"name": "FAULT", "value": ""}]}]},
            }
        )
    slices = [
        {
            "metadata": {"name": f"{svc}-{k}", "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
            "endpoints": [
                {"conditions": {"ready": True}, "targetRef": {"name": p["metadata"]["name"]}, "nodeName": p["spec"]["nodeName"]}
                for p in plist[k : k + 100]
            ],
        }
        for svc, plist in objs.items()
        for k in range(0, len(plist), 100)
    ]
    return ClusterView(
        pods=objs["app"] + objs["db-proxy"],
        endpoint_slices=slices,
        nodes=nodes,
        services=[{"metadata": {"name": s, "namespace": ns}} for s in objs],
        configmaps=[{"metadata": {"name": "app-config", "namespace": ns}, "data": {"DB_HOST": "db-proxy.production.svc.cluster.local"}}],
    )


def with_population(graph: ServiceGraph, users: int, pods: int) -> ServiceGraph:
    # Capacity grows with the pods so the world stays healthy at every size (the cost is what is measured).
    per_pod = max(1.0, users * 0.1 * 2 / max(1, pods))
    services = {
        name: svc.model_copy(update={"capacity_rps_per_pod": per_pod * (4 if name == "db-proxy" else 1)})
        for name, svc in graph.services.items()
    }
    return graph.model_copy(update={"users": graph.users.model_copy(update={"population": users}), "services": services})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    args = parser.parse_args()
    base = load_service_graph(ROOT / "fixtures" / "service-graph.yaml")
    print(f"{'users':>10} {'pods':>6} {'CPU ms/simulated s':>20} {'of one core':>12} {'derive ms':>10} {'simulate ms':>12}")
    for users in (10_000, 1_000_000):
        for pods in (10, 1000):
            graph = with_population(base, users, pods)
            v = view(pods)
            derive: list[float] = []
            simulate: list[float] = []
            for s in range(args.seconds):
                t0 = time.process_time()
                states = derive_states(graph, v)
                t1 = time.process_time()
                second = simulate_second(graph, states, s)
                t2 = time.process_time()
                derive.append(t1 - t0)
                simulate.append(t2 - t1)
            assert second.status == "ok", second
            d = statistics.mean(derive) * 1000
            m = statistics.mean(simulate) * 1000
            print(f"{users:>10,} {pods:>6} {d + m:>20.3f} {(d + m) / 10:>11.2f}% {d:>10.3f} {m:>12.3f}")


if __name__ == "__main__":
    main()
