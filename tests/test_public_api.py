"""The public surface is exactly what `__all__` says."""

from __future__ import annotations

import inspect
import types

import agentstream
import agentstream.testing


def public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name != "annotations"
        and not isinstance(value, types.ModuleType)
    }


def test_all_lists_exactly_the_public_names() -> None:
    assert sorted(agentstream.__all__) == agentstream.__all__
    assert set(agentstream.__all__) == public_names(agentstream)


def test_testing_all_lists_exactly_the_public_names() -> None:
    assert sorted(agentstream.testing.__all__) == agentstream.testing.__all__
    assert set(agentstream.testing.__all__) == public_names(agentstream.testing)


def test_every_public_name_is_documented() -> None:
    for name in agentstream.__all__:
        value = getattr(agentstream, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__doc__, name
