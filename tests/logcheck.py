"""What the integration tests look for in the operator's log."""

from __future__ import annotations

import re

# A refusal: the API's status code on its own (not the start of a config hash such as "config 403f17...", nor the
# milliseconds of a timestamp such as ",403"), or the reason kubernetes and kopf print.
DENIED = re.compile(r"(?<![\w.,:])403(?!\w)|Forbidden|forbidden:")


def denied_lines(lines: list[str]) -> list[str]:
    """The lines that report an RBAC refusal. A namespace being deleted refuses creates with 403 too ("being
    terminated"), which is not RBAC."""
    return [line for line in lines if DENIED.search(line) and "being terminated" not in line]
