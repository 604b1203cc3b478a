"""Cross-pod pub/sub health: the agent beside each app pod, the wire protocol, and the pure verdict."""
