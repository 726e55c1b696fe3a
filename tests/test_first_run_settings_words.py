"""Settings problems in the product's words, every bad key named in one pass."""

from __future__ import annotations

import pytest

from router_core.errors import SettingsError
from router_core.settings import merge, shipped_defaults, validate


def test_every_bad_key_in_one_pass_in_product_words() -> None:
    user = {"server": {"prot": 1, "port": "x"}, "privacy": {"enabled": "maybe", "escalation": "nope"}}
    with pytest.raises(SettingsError) as caught:
        validate(merge(shipped_defaults(), user))
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "Extra inputs are not permitted" not in text and "Input should" not in text
    assert "server.prot: unknown setting (check the spelling against the shipped config)" in problems
    assert "server.port: must be a whole number" in problems
    assert "privacy.enabled: must be true or false" in problems
    assert "privacy.escalation: must be 'keep-local' or 'refuse'" in problems
