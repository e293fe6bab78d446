"""APP_ENV: any case and spacing of a known value is accepted; anything else refuses to start."""
import pytest
from flask import Flask

from portal.config import load_config

SECRETS = {"SECRET_KEY": "s" * 40, "PIN_PEPPER": "p" * 40}


def _load(tmp_path, env):
    app = Flask("env-test")
    app.instance_path = str(tmp_path)
    load_config(app, {"APP_ENV": env, **SECRETS})
    return app


@pytest.mark.parametrize("env", ["Production", "PRODUCTION", " production\n", "production"])
def test_production_in_any_case_is_production(tmp_path, env):
    app = _load(tmp_path, env)
    assert app.config["APP_ENV"] == "production"
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_production_in_another_case_still_requires_secrets(tmp_path):
    app = Flask("env-test")
    app.instance_path = str(tmp_path)
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        load_config(app, {"APP_ENV": "Production", "SECRET_KEY": "", "PIN_PEPPER": "p" * 40})


@pytest.mark.parametrize("env", ["prod", "staging", "produciton", "development-ish"])
def test_unknown_app_env_refuses_to_start(tmp_path, env):
    with pytest.raises(RuntimeError, match="APP_ENV=.* is not one of development, testing, production"):
        _load(tmp_path, env)


@pytest.mark.parametrize("env", ["", "  ", None, "Development"])
def test_unset_or_empty_is_development(tmp_path, env):
    assert _load(tmp_path, env).config["APP_ENV"] == "development"


def test_environment_variable_is_normalised(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_ENV", "  Production ")
    app = Flask("env-test")
    app.instance_path = str(tmp_path)
    load_config(app, SECRETS)
    assert app.config["APP_ENV"] == "production"
