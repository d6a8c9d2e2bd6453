"""The Jinja2 environment templates run in: sandboxed, strict about undefined names, HTML autoescaped, and
within limits of time and size."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from outreach.rendering import sharing

# Python prints an int of at most this many digits (sys.get_int_max_str_digits); no letter needs a longer one.
MAX_DIGITS = 4300
_MAX_BITS = math.ceil(MAX_DIGITS * math.log2(10))


@dataclass(frozen=True)
class RenderLimits:
    """What rendering one copy (subject, text and HTML) may take: seconds, and bytes of output.

    `clock` measures the seconds: a monotonic clock, never the time of day (tests pass one of their own).
    """

    seconds: float = 2.0
    size: int = 2 * 1024 * 1024
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)


class RenderLimitError(SecurityError):
    """A template went past a limit: too long to render, too large, or a number or range too big."""


@dataclass(slots=True)
class Budget:
    """What the copy being rendered may take: its limits, and when it must be done (never, before `begin`)."""

    limits: RenderLimits
    deadline: float = math.inf

    def begin(self) -> None:
        """Start the clock of one copy."""
        self.deadline = self.limits.clock() + self.limits.seconds

    def check_time(self) -> None:
        """Stop a copy that has taken longer than its seconds."""
        if self.limits.clock() > self.deadline:
            raise self.too_slow()

    def too_slow(self) -> RenderLimitError:
        """The error for a copy past its deadline (which is then lifted: the error is raised once)."""
        self.deadline = math.inf
        seconds = self.limits.seconds
        return RenderLimitError(f"rendering took longer than {seconds:g} s (OUTREACH_RENDER_SECONDS): a loop too long?")

    def too_large(self, size: int) -> RenderLimitError:
        """The error for a copy whose output has passed the size limit."""
        return RenderLimitError(f"the copy passes {self.limits.size:,} bytes (OUTREACH_RENDER_BYTES) at {size:,}")


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with limits on what rendering one copy may take, and a fast path for the plain, frozen data
    classes outreach hands to templates.

    The sandbox checks every attribute a template reads; for the signatory list that is 70 checks a copy and
    most of the rendering time. Classes marked `template_data = True` hold only plain values, so their public
    attributes are read directly; everything else, and every name starting with `_`, goes through the sandbox.

    Limits (`RenderLimits`), without threads or signals: a copy begins with `budget.begin()`, which sets a
    deadline; every `for` loop (as it starts, and before each item of a long one), every call (a macro, a method),
    every filter and every intercepted operator checks it, and `CompiledTemplate` checks it and the size between
    pieces of output. Repetition (`'x' * n`), powers and `%` widths that would pass the limits are refused before
    they are computed, and so is a range longer than the size allows (or than Jinja's MAX_RANGE). One copy at a
    time: the deadline belongs to the environment.
    """

    # The operators that can make something huge (see call_binop). Intercepted, they are also never folded into
    # a constant while the template compiles, where `{{ 'x' * 3000000000 }}` would hang before any limit applies.
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, limits: RenderLimits, **options: Any) -> None:
        super().__init__(**options)
        # One attribute more than Jinja's, no more: with three, CPython stopped sharing the keys of the instance's
        # __dict__, and every `environment.getattr` a template makes (hundreds a copy) took 15% longer to look up.
        self.budget = Budget(limits)
        self.globals["range"] = self._range
        self.filters = {name: self._paced_filter(function, name) for name, function in self.filters.items()}
        self.filters[_PACED] = self._pacing()
        self.filters[_BOUNDED] = self._paced_filter(lambda text: text)  # the size of what `~` made, checked
        self.filters.update(sharing.filters())

    def getattr(self, obj: Any, attribute: str) -> Any:
        if getattr(type(obj), "template_data", False) and not attribute.startswith("_"):
            try:
                return getattr(obj, attribute)
            except AttributeError:
                pass
        return super().getattr(obj, attribute)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.budget.check_time()
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.budget.check_time()
        if operator == "*":
            self._check_product(left, right)
        elif operator == "**":
            self._check_power(left, right)
        elif operator == "+":
            if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
                self._check_size(len(left) + len(right))
        elif isinstance(left, str):
            self._check_widths(left, right)
        return super().call_binop(context, operator, left, right)

    def _check_size(self, size: int) -> None:
        """Refuse a text or list longer than a copy may be (a `~` or `+` in a loop would otherwise double one)."""
        if size > self.budget.limits.size:
            most = self.budget.limits.size
            raise RenderLimitError(
                f"a text or list of {size:,} items: more than a copy may hold ({most:,} bytes, OUTREACH_RENDER_BYTES)"
            )

    def _check_product(self, left: Any, right: Any) -> None:
        if _is_int(left) and _is_int(right):
            if left.bit_length() + right.bit_length() > _MAX_BITS + 1:
                raise RenderLimitError(f"a product of more than {MAX_DIGITS:,} digits")
            return
        for sequence, times in ((left, right), (right, left)):
            size = self.budget.limits.size
            if isinstance(sequence, _SEQUENCES) and _is_int(times) and len(sequence) * times > size:
                raise RenderLimitError(
                    f"* {times:,} would make {len(sequence) * times:,} characters or items, more than a copy may hold "
                    f"({size:,} bytes, OUTREACH_RENDER_BYTES)"
                )

    def _check_power(self, base: Any, exponent: Any) -> None:
        if not (_is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1):
            return  # a float overflows by itself (OverflowError); 0, 1 and -1 stay small
        if (abs(base).bit_length() - 1) * exponent > _MAX_BITS:
            raise RenderLimitError(f"{base} ** {exponent} would have more than {MAX_DIGITS:,} digits")

    def _check_widths(self, text: str, values: Any) -> None:
        """Refuse `'%3000000000s' % x`: a width or precision (or a `*` one's value) past the size limit."""
        if "%" not in text:
            return
        found = [part for spec in _FORMAT_SPEC.findall(text) for part in spec if part]
        if "*" in found:
            found += [str(value) for value in (values if isinstance(values, tuple) else (values,)) if _is_int(value)]
        size = self.budget.limits.size
        if any(len(part) > 9 or int(part) > size for part in found if part != "*"):
            raise RenderLimitError(f"a width past what a copy may hold ({size:,} bytes, OUTREACH_RENDER_BYTES)")

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        most = min(MAX_RANGE, self.budget.limits.size)
        if len(numbers) > most:
            raise RenderLimitError(f"range() of {len(numbers):,} numbers: at most {most:,}")
        return numbers

    def _pacing(self) -> Callable[[Context, Iterable[Any]], Iterable[Any]]:
        """The filter every `for` loop's items go through: a look at the clock as the loop starts, and before each
        item of a long one (a few items cannot take long between two looks: whatever could make one take long,
        a loop, a call, a filter, an operator, looks itself). It takes the context, so Jinja never runs it while
        compiling."""

        budget = self.budget

        def each_after_a_look(iterable: Iterable[Any], clock: Callable[[], float], deadline: float) -> Iterator[Any]:
            for item in iterable:
                if clock() > deadline:
                    raise budget.too_slow()
                yield item

        @pass_context
        def paced(context: Context, iterable: Iterable[Any]) -> Iterable[Any]:
            clock, deadline = budget.limits.clock, budget.deadline
            if clock() > deadline:
                raise budget.too_slow()
            if isinstance(iterable, _COUNTED) and len(iterable) <= _SHORT_LOOP:
                return iterable
            return each_after_a_look(iterable, clock, deadline)

        return paced

    def _paced_filter(self, function: Callable[..., Any], name: str = "") -> Callable[..., Any]:
        """A filter that looks at the clock first and at the size of what it made after (those that make text from
        a width or a count look before: `center`, `indent`, `format`, `replace`, `join`), and that the compiler never
        runs on constants: Jinja folds a filter of constants (`{{ 'x'|center(3000000000) }}`) into the template
        while compiling it, unless the filter takes the context. The filter gets what it asked for (context, eval
        context or environment)."""
        wants = getattr(getattr(function, "jinja_pass_arg", None), "name", None)
        check, size, check_size = self.budget.check_time, self.budget.limits.size, self._check_size
        before = _BEFORE.get(name)

        @pass_context
        def paced(context: Context, *args: Any, **kwargs: Any) -> Any:
            check()
            if before is not None:
                check_size(before(*args, **kwargs))
            if wants == "context":
                result = function(context, *args, **kwargs)
            elif wants == "eval_context":
                result = function(context.eval_ctx, *args, **kwargs)
            elif wants == "environment":
                result = function(context.environment, *args, **kwargs)
            else:
                result = function(*args, **kwargs)
            if isinstance(result, _SEQUENCES) and len(result) > size:  # `join`, `replace`, `center` ...
                check_size(len(result))
            return result

        return paced

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Jinja's parsing hook: every `for` loop iterates over its items through the filter _PACED, so that a loop
        # with no output, no call and no operator in it (`{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}`)
        # still looks at the clock; and what every `~` makes goes through _BOUNDED, so that `{% set ns.s = ns.s ~
        # ns.s %}` in a loop stops at the size limit. Filters are called directly, not through the sandbox's `call`.
        # Then the parts every copy of a language prints alike are rendered once (outreach/rendering/sharing.py).
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _PACED, [], [], None, None, lineno=loop.lineno)
        tree = cast(nodes.Template, _BoundConcatenations().visit(tree))
        return sharing.share_parts(tree, name or "", self._included)

    def _included(self, name: str) -> nodes.Template | None:
        """The template an `include` names, as written (for a look at what it reads), or None if it cannot be read."""
        if self.loader is None:
            return None
        try:
            source, filename, _ = self.loader.get_source(self, name)
            return super()._parse(source, name, filename)
        except TemplateError:
            return None


# A loop over at most this many items of a list, tuple or dict looks at the clock once, as it starts.
_SHORT_LOOP = 1000
_COUNTED = (list, tuple, dict)
_SEQUENCES = (str, list, tuple)  # what `*` repeats
# The filters every `for` loop's items and every `~` go through (see TemplateEnvironment._parse); a template
# cannot name them.
_PACED = "outreach paced"
_BOUNDED = "outreach bounded"
# A printf-style conversion's width and precision, either of them `*` (taken from the values).
_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|[0-9]+)?(?:\.(\*|[0-9]+))?")


def _width(value: Any, width: Any = 80, *_: Any, **__: Any) -> int:
    return width if _is_int(width) else len(str(width))


def _indented(value: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    return (_width(value, width) + 1) * (str(value).count("\n") + 1)


def _formatted(value: Any, *args: Any, **kwargs: Any) -> int:
    found = [part for spec in _FORMAT_SPEC.findall(str(value)) for part in spec if part.isdigit()]
    return max([int(part) if len(part) <= 9 else 10**9 for part in found] + [0])


def _replaced(value: Any, old: Any = "", new: Any = "", count: Any = None, **_: Any) -> int:
    text, old, new = str(value), str(old), str(new)
    return len(text) + max(len(new) - len(old), 0) * (text.count(old) if old else len(text) + 1)


def _joined(value: Any, separator: Any = "", *_: Any, **__: Any) -> int:
    return len(value) * len(str(separator)) if isinstance(value, _COUNTED) else 0


# For the filters that make text from a width or a count: how long what they make is at least (or close to it).
_BEFORE: dict[str, Callable[..., int]] = {
    "center": _width, "indent": _indented, "format": _formatted, "replace": _replaced, "join": _joined,
}  # fmt: skip


class _BoundConcatenations(NodeTransformer):
    """Puts every `~` (a Concat node) inside the filter _BOUNDED."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _BOUNDED, [], [], None, None, lineno=node.lineno)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def make_environment(root: Path, limits: RenderLimits | None = None) -> TemplateEnvironment:
    """Return the environment for the templates under `root` (one folder per template, one per language).

    Immutable sandbox: a template can neither reach Python internals nor change the data it is given.
    StrictUndefined: a misspelt variable is an error, never an empty place in a letter to a president.
    """
    return TemplateEnvironment(
        limits or RenderLimits(),
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html")),
        keep_trailing_newline=True,
        auto_reload=False,
    )
