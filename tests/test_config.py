"""Parameters from TOML sections and CLI options (usvpipe.config)."""
from __future__ import annotations

import dataclasses

import pytest

from usvpipe.config import load_config, params_digest, params_from_mapping, params_to_dict
from usvpipe.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class _Params:
    rate_hz: float = 1.0
    n: int = 3
    flag: bool = False
    band_hz: tuple[float, float] = (1.0, 2.0)
    name: str = "x"

    def __post_init__(self):
        if self.rate_hz <= 0:
            raise ConfigError("rate_hz must be > 0")


def test_params_from_mapping_coerces_and_overrides():
    p = params_from_mapping(_Params, {"rate_hz": 2, "band_hz": [3, 4], "flag": "yes"}, n=7, name=None)
    assert p == _Params(rate_hz=2.0, n=7, flag=True, band_hz=(3.0, 4.0), name="x")
    assert isinstance(p.rate_hz, float)
    assert params_to_dict(p)["band_hz"] == [3.0, 4.0]


@pytest.mark.parametrize(
    "mapping, match",
    [({"nope": 1}, "unknown parameter"), ({"n": 1.5}, "integer"), ({"rate_hz": "fast"}, "number"),
     ({"rate_hz": -1}, "rate_hz must be > 0"), ({"band_hz": [1]}, "expected 2 values")],
)
def test_params_from_mapping_rejects_bad_values(mapping, match):
    with pytest.raises(ConfigError, match=match):
        params_from_mapping(_Params, mapping, section="demo")


def test_params_digest_changes_with_values():
    assert params_digest(_Params()) == params_digest(_Params())
    assert params_digest(_Params()) != params_digest(_Params(n=4))


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nx=1")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text("[train]\nepochs = 3\n")
    assert load_config(good) == {"train": {"epochs": 3}}
