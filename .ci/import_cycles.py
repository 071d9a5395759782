#!/usr/bin/env python3
"""No import circles: fails when a module of a crate imports, directly or through others,
a module that imports it back.

Every `.rs` file is a module (`a/mod.rs` and `a.rs` are `a`). Its edges are the paths it
names outside test code (`use crate::..`, `use super::..`, `use self::..`, `use child::..`,
and inline `crate::a::b`, `super::a::b` and `self::a::b` paths): each goes to the deepest module the path names, and through the
`pub use` re-exports of that module to where the item is defined, so a parent that
re-exports a child's item is not a cycle with that child. Strongly connected groups of
more than one module are printed. Test code (`#[cfg(test)] mod tests`, `tests.rs`,
`tests/` folders) is left out: a test may import anything.

Usage: python3 .ci/import_cycles.py [crate_dir ...]   (default: every crate in the workspace)
"""

import re
import sys
from pathlib import Path

USE = re.compile(r"^[ \t]*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
INLINE = re.compile(r"(?<![\w:])crate((?:::\w+)+)")
INLINE_RELATIVE = re.compile(r"(?<![\w:])((?:super|self)(?:::\w+)+)")


def modules_of(src: Path) -> dict[str, Path]:
    modules = {}
    for file in sorted(src.rglob("*.rs")):
        parts = list(file.relative_to(src).with_suffix("").parts)
        if "tests" in parts or parts[-1] == "tests" or parts[0] == "bin":
            continue
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        modules["::".join(parts)] = file
    return modules


def code_of(file: Path) -> str:
    """The file without its test module, string literals and comments."""
    text = file.read_text()
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests\s*\{", text)[0]
    text = re.sub(r'r(#+)".*?"\1', '""', text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def expand(tree: str) -> list[str]:
    """`a::{b, c::{d as e, self}}` -> [`a::b`, `a::c::d`, `a::c`] (aliases, `self` and globs trimmed)."""
    tree = " ".join(tree.split())
    if "{" not in tree:
        path = re.sub(r"\s+as\s+\w+$", "", tree).replace(" ", "")
        return [re.sub(r"::(\*|self)$", "", path)]
    head, rest = tree.split("{", 1)
    inner = rest[: rest.rindex("}")]
    items, depth, current = [], 0, ""
    for char in inner:
        if char == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        current += char
    items.append(current)
    return [path for item in items if item.strip() for path in expand(head.strip() + item.strip())]


def absolute(path: str, module: str, modules: dict[str, Path]) -> str | None:
    segments = path.split("::")
    here = module.split("::") if module else []
    if segments[0] == "crate":
        return "::".join(segments[1:])
    if segments[0] in ("super", "self"):
        base = here
        while segments and segments[0] in ("super", "self"):
            base = base[:-1] if segments.pop(0) == "super" else base
        return "::".join(base + segments)
    child = "::".join(here + segments[:1])
    if child in modules:
        return "::".join(here + segments)
    return None  # another crate


def deepest_module(path: str, modules: dict[str, Path]) -> tuple[str, str]:
    """The deepest module `path` names, and the rest of the path inside it."""
    segments = path.split("::") if path else []
    for cut in range(len(segments), -1, -1):
        candidate = "::".join(segments[:cut])
        if candidate in modules:
            return candidate, "::".join(segments[cut:])
    return "", path


def graph(src: Path) -> dict[str, set[str]]:
    modules = modules_of(src)
    uses, reexports = {}, {}
    for module, file in modules.items():
        code = code_of(file)
        uses[module], reexports[module] = [], {}
        for match in USE.finditer(code):
            for path in expand(match.group(2)):
                target = absolute(path, module, modules)
                if target is None:
                    continue
                if match.group(1):
                    reexports[module][target.split("::")[-1]] = target
                else:
                    uses[module].append(target)
        uses[module] += [match.group(1)[2:] for match in INLINE.finditer(code)]
        # `super::a::f()` and `self::a::f()` written in place, outside `use` statements.
        for match in INLINE_RELATIVE.finditer(USE.sub("", code)):
            target = absolute(match.group(1), module, modules)
            if target is not None:
                uses[module].append(target)

    def resolve(path: str, seen: int = 0) -> str:
        module, rest = deepest_module(path, modules)
        name = rest.split("::")[0] if rest else ""
        if name in reexports.get(module, {}) and seen < 10:
            return resolve(reexports[module][name], seen + 1)
        return module

    edges = {module: set() for module in modules}
    for module, paths in uses.items():
        for path in paths:
            target = resolve(path)
            if target and target != module:
                edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    crates = [Path(arg) for arg in sys.argv[1:]] or sorted(
        p.parent for pattern in ("*/Cargo.toml", "filter/*/Cargo.toml") for p in root.glob(pattern)
    )
    failed = False
    for crate in crates:
        src = crate / "src"
        if not src.is_dir():
            continue
        edges = graph(src)
        found = cycles(edges)
        for component in found:
            links = [f"{a} -> {b}" for a in component for b in sorted(edges[a]) if b in component]
            print(f"{crate.name}: import cycle among {', '.join(component)}:\n  " + "\n  ".join(links))
        if not found:
            print(f"{crate.name}: {len(edges)} modules, no import cycles")
        failed = failed or bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
