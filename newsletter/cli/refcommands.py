"""The command reference page, read from the Click command tree Typer builds from the app.

Every command and sub-command (in the order ``--help`` lists them), its help (the docstring:
what it does, the details, the example), its usage line, and a table of its arguments and
options with their type or choices, default and help — the objects ``--help`` is printed
from, never its printed text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import refmarkdown as md

PROG = "newsletter"


def commands_page(app: Any) -> str:
    """The page (Markdown) for the Typer ``app``."""
    import typer.main

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name=PROG, **root.context_settings)
    lines = md.header(
        "Commands",
        "the Typer app (newsletter/cli/commands.py)",
        "Every command of `newsletter`, as its `--help` shows it. Every command also takes "
        f"{md.code('-h')} / {md.code('--help')}. What a command's exit status means: "
        "[exit codes](exit-codes.md).",
    )
    lines += _options_table(root, ctx, "Options before the command:")
    lines += ["", "Commands, in the order of a month's work:", ""]
    lines += [f"- [{md.code(f'{PROG} {name}')}](#{_anchor(name)}): {_summary(sub)}"
              for name, sub, _ in _commands(root, ctx)]  # fmt: skip
    for name, sub, sub_ctx in _commands(root, ctx):
        lines += ["", f"## {PROG} {name}", ""]
        lines += ["```text", f"{PROG} {name} {_usage(sub, sub_ctx)}".rstrip(), "```", ""]
        lines += _help_text(sub.help or "")
        lines += _arguments_table(sub, sub_ctx)
        lines += _options_table(sub, sub_ctx, "Options:")
    return md.page(lines)


def _commands(group: Any, ctx: Any) -> Iterator[tuple[str, Any, Any]]:
    """(path, command, its context) for every visible command under ``group``, depth first."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub_ctx = command.context_class(command, info_name=name, parent=ctx)
        yield name, command, sub_ctx
        if hasattr(command, "list_commands"):  # a group: its own commands, as "a b"
            for sub_name, sub, sub_sub_ctx in _commands(command, sub_ctx):
                yield f"{name} {sub_name}", sub, sub_sub_ctx


def _anchor(name: str) -> str:
    """The anchor MyST gives the heading ``newsletter NAME`` (myst_heading_anchors)."""
    return f"{PROG}-{name.replace(' ', '-')}"


def _summary(command: Any) -> str:
    first = (command.help or "").strip().split("\n\n")[0]
    return md.prose(" ".join(first.split()))


def _help_text(text: str) -> list[str]:
    """The docstring's paragraphs; ``Example: …`` lines become a console block."""
    lines: list[str] = []
    for paragraph in text.strip().split("\n\n"):
        joined = " ".join(paragraph.split())
        if joined.startswith("Example:"):
            example = joined.removeprefix("Example:").strip()
            lines += ["Example:", "", "```console", f"$ {example}", "```", ""]
        elif joined:
            lines += [md.prose(joined), ""]
    return lines


def _usage(command: Any, ctx: Any) -> str:
    pieces = ["[OPTIONS]"] if _options(command, ctx) else []
    for param in _arguments(command, ctx):
        name = param.make_metavar(ctx).strip("{}[]. ")
        name += "..." if param.nargs == -1 else ""
        pieces.append(name if param.required else f"[{name}]")
    if hasattr(command, "list_commands"):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def _arguments(command: Any, ctx: Any) -> list[Any]:
    return [p for p in command.get_params(ctx) if p.param_type_name == "argument"]


def _options(command: Any, ctx: Any) -> list[Any]:
    help_names = set(ctx.help_option_names)
    return [
        p
        for p in command.get_params(ctx)
        if p.param_type_name == "option"
        and not getattr(p, "hidden", False)
        and not help_names & set(p.opts)
    ]


def _arguments_table(command: Any, ctx: Any) -> list[str]:
    arguments = _arguments(command, ctx)
    if not arguments:
        return []
    rows = [
        (
            md.code(p.make_metavar(ctx).strip("{}[]. ")),
            _kind(p, ctx),
            "required" if p.required else _default(p),
            md.prose(getattr(p, "help", None) or ""),
        )
        for p in arguments
    ]
    return ["Arguments:", "", *md.table(("argument", "type", "default", "meaning"), rows), ""]


def _options_table(command: Any, ctx: Any, title: str) -> list[str]:
    options = _options(command, ctx)
    if not options:
        return []
    rows = [
        (
            ", ".join(md.code(o) for o in sorted(p.opts + p.secondary_opts, key=len)),
            _kind(p, ctx),
            _default(p),
            md.prose(p.help or ""),
        )
        for p in options
    ]
    return [title, "", *md.table(("option", "type", "default", "meaning"), rows), ""]


def _kind(param: Any, ctx: Any) -> str:
    """What the value is: a flag, one of some choices, a number in a range, a path, ..."""
    if getattr(param, "is_flag", False):
        return "flag"
    kind = param.type
    choices = getattr(kind, "choices", None)
    if choices:
        text = "one of " + ", ".join(md.code(str(c)) for c in choices)
    elif kind.name in ("integer", "int range", "float", "float range"):
        text = ("whole number" if kind.name.startswith("int") else "number") + _range(kind)
    else:
        metavar = param.make_metavar(ctx).strip("{}[]. ")
        text = "path" if kind.name == "path" else md.code(metavar)
        if metavar.startswith("<") or metavar.lower() in (param.name, "text", "string"):
            text = "path" if kind.name == "path" else "text"
    if getattr(param, "multiple", False) or param.nargs == -1:
        text += " (repeatable)" if param.param_type_name == "option" else ", one or more"
    return text


def _range(kind: Any) -> str:
    """`, ≥ 1`, `, 1 to 65535`: the bounds a range type accepts."""
    low, high = getattr(kind, "min", None), getattr(kind, "max", None)
    if low is not None and high is not None:
        return f", {low:g} to {high:g}"
    if low is not None:
        return f", {'>' if kind.min_open else '≥'} {low:g}"
    if high is not None:
        return f", {'<' if kind.max_open else '≤'} {high:g}"
    return ""


def _default(param: Any) -> str:
    """The default when it is a value (a flag's "off" and "not given" say nothing)."""
    default = param.default
    if default is None or default is False or default == () or callable(default):
        return ""
    if default is True:
        return "on"
    return md.code(str(default))
