"""A griffe extension for the manual's API reference: this project's docstrings are plain text
with Sphinx roles (``:func:`~ncvsd_inverse.api.solve```) and ``name: meaning`` lines for the
parameters. Rendered as Markdown, a role becomes a code span (the last dotted part where the
target starts with ``~``), and each line that starts with one or more of the function's
parameter names (``mask / kernel:``) or with ``Returns`` becomes a list item, so that the
parameters do not run together into one paragraph."""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`(~?)([\w.]+)`")
KEY_LINE = re.compile(r"^(``)?([A-Za-z_][\w]*(?:\s*/\s*[A-Za-z_]\w*)*)(``)?:\s")


def role_to_code(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def markdown_docstring(text: str, parameters: set[str]) -> str:
    """``text`` with roles as code spans and parameter lines as list items (continuation lines
    indented under their item)."""
    lines, in_item = [], False
    for line in ROLE.sub(role_to_code, text).splitlines():
        key = KEY_LINE.match(line)
        names = [n.strip() for n in key.group(2).split("/")] if key else []
        if key and (set(names) <= parameters or names == ["Returns"]):
            label = " / ".join(f"`{n}`" for n in names)
            lines.append(f"- {label}:{line[key.end() - 1:]}")
            in_item = True
        elif in_item and line.startswith(" "):
            lines.append("  " + line.strip())
        else:
            in_item = False
            lines.append(line)
    return "\n".join(lines)


class PlainDocstrings(griffe.Extension):
    """Rewrites every docstring of the loaded objects with :func:`markdown_docstring`."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is None:
            return
        parameters = {p.name for p in obj.parameters} if isinstance(obj, griffe.Function) else set()
        obj.docstring.value = markdown_docstring(obj.docstring.value, parameters)
