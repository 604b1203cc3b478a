"""Shared test setup: the operator package is imported from operator/ (never as `operator`)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "hack"))  # podenv: pods' processes on the host, for kwok nodes
