"""The parts of a template that every copy of a language prints alike, found when it compiles and rendered once.

Most of a letter is the same for every recipient who reads it in the same language: the signatory list above all
(35 names and lines, rendered for every copy it was about half of the time a copy took). Which parts those are is
decided from the template itself, not from a list of known templates: a part (an output, an `if`, a `for` or an
`include` of a named template, at the top of a file or inside an `if`) qualifies when every variable it reads is
one the letterhead gives (`LETTERHEAD_NAMES`: the same for every copy of a language) or one of its own loops binds,
and when it does nothing but compute and print (no `set`, no macro, no import, no `random`). Consecutive parts that
qualify are rendered together, once per language, the first time a copy needs them; every later copy prints what
they made. A part that reads anything else (`contact`, `greeting`, a follow-up's own variables) is rendered for
every copy, as before.

Rendering through the cache changes nothing a reader sees: the same text, escaped the same way, and the limits of
time and size still count what every copy prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.runtime import Context

# What the letterhead gives every copy of a language (`CompiledTemplate._shared` makes exactly these).
LETTERHEAD_NAMES = frozenset({"signatory_groups", "signatory_count", "sender", "date"})
# The variable that holds one language's rendered parts; a template cannot name it (it is not an identifier).
CACHE = "outreach shared parts"
# The filters the shared parts go through; a template cannot name them either.
IS_KEPT, KEPT, KEEP = "outreach kept?", "outreach kept", "outreach keep"
# Filters whose result differs from one call to the next.
_UNSTEADY_FILTERS = frozenset({"random"})
# Expressions that read the context in ways a name does not show.
_OPAQUE = (nodes.ContextReference, nodes.DerivedContextReference, nodes.InternalName, nodes.ImportedName,
           nodes.EnvironmentAttribute, nodes.ExtensionAttribute, nodes.NSRef)  # fmt: skip

Included = Callable[[str], "nodes.Template | None"]


def share_parts(tree: nodes.Template, name: str, included: Included) -> nodes.Template:
    """Wrap every run of parts of `tree` that print the same for every copy of a language in a block rendered
    once; `included` parses a template an `include` names (None when it cannot be read)."""
    _Sharer(name or "template", included).statements(tree.body)
    return tree


def filters() -> dict[str, Callable[..., Any]]:
    """The three filters the wrapped blocks use: is a part kept, the kept text, and keep a rendered part."""

    @pass_context
    def is_kept(context: Context, key: str) -> bool:
        cache = context.get(CACHE)
        return cache is not None and key in cache

    @pass_context
    def kept(context: Context, key: str) -> Any:
        return context[CACHE][key]

    @pass_context
    def keep(context: Context, rendered: Any, key: str) -> Any:
        cache = context.get(CACHE)
        if cache is not None:
            cache[key] = rendered
        return rendered

    return {IS_KEPT: is_kept, KEPT: kept, KEEP: keep}


class _Sharer:
    def __init__(self, name: str, included: Included) -> None:
        self.name = name
        self.included = included
        self.count = 0
        self._includes: dict[str, bool] = {}

    def statements(self, body: list[nodes.Node]) -> None:
        """Replace, in place, each run of steady statements of `body` by one block rendered once; look inside
        the `if`s that are not steady themselves."""
        out: list[nodes.Node] = []
        run: list[nodes.Node] = []
        for node in body:
            if self.steady(node, frozenset()):
                run.append(node)
                continue
            out += self.wrapped(run)
            run = []
            if isinstance(node, nodes.If):
                for branch in (node.body, *(elif_.body for elif_ in node.elif_), node.else_):
                    self.statements(branch)
            out.append(node)
        out += self.wrapped(run)
        body[:] = out

    def wrapped(self, run: list[nodes.Node]) -> list[nodes.Node]:
        """`{% if key|kept? %}{{ key|kept }}{% else %}{% filter keep(key) %}...{% endfilter %}{% endif %}`, for a
        run that prints something worth keeping (plain text alone is printed as it is)."""
        if all(_plain(node) for node in run):
            return run
        self.count += 1
        key = nodes.Const(f"{self.name}#{self.count}")
        line = run[0].lineno
        kept = nodes.Output([nodes.Filter(key, KEPT, [], [], None, None, lineno=line)], lineno=line)
        keep = nodes.FilterBlock(run, nodes.Filter(None, KEEP, [key], [], None, None, lineno=line), lineno=line)
        test = nodes.Filter(key, IS_KEPT, [], [], None, None, lineno=line)
        return [nodes.If(test, [kept], [], [keep], lineno=line)]

    def steady(self, node: nodes.Node, bound: frozenset[str]) -> bool:
        """Whether a statement prints the same for every copy of a language, `bound` the names its loops bind."""
        if isinstance(node, nodes.Output):
            return all(self.expression(child, bound) for child in node.nodes)
        if isinstance(node, nodes.If):
            return (
                self.expression(node.test, bound)
                and all(self.steady(child, bound) for child in node.body)
                and all(self.steady(elif_, bound) for elif_ in node.elif_)
                and all(self.steady(child, bound) for child in node.else_)
            )
        if isinstance(node, nodes.For):
            inner = bound | _stored(node.target) | {"loop"}
            return (
                not node.recursive
                and self.expression(node.iter, bound)
                and (node.test is None or self.expression(node.test, inner))
                and all(self.steady(child, inner) for child in node.body)
                and all(self.steady(child, bound) for child in node.else_)
            )
        if isinstance(node, nodes.Include):
            return (
                isinstance(node.template, nodes.Const)
                and isinstance(node.template.value, str)
                and node.with_context
                and not node.ignore_missing
                and not bound  # an included template sees the loop's names too: keep it simple
                and self.include(node.template.value)
            )
        return False

    def include(self, name: str) -> bool:
        """Whether a named template prints the same for every copy (a template including itself does not)."""
        if name not in self._includes:
            self._includes[name] = False  # while it is looked at: a cycle is not steady
            tree = self.included(name)
            self._includes[name] = tree is not None and all(self.steady(node, frozenset()) for node in tree.body)
        return self._includes[name]

    def expression(self, node: nodes.Node, bound: frozenset[str]) -> bool:
        """Whether an expression has the same value for every copy of a language."""
        if isinstance(node, nodes.TemplateData | nodes.Const):
            return True
        if isinstance(node, _OPAQUE) or not isinstance(node, nodes.Expr):
            return False
        if isinstance(node, nodes.Name):
            return node.ctx == "load" and (node.name in LETTERHEAD_NAMES or node.name in bound)
        if isinstance(node, nodes.Filter) and node.name in _UNSTEADY_FILTERS:
            return False
        return all(self.expression(child, bound) for child in _children(node))


def _children(node: nodes.Node) -> Iterator[nodes.Node]:
    """The nodes under an expression (keyword arguments are Keyword nodes, themselves expressions' holders)."""
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.Keyword | nodes.Pair):
            yield from child.iter_child_nodes()
        else:
            yield child


def _stored(target: nodes.Node) -> frozenset[str]:
    """The names a loop's target binds."""
    return frozenset(name.name for name in target.find_all(nodes.Name)) | (
        frozenset({target.name}) if isinstance(target, nodes.Name) else frozenset()
    )


def _plain(node: nodes.Node) -> bool:
    """Output of constant text only."""
    return isinstance(node, nodes.Output) and all(isinstance(child, nodes.TemplateData) for child in node.nodes)
