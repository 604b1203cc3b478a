"""Synchro: give self-hosted apps the Redis they need to scale out, and prove their replicas stay in sync."""

__version__ = "0.1.0"
