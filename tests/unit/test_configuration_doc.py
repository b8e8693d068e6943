"""docs/configuration.md lists every TWOSTEP_* variable the settings read, with the code's default."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "config" / "settings.py"
KEYS = ROOT / "config" / "keys.py"
DOC = ROOT / "docs" / "configuration.md"


def read_by_settings() -> dict[str, tuple[str, object]]:
    """Return {variable: (reader, default)} for each env/env_int/env_bool call in settings.py."""
    found = {}
    for node in ast.walk(ast.parse(SETTINGS.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in {"env", "env_int", "env_bool"} and node.args
                and isinstance(node.args[0], ast.Constant)):
            reader = node.func.id
            if len(node.args) > 1:
                # Defaults are literals or arithmetic on literals, e.g. 8 * 3600.
                default = eval(compile(ast.Expression(node.args[1]), "settings", "eval"), {"__builtins__": {}})
            else:
                default = {"env": "", "env_bool": False}.get(reader)
            found[f"TWOSTEP_{node.args[0].value}"] = (reader, default)
    return found


def documented() -> dict[str, str]:
    """Return {variable: default cell without backticks} from the doc's tables."""
    rows = re.findall(r"^\| `(TWOSTEP_[A-Z0-9_]+)` \| ([^|]*) \|", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    return {name: cell.strip().replace("`", "") for name, cell in rows}


def test_every_variable_the_settings_read_is_documented():
    names = set(read_by_settings()) | set(re.findall(r"TWOSTEP_[A-Z0-9_]+", KEYS.read_text(encoding="utf-8")))
    assert len(names) > 25  # the parser found the settings, not nothing
    assert sorted(names - set(documented())) == []


def test_documented_numbers_and_switches_are_the_codes_defaults():
    doc = documented()
    wrong = {}
    for name, (reader, default) in read_by_settings().items():
        if reader == "env_int" and doc.get(name) != str(default):
            wrong[name] = (doc.get(name), default)
        if reader == "env_bool" and doc.get(name) != str(default).lower():
            wrong[name] = (doc.get(name), default)
    assert wrong == {}


def test_documented_variables_exist():
    names = set(read_by_settings()) | set(re.findall(r"TWOSTEP_[A-Z0-9_]+", KEYS.read_text(encoding="utf-8")))
    text = DOC.read_text(encoding="utf-8")
    service_part = text.split("## For the test suite")[0]
    listed = set(re.findall(r"^\| `(TWOSTEP_[A-Z0-9_]+)` \|", service_part, re.MULTILINE))
    assert sorted(listed - names) == []
