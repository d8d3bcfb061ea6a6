"""Maintenance actions are the operator's: named in the configuration, never a command line in a request."""

import pytest

from vigil.maintenance.actions import BUILTIN, ActionSpec, InvalidAction, Script, build_actions, configured
from vigil.settings import SettingsError, load_settings


def test_by_default_only_the_upgrade_exists_and_no_request_runs_a_command() -> None:
    assert sorted(BUILTIN) == ["upgrade"]
    assert sorted(load_settings(None).maintenance.actions) == ["upgrade"]
    with pytest.raises(InvalidAction, match="unknown action 'script'"):
        build_actions([{"plugin": "script", "command": ["sh", "-c", "id"]}])
    with pytest.raises(InvalidAction, match="unknown: command"):
        build_actions([{"action": "upgrade", "command": ["id"]}])


def test_a_configured_script_gets_its_typed_parameters_in_its_environment() -> None:
    plugins = configured(
        {"firmware": ActionSpec("script", ("/usr/local/bin/flash",), 60.0, {"version": "string", "wait_s": "number"})}
    )
    [action] = build_actions([{"action": "firmware", "version": "2.4", "wait_s": 1.5}], plugins)
    assert isinstance(action, Script)
    assert action.command == ("/usr/local/bin/flash",)
    assert dict(action.env) == {"VIGIL_PARAM_VERSION": "2.4", "VIGIL_PARAM_WAIT_S": "1.5"}
    with pytest.raises(InvalidAction, match="is a string"):
        build_actions([{"action": "firmware", "version": 2}], plugins)
    with pytest.raises(InvalidAction, match="must be a number"):
        build_actions([{"action": "firmware", "wait_s": "soon"}], plugins)


def test_a_script_without_a_command_is_a_configuration_error() -> None:
    with pytest.raises(SettingsError, match="needs a command"):
        load_settings(None, maintenance={"actions": {"flash": {"plugin": "script"}}})
    with pytest.raises(SettingsError, match="plugin"):
        load_settings(None, maintenance={"actions": {"shell": {"plugin": "bash", "command": ["sh"]}}})
