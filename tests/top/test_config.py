"""The config loader: defaults < TOML < environment < flags, and errors that name the key."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from vodstack.config import load_config
from vodstack.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    ratio: float = 0.5
    verbose: bool = False
    parents: tuple[str, ...] = ()
    keys: dict[str, str] = field(default_factory=dict)
    region: str | None = None


def write(tmp_path, text: str):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_defaults_when_nothing_given():
    assert load_config(DemoConfig, section="demo", env={}) == DemoConfig()


def test_precedence_toml_then_env_then_flags(tmp_path):
    f = write(tmp_path, '[demo]\nport = 1\nhost = "0.0.0.0"\nratio = 2\nparents = ["a", "b"]\n')
    cfg = load_config(DemoConfig, section="demo", file=f, env={"VODSTACK_DEMO_PORT": "2"},
                      flags={"host": None, "verbose": True})
    assert (cfg.port, cfg.host, cfg.ratio, cfg.verbose, cfg.parents) == (2, "0.0.0.0", 2.0, True, ("a", "b"))
    cfg = load_config(DemoConfig, section="demo", file=f, env={"VODSTACK_DEMO_PORT": "2"}, flags={"port": 3})
    assert cfg.port == 3


def test_env_lists_dicts_and_optionals():
    cfg = load_config(DemoConfig, section="demo", env={
        "VODSTACK_DEMO_PARENTS": "http://a, http://b", "VODSTACK_DEMO_KEYS": "k1=s1,k2=s2",
        "VODSTACK_DEMO_REGION": "eu-west-1", "VODSTACK_DEMO_VERBOSE": "yes"})
    assert cfg.parents == ("http://a", "http://b")
    assert cfg.keys == {"k1": "s1", "k2": "s2"}
    assert cfg.region == "eu-west-1" and cfg.verbose is True


@pytest.mark.parametrize("toml, env, flags, needle", [
    ('[demo]\nprot = 1\n', {}, {}, "demo.prot: unknown key"),
    ('[demo]\nport = "abc"\n', {}, {}, "demo.port: expected an integer"),
    ('[demo]\nverbose = 3\n', {}, {}, "demo.verbose: expected true or false"),
    ('', {"VODSTACK_DEMO_RATIO": "fast"}, {}, "VODSTACK_DEMO_RATIO: expected a number"),
    ('', {}, {"bogus": 1}, "--bogus: not a setting of demo"),
    ('[demo\n', {}, {}, "is not valid TOML"),
    ('demo = 3\n', {}, {}, "demo: expected a table"),
])
def test_errors_name_the_bad_key(tmp_path, toml, env, flags, needle):
    with pytest.raises(ConfigError, match=None) as e:
        load_config(DemoConfig, section="demo", file=write(tmp_path, toml), env=env, flags=flags)
    assert needle in str(e.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(DemoConfig, section="demo", file=tmp_path / "nope.toml", env={})
