"""Talking to a Kubernetes API server: one Protocol (``KubernetesApi``), the lightkube client
behind it, and a fake for unit tests. What to send is built in :mod:`rayservice.kubernetes`."""
