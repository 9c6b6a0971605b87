"""rayservice: run Ray Serve applications as declarative, self-healing services.

A KubeRay-style ``RayService`` manifest goes in; a real Ray cluster serving its Serve
applications behind a stable HTTP endpoint comes out. See ``docs/architecture.md`` for the
layers and the main flows.
"""

__version__ = "0.3.0"
