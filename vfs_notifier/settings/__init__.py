"""Settings: one pure merge of the TOML file, the environment and the defaults.

    model.py        Settings, Database, Root: what the service reads; ConfigError
    parsers.py      a raw value -> a value, or what is wrong with it
    spec.py         every setting's TOML name, variables, parser and default
    resolution.py   the merge, each value's source, checks across settings
    secrets.py      the database password and where it may come from
    config_file.py  which file to read, and reading it

Callers import from here (``from .settings import Root``); the parts import each other.
"""

from .config_file import DEFAULT_CONFIG, config_path, load
from .model import EX_CONFIG, ConfigError, Database, Root, Settings
from .parsers import REGISTRATION_MODES, split_node
from .resolution import MAIN_DIR_CHARS, UNSET, resolve
from .secrets import CREDENTIAL_NAME, SECRET_KEYS
from .spec import RETIRED_INTERNAL_PATH, SPECS

_SPECS = SPECS   # the name check-config's test reads

__all__ = [
    "CREDENTIAL_NAME", "DEFAULT_CONFIG", "EX_CONFIG", "MAIN_DIR_CHARS", "REGISTRATION_MODES",
    "RETIRED_INTERNAL_PATH", "SECRET_KEYS", "SPECS", "UNSET", "ConfigError", "Database", "Root",
    "Settings", "config_path", "load", "resolve", "split_node",
]
