import pytest

from usvpipe.config import params_from_mapping
from usvpipe.errors import ConfigError
from usvpipe.pipeline import default_config_text
from usvpipe.power import PowerParams


def test_defaults_are_valid_and_the_config_file_has_a_power_section():
    p = PowerParams()
    assert p.kinds == ("pitch", "duration", "usage", "measures") and p.animal_counts()[0] == 3
    assert "[power]" in default_config_text() and "draws = 200" in default_config_text()


@pytest.mark.parametrize("key, value, says", [
    ("kinds", ["pitch", "loudness"], "[power].kinds"), ("draws", 3, "[power].draws"),
    ("animals", "1,2", "[power].animals"), ("power", 1.5, "[power].power"),
])
def test_a_bad_value_is_one_line_naming_the_key_and_the_fix(key, value, says):
    with pytest.raises(ConfigError) as err:
        params_from_mapping(PowerParams, {key: value}, section="power")
    assert says in str(err.value) and "fix:" in str(err.value) and "\n" not in str(err.value)


def test_no_power_on_the_command_line_switches_the_section_off():
    from usvpipe.cli.pipeline import _without_power
    from usvpipe.pipeline import config_from_mapping

    cfg = config_from_mapping({"run": {"output": "out"}, "power": {"draws": 50}})
    off = _without_power(cfg, True).stages["power"]
    assert cfg.stages["power"].enabled and not off.enabled and off.draws == 50
    assert _without_power(cfg, False) is cfg
