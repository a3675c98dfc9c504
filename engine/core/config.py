"""Stage configs: one dataclass per stage that round-trips to URL query params.

A config is the whole experiment, seed included (TensorFlow Playground's `State`):
its `key()` names the result in the job cache, and `to_params()` puts it in a link.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing


class UserError(ValueError):
    """Bad input from a person (upload, setting, prompt). The message says what to do."""


@dataclasses.dataclass
class StageConfig:
    # Named settings for workshops (plain class attributes, not fields): field overrides, and a line
    # on what each shows. "quick demo" makes the page's point within 30 s on 2 cores.
    PRESETS: typing.ClassVar[dict[str, dict]] = {}
    PRESET_NOTES: typing.ClassVar[dict[str, str]] = {}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self, *extra: str) -> str:
        """Stable hash of the config (plus e.g. an upload's digest): the result-cache key."""
        blob = json.dumps([type(self).__name__, self.to_dict(), extra], sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def to_params(self) -> dict[str, str]:
        return {f.name: _fmt(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_params(cls, params: typing.Mapping[str, str]) -> tuple["StageConfig", list[str]]:
        """Build from URL params. Unknown keys are ignored; unparsable or out-of-choice values
        keep the default and are reported, so a mangled link still opens a working page."""
        hints = typing.get_type_hints(cls)
        values, problems = {}, []
        for f in dataclasses.fields(cls):
            if f.name not in params:
                continue
            raw = params[f.name]
            try:
                value = _parse(hints[f.name], raw)
                choices = f.metadata.get("choices")
                if choices and value not in choices:
                    raise ValueError(f"choose one of {', '.join(map(str, choices))}")
                lo, hi = f.metadata.get("range", (None, None))
                if (lo is not None and value < lo) or (hi is not None and value > hi):
                    raise ValueError(f"must be between {lo} and {hi}")
                values[f.name] = value
            except (ValueError, TypeError) as e:
                problems.append(f"link setting {f.name}={raw!r} ignored: {e}")
        return cls(**values), problems

    @classmethod
    def from_dict(cls, d: dict) -> "StageConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> "StageConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def meta(cls, name: str) -> typing.Mapping:
        """A field's metadata: help, choices, range, and the page widget's shown bounds or options."""
        return next(f.metadata for f in dataclasses.fields(cls) if f.name == name)

    @classmethod
    def fit(cls, name: str, value):
        """The value the field's widget can show: clamped into its `shown` bounds (else its range),
        or the nearest of its `options` on a log scale (every option is positive)."""
        meta = cls.meta(name)
        if "options" in meta:
            return value if value in meta["options"] else min(meta["options"], key=lambda o: abs(math.log(o / value)))
        if "shown" in meta or "range" in meta:
            lo, hi = meta.get("shown", meta.get("range"))
            return min(max(value, lo), hi)
        return value


def field(default, help: str = "", choices=None, range=None, shown=None, options=None, private: bool = False):
    """A config field with the metadata the CLI and URL parser use (`choices`, `range`: what the
    engine accepts) and what a page's widget offers (`shown`: a number input's or slider's
    (min, max); `options`: a select slider's values), which may be narrower. `private`: text a
    person typed (a prompt, a constitution), which the room's view of everyone's runs leaves out."""
    meta = {"help": help, "private": private}
    for name, value in (("choices", choices), ("range", range), ("shown", shown), ("options", options)):
        if value is not None:
            meta[name] = tuple(value)
    return dataclasses.field(default=default, metadata=meta)


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v) if v == 0 or 1e-4 <= abs(v) < 1e6 else f"{v:.6g}"
    return str(v)


def _parse(tp, raw: str):
    if tp is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected 1 or 0")
    if tp is int:
        return int(float(raw)) if float(raw).is_integer() else int(raw)
    if tp is float:
        v = float(raw)
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        return v
    return str(raw)
