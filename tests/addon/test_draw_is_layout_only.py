"""Headless tests cannot draw a panel, so draw() must not be able to hide a bug: it may only lay
out properties, labels and operators. Pinned on the source: every call inside a draw function
is a UILayout method (or the preferences lookup); no arithmetic, no loops over anything but
the property collections it shows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[2] / "blender_addon" / "ui"
LAYOUT_CALLS = {"row", "column", "box", "split", "label", "prop", "prop_search", "operator", "template_list",
                "template_ID", "template_icon", "template_image", "template_preview", "separator",
                "enumerate", "addon_preferences", "menu", "popover", "template_ID_preview", "progress",
                "getattr", "hasattr", "list"}  # guards and slicing of the shown collections only


def _draw_functions():
    for path in sorted(UI.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("draw"):
                yield f"{path.name}:{node.lineno} {node.name}", node


@pytest.mark.parametrize("where, fn", list(_draw_functions()), ids=lambda v: v if isinstance(v, str) else "")
def test_draw_only_lays_out(where, fn):
    calls = {c.func.attr if isinstance(c.func, ast.Attribute) else getattr(c.func, "id", "?")
             for c in ast.walk(fn) if isinstance(c, ast.Call)}
    assert calls <= LAYOUT_CALLS, f"{where} calls {sorted(calls - LAYOUT_CALLS)}: compute it in an operator/update"
    arithmetic = [n for n in ast.walk(fn) if isinstance(n, ast.BinOp)]
    assert not arithmetic, f"{where} computes values (line {arithmetic[0].lineno}); store them on a property"


def test_there_are_draw_functions_to_check():
    assert len(list(_draw_functions())) >= 6
