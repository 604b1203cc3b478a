"""make lint: no function in operator/synchro longer than 50 lines, no class longer than 150 (decorators not counted).

A long function is where several decisions hide; split it where the names say what each part does.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "operator" / "synchro"
LIMITS = {ast.FunctionDef: 50, ast.AsyncFunctionDef: 50, ast.ClassDef: 150}


def too_long(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        limit = LIMITS.get(type(node))
        if limit is None:
            continue
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > limit:
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            found.append(
                f"{path.relative_to(ROOT.parent.parent)}:{node.lineno}: {kind} {node.name} is {length} lines "
                f"(at most {limit})"
            )
    return found


def main() -> int:
    found = [line for path in sorted(ROOT.rglob("*.py")) for line in too_long(path)]
    print("\n".join(found) or f"sizes: every function <= 50 lines, every class <= 150 in {ROOT.name}/")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
