"""The Kubernetes objects a manifest becomes on a Kubernetes cluster with KubeRay's operator.

Pure builders, no client: a RayCluster custom resource per cluster of a service, the Services in
front of them, the Gateway API objects that weigh traffic between two clusters, and the Secrets
and ConfigMaps a manifest brings. ``rayservice render`` prints them; a Kubernetes backend applies
them. Kept apart from the planner (which stays backend-free) and from any client, so that what
is applied and what is reviewed are built by the same code.
"""
