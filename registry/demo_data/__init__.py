"""Data files of the demo catalogue (package data, so wheels carry them)."""
