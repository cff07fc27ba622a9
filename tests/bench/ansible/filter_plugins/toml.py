"""Ansible's side of the `toml` filter (tests/bench/toml_value.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from toml_value import toml_value  # noqa: E402


class FilterModule:
    def filters(self):
        return {"toml": toml_value}
