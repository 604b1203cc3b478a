"""Redis for a SyncCluster: pure builders for the managed objects (managed), and reaching it (connect)."""
