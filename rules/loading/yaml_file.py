"""Reading a rule file: YAML, refusing what plain YAML lets through silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rules.errors import RuleDefinitionError


def read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_UniqueKeyLoader)  # noqa: S506 - safe loader subclass
    except FileNotFoundError:
        raise RuleDefinitionError(str(path), "file is missing") from None
    except yaml.YAMLError as exc:
        raise RuleDefinitionError(str(path), f"not valid YAML: {exc}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys, which plain YAML silently overwrites."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML reads bare dates as datetime.date; the rule files want them as text.
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
