"""The task registry (``mrisr.train.tasks``): names known from the first access, classes
resolved on lookup, and the recipe's ``task:`` validated against it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("lightning")
pytest.importorskip("pydantic")

from mrisr.errors import ConfigError  # noqa: E402
from mrisr.train.config import load_config  # noqa: E402
from mrisr.train.tasks import TASKS, task_names  # noqa: E402

NAMES = {"supervised", "multicontrast", "gan", "dsgan", "profile", "throughplane"}


def test_names_known_before_any_lookup() -> None:
    """A fresh interpreter: membership and listing are right without importing any task."""
    code = (
        "import json, sys\n"
        "from mrisr.train.tasks import TASKS, task_names\n"
        "print(json.dumps({'gan': 'gan' in TASKS, 'dsgan': 'dsgan' in TASKS,\n"
        "    'nope': 'nope' in TASKS, 'list': list(TASKS), 'names': list(task_names()),\n"
        "    'torch': 'torch' in sys.modules,\n"
        "    'loaded': sorted(m for m in sys.modules if m.startswith('mrisr.train.tasks.'))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    assert r["gan"] and r["dsgan"] and not r["nope"]
    assert set(r["list"]) == set(r["names"]) == NAMES
    assert not r["torch"] and r["loaded"] == []


def test_lookup_gives_the_named_classes() -> None:
    assert set(TASKS) == set(task_names()) == NAMES and len(TASKS) == len(NAMES)
    for name in NAMES:
        assert TASKS[name].name == name
    with pytest.raises(KeyError):
        TASKS["nope"]


def test_unknown_task_in_recipe_is_one_line_listing_the_names() -> None:
    with pytest.raises(ConfigError) as e:
        load_config("smoke", ["task=nope"])
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("smoke.yaml: task: unknown task 'nope'")
    assert all(n in msg for n in NAMES)
