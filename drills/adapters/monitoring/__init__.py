"""The detection chain's processes: Prometheus and Alertmanager (config rendering, the process stack,
queries) and the kube-state-metrics-style exporter.
"""
