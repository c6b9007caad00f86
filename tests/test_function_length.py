"""No function in karmma_edge longer than 60 lines unless a `# long:` comment right above its def says why.

A function's length runs from its first body line (the docstring included) to its last: a command's typer
option list is a declaration, not steps a reader has to follow.
"""

import ast
from pathlib import Path

import karmma_edge

LIMIT = 60
PACKAGE = Path(karmma_edge.__file__).parent


def justified(lines: list[str], first: int) -> bool:
    """Whether the comment block right above line `first` (1-based) holds a `# long:` line."""
    i = first - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        if lines[i].strip().startswith("# long:"):
            return True
        i -= 1
    return False


def long_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines), str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - node.body[0].lineno + 1
            if length > LIMIT and not justified(lines, first):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_long_without_saying_why():
    assert long_functions() == [], "split these, or put a `# long: WHY` comment on the line above the def"
