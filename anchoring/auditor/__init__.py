"""Auditor tools: verify a proof offline, monitor the whole log. Standard library + cryptography."""
