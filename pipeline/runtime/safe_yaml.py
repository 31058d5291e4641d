"""A YAML loader for settings files that a hostile or careless file cannot abuse.

On top of PyYAML's ``SafeLoader`` (no ``!!python`` tags, so nothing is executed), it refuses, each
with an :class:`~pipeline.errors.InputError` naming the file and line:

- a key given twice in one mapping (YAML lets the last one win silently: a second ``2010:``
  under ``landuse`` would run the wrong file), naming the key and both lines;
- a key that is a list or a mapping (``? [a, b]: …``), where every key in our files is a plain
  value;
- nesting deeper than :data:`MAX_DEPTH` levels (PyYAML recurses per level and ends in a
  ``RecursionError`` near 1,000);
- more than :data:`MAX_NODES` values once aliases are expanded (an alias bomb: 2 KB of nested
  ``&a``/``*a`` references stands for billions of values, which validation and error messages
  would then expand in memory); counted on the parsed tree, where each alias is still one node;
- numbers that are not finite (``.inf``, ``.nan``, ``1e400``) and integers of 19 digits or more,
  which no setting needs and which overflow later arithmetic.

PyYAML's pure-Python composer is used (the C one cannot be hooked); a settings file is a few KB.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline.errors import InputError

#: deepest nesting of lists and mappings accepted (our files use at most ~5 levels)
MAX_DEPTH = 64
#: most values (scalars, lists, mappings) a file may stand for once its aliases are expanded
MAX_NODES = 1_000_000
#: integers at or above this size are refused (ids that long must be quoted text)
MAX_INT = 10**18

_MERGE = "tag:yaml.org,2002:merge"
_FLOAT = "tag:yaml.org,2002:float"
_NUMBER_TAGS = (_FLOAT, "tag:yaml.org,2002:int")


def load_yaml(text: str, where: str) -> Any:
    """Parse ``text`` (a settings file's content) safely; ``where`` names it in messages, e.g.
    ``"config run.yaml"``. Raises :class:`InputError` for the cases in the module text and
    :class:`yaml.YAMLError` for plain syntax errors."""
    loader = _Loader(text, where)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Loader(yaml.SafeLoader):
    def __init__(self, text: str, where: str) -> None:
        super().__init__(text)
        self._where = where
        self._depth = 0

    def _refuse(self, node_or_mark: Any, message: str) -> InputError:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        at = f", line {mark.line + 1}" if mark is not None else ""
        return InputError(message, where=f"{self._where}{at}")

    # -- composing: depth, then the expanded size ------------------------------------------

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise self._refuse(
                    self.peek_event(),
                    f"lists and mappings are nested more than {MAX_DEPTH} levels deep; a "
                    "settings file needs a few. Is this the right file?",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Node | None:
        node = super().get_single_node()
        if node is not None:
            self._check_size(node)
        return node

    def _check_size(self, root: Node) -> None:
        """Count the values ``root`` stands for with every alias expanded (each shared node is
        counted once per use, computed once: linear in the file)."""
        sizes: dict[int, int] = {}
        active: set[int] = set()

        def size(node: Node) -> int:
            key = id(node)
            if key in sizes:
                return sizes[key]
            if key in active:
                raise self._refuse(node, "an alias refers to a list or mapping that holds it")
            if isinstance(node, ScalarNode):
                return 1
            active.add(key)
            children = (
                [n for pair in node.value for n in pair]
                if isinstance(node, MappingNode)
                else node.value
                if isinstance(node, SequenceNode)
                else []
            )
            total = 1
            for child in children:
                total += size(child)
                if total > MAX_NODES:
                    raise self._refuse(
                        node,
                        f"stands for more than {MAX_NODES:,} values once its aliases (*name) are "
                        "expanded (an 'alias bomb'); write the values out, or use fewer aliases",
                    )
            active.discard(key)
            sizes[key] = total
            return total

        size(root)

    # -- constructing: keys and numbers ------------------------------------------------------

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        if isinstance(node, MappingNode):
            seen: dict[str, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                if not isinstance(key_node, ScalarNode):
                    raise self._refuse(
                        key_node,
                        "a key is a list or a mapping; keys must be plain values (text or numbers)",
                    )
                text = str(self.construct_object(key_node))
                line = key_node.start_mark.line + 1
                if text in seen:
                    raise self._refuse(
                        key_node,
                        f"key '{_short(text)}' is given twice in the same mapping, at line "
                        f"{seen[text]} and at line {line}; YAML would silently keep only the "
                        "last. Delete one of them",
                    )
                seen[text] = line
            for key_node, value_node in node.value:  # numbers named by their key
                if isinstance(value_node, ScalarNode) and value_node.tag in _NUMBER_TAGS:
                    self._check_number(value_node, key_node)
        return super().construct_mapping(node, deep=deep)

    def _check_number(self, node: ScalarNode, key_node: Node | None = None) -> None:
        key = f"key '{_short(key_node.value)}': " if isinstance(key_node, ScalarNode) else ""
        if node.tag == _FLOAT:
            value = yaml.SafeLoader.construct_yaml_float(self, node)
            if not math.isfinite(value):
                raise self._refuse(
                    node,
                    f"{key}'{_short(node.value)}' is not a finite number; give an ordinary number",
                )
        else:
            value = yaml.SafeLoader.construct_yaml_int(self, node)
            if abs(value) >= MAX_INT:
                raise self._refuse(
                    node,
                    f"{key}the number '{_short(node.value)}' is too large (19 digits or more); if "
                    "it is an id, write it in quotes",
                )

    def construct_yaml_float(self, node: ScalarNode) -> float:
        self._check_number(node)
        return super().construct_yaml_float(node)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        self._check_number(node)
        return super().construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
