"""Erasure: revoke, manifest and track everything built from a source (see ``service``)."""
