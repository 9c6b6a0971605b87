"""Facts about this machine: its processes and its loopback ports.

The local cluster provider, the HAProxy front and the command line all start detached
processes, recognise them again after a controller restart, stop them, and check which ports
are free. Those answers come from the operating system (``/proc``, signals, ``bind``), not
from anything a RayService says, so they live here once, below the adapters and above the
model, instead of once per adapter.
"""
