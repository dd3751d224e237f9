"""Checks of one config field, shared by the config check (:mod:`saljax.study.check`) and the
records that check their own fields (criteria, localization baselines); each error names the
field and what it takes."""
from __future__ import annotations


def _value(config, field: str):
    value = config
    for part in field.split("."):
        value = value[part]
    return value


def count(config, field: str, minimum: int = 1) -> None:
    """``config.<field>`` (dotted) is an integer >= ``minimum``."""
    value = _value(config, field)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"config.{field} must be an integer >= {minimum}, got {value!r}")


def choice(config, field: str, choices) -> None:
    """``config.<field>`` (dotted) is one of ``choices``."""
    value = _value(config, field)
    if value not in choices:
        raise ValueError(f"config.{field} must be one of {', '.join(map(repr, choices))}, got "
                         f"{value!r}")
