"""Code that runs inside Ray's autoscaler (its monitor process), beside a cluster's head."""
