"""Datasets: immutable versions, the publishing actions, validation and the REST API."""
