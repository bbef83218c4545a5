"""Drill clusters: the facade (up, down, status), the embedded kwokctl cluster, kind, the Go-built
binaries and the runbook's world (fixtures).
"""
