"""serve_client layer."""
