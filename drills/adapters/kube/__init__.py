"""The Kubernetes API: the client wrapper, resources, identities and RBAC, the audit log, preflight,
the observer and runbook checks. The only package that imports the kubernetes client.
"""
