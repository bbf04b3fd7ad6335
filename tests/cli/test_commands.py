import importlib

from rkbench.cli import COMMAND_MODULES, cli


def test_every_command_is_reachable_lazily():
    modules = {name for name in set(COMMAND_MODULES.values())}
    declared = {
        command.name for module in modules for command in importlib.import_module(f"rkbench.cli.{module}").COMMANDS
    }
    assert declared == set(COMMAND_MODULES)
    for name in COMMAND_MODULES:
        assert cli.get_command(None, name).name == name
