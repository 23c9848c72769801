"""Text tools: cat, head, tail, grep, wc, sort, uniq, cut, tr, tee, sha256sum, date."""

from __future__ import annotations

import getopt
import hashlib
import re
import time

from hosts.sim.registry import Ctx, command
from hosts.sim.vfs import FSError


async def read_inputs(ctx: Ctx, names: list[str], tool: str) -> tuple[list[tuple[str, str | None]], int]:
    """(name, text or None when unreadable) for each operand; ``-`` or none reads stdin."""
    if not names:
        return [("-", await ctx.stdin())], 0
    out: list[tuple[str, str | None]] = []
    status = 0
    for name in names:
        if name == "-":
            out.append(("-", await ctx.stdin()))
            continue
        try:
            out.append((name, ctx.state.vfs.read(ctx.path(name), ctx.cred)))
        except FSError as exc:
            ctx.err(f"{tool}: {ctx.quote(name)}: {exc.reason}\n")
            out.append((name, None))
            status = 1
    return out, status


def bad_option(ctx: Ctx, exc: getopt.GetoptError, usage: str) -> int:
    opt = exc.opt
    if len(opt) == 1:
        ctx.err(f"{ctx.name}: invalid option -- {ctx.qa(opt)}\n")
    else:
        ctx.err(f"{ctx.name}: unrecognized option {ctx.qa('--' + opt)}\n")
    ctx.err(f"{usage}Try {ctx.qa(ctx.name + ' --help')} for more information.\n")
    return 2 if ctx.name == "grep" else 1


@command("cat")
async def cat(ctx: Ctx) -> int:
    names = [a for a in ctx.args if not (a.startswith("-") and a != "-")]
    inputs, status = await read_inputs(ctx, names, "cat")
    for _, text in inputs:
        if text is not None:
            ctx.out(text)
    return status


def _count(value: str) -> tuple[int, bool]:
    """``25`` → (25, False); ``+3`` → (3, True) for tail's from-start form; ``-5`` → all but last 5."""
    if value.startswith("+"):
        return int(value[1:]), True
    return int(value.lstrip("-")), value.startswith("-")


@command("head")
async def head(ctx: Ctx) -> int:
    return await _head_tail(ctx, tail=False)


@command("tail")
async def tail(ctx: Ctx) -> int:
    return await _head_tail(ctx, tail=True)


async def _head_tail(ctx: Ctx, *, tail: bool) -> int:
    args = list(ctx.args)
    if args and re.fullmatch(r"-\d+", args[0]):
        args[0:1] = ["-n", args[0][1:]]
    try:
        opts, names = getopt.gnu_getopt(args, "n:c:qvf", ["lines=", "bytes=", "quiet", "silent", "verbose"])
    except getopt.GetoptError as exc:
        return bad_option(ctx, exc, f"Usage: {ctx.name} [OPTION]... [FILE]...\n")
    lines, mode, special = 10, "n", False
    for opt, value in opts:
        if opt in ("-n", "--lines", "-c", "--bytes"):
            try:
                lines, special = _count(value)
            except ValueError:
                what = "lines" if opt in ("-n", "--lines") else "bytes"
                ctx.err(f"{ctx.name}: invalid number of {what}: {ctx.qa(value)}\n")
                return 1
            mode = "c" if opt in ("-c", "--bytes") else "n"
    inputs, status = await read_inputs(ctx, names, ctx.name)
    for index, (name, text) in enumerate(inputs):
        if text is None:
            continue
        if len(inputs) > 1:
            ctx.out(("\n" if index else "") + f"==> {'standard input' if name == '-' else name} <==\n")
        if mode == "c":
            data = text.encode("utf-8", "surrogateescape")
            if tail:
                part = data[lines - 1 :] if special else data[-lines:] if lines else b""
            else:
                part = data[:-lines] if special else data[:lines]
            ctx.out(part.decode("utf-8", "surrogateescape"))
            continue
        rows = text.splitlines(keepends=True)
        if tail:
            chosen = rows[max(0, lines - 1) :] if special else rows[-lines:] if lines else []
        else:
            chosen = rows[:-lines] if special and lines else rows[:lines]
        ctx.out("".join(chosen))
    return status


@command("grep", "egrep", "fgrep")
async def grep(ctx: Ctx) -> int:
    try:
        opts, rest = getopt.gnu_getopt(
            ctx.args,
            "EFGPivclLqsnhHwxoe:m:aRr",
            [
                "extended-regexp",
                "fixed-strings",
                "ignore-case",
                "invert-match",
                "count",
                "files-with-matches",
                "files-without-match",
                "quiet",
                "silent",
                "no-messages",
                "line-number",
                "no-filename",
                "with-filename",
                "word-regexp",
                "line-regexp",
                "only-matching",
                "regexp=",
                "max-count=",
                "color=",
                "colour=",
                "text",
            ],
        )
    except getopt.GetoptError as exc:
        return bad_option(ctx, exc, "Usage: grep [OPTION]... PATTERNS [FILE]...\n")
    flags = {opt for opt, _ in opts}
    patterns = [value for opt, value in opts if opt in ("-e", "--regexp")]
    if not patterns:
        if not rest:
            ctx.err("Usage: grep [OPTION]... PATTERNS [FILE]...\nTry 'grep --help' for more information.\n")
            return 2
        patterns = [rest.pop(0)]
    kind = "E" if ({"-E", "--extended-regexp"} & flags or ctx.name == "egrep") else "G"
    if {"-F", "--fixed-strings"} & flags or ctx.name == "fgrep":
        kind = "F"
    if "-P" in flags:
        kind = "P"
    has = lambda *names: bool(flags & set(names))  # noqa: E731
    try:
        regex = compile_patterns(
            patterns,
            kind,
            ignore_case=has("-i", "--ignore-case"),
            word=has("-w", "--word-regexp"),
            line=has("-x", "--line-regexp"),
        )
    except re.error:
        ctx.err("grep: Unmatched [, [^, [:, [., or [=\n")
        return 2
    quiet, invert = has("-q", "--quiet", "--silent"), has("-v", "--invert-match")
    silent = has("-s", "--no-messages")
    max_count = next((int(v) for o, v in opts if o in ("-m", "--max-count")), -1)
    names = rest
    many = (len(names) > 1 or has("-H", "--with-filename")) and not has("-h", "--no-filename")
    matched, errors = False, False
    sources: list[tuple[str, str | None]] = []
    if not names:
        sources = [("(standard input)", await ctx.stdin())]
    for name in names:
        try:
            sources.append((name, ctx.state.vfs.read(ctx.path(name), ctx.cred)))
        except FSError as exc:
            errors = True
            if not silent:
                ctx.err(f"grep: {name}: {exc.reason}\n")
    # -l, -L and -q need one matching line per file: GNU grep stops reading there too.
    first_only = quiet or has("-l", "--files-with-matches", "-L", "--files-without-match")
    for name, text in sources:
        assert text is not None
        hits: list[tuple[int, str]] = []
        for number, line in enumerate(text.splitlines(), 1):
            if (regex.search(line) is not None) != invert:
                hits.append((number, line))
                if len(hits) == max_count or first_only:
                    break
        if hits:
            matched = True
            if quiet:
                return 0
        if has("-l", "--files-with-matches"):
            if hits:
                ctx.out(name + "\n")
            continue
        if has("-L", "--files-without-match"):
            if not hits:
                ctx.out(name + "\n")
            continue
        if has("-c", "--count"):
            ctx.out(f"{name}:{len(hits)}\n" if many else f"{len(hits)}\n")
            continue
        if hits and "\0" in text and not has("-a", "--text"):
            shown = "(standard input)" if name == "(standard input)" else name
            ctx.out(
                f"grep: {shown}: binary file matches\n"
                if ctx.profile.grep >= (3, 5)
                else f"Binary file {shown} matches\n"
            )
            continue
        for number, line in hits:
            prefix = (f"{name}:" if many else "") + (f"{number}:" if has("-n", "--line-number") else "")
            if has("-o", "--only-matching") and not invert:
                for found in regex.finditer(line):
                    ctx.out(prefix + found.group(0) + "\n")
            else:
                ctx.out(prefix + line + "\n")
    if errors and not (quiet and matched):
        return 2
    return 0 if matched else 1


_CLASSES = {
    "alpha": "A-Za-z",
    "digit": "0-9",
    "alnum": "A-Za-z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r" \t\n\r\f\v",
    "blank": r" \t",
    "punct": r"!-/:-@\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "print": r" -~",
    "graph": r"!-~",
    "cntrl": r"\x00-\x1f",
}


def posix_to_python(pattern: str, extended: bool) -> str:
    """Translate a POSIX BRE/ERE into Python's regex syntax."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "[":
            j = i + 1
            body = ["["]
            if j < n and pattern[j] == "^":
                body.append("^")
                j += 1
            if j < n and pattern[j] == "]":
                body.append(r"\]")
                j += 1
            while j < n and pattern[j] != "]":
                if pattern.startswith("[:", j):
                    end = pattern.find(":]", j)
                    body.append(_CLASSES.get(pattern[j + 2 : end], ""))
                    j = end + 2
                    continue
                body.append("\\\\" if pattern[j] == "\\" else pattern[j])
                j += 1
            out.append("".join(body) + "]")
            i = j + 1
            continue
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "<>":
                out.append(r"\b")
            elif not extended and nxt in "(){}|+?":
                out.append(nxt)
            else:
                out.append("\\" + nxt)
            i += 2
            continue
        if not extended and c in "(){}|+?":
            out.append("\\" + c)
        elif extended and c == "{" and not re.match(r"\{\d*,?\d*\}", pattern[i:]):
            out.append(r"\{")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def compile_patterns(
    patterns: list[str], kind: str, *, ignore_case: bool = False, word: bool = False, line: bool = False
) -> re.Pattern[str]:
    parts = []
    for pattern in patterns:
        for piece in pattern.split("\n"):
            if kind == "F":
                parts.append(re.escape(piece))
            elif kind == "P":
                parts.append(piece)
            else:
                parts.append(posix_to_python(piece, kind == "E"))
    body = "|".join(f"(?:{p})" for p in parts)
    if word:
        body = rf"(?<!\w)(?:{body})(?!\w)"
    if line:
        body = rf"^(?:{body})$"
    return re.compile(body, re.IGNORECASE if ignore_case else 0)


@command("wc")
async def wc(ctx: Ctx) -> int:
    try:
        opts, names = getopt.gnu_getopt(ctx.args, "lwcm", ["lines", "words", "bytes", "chars"])
    except getopt.GetoptError as exc:
        return bad_option(ctx, exc, "Usage: wc [OPTION]... [FILE]...\n")
    flags = {o for o, _ in opts} or {"-l", "-w", "-c"}
    inputs, status = await read_inputs(ctx, names, "wc")
    rows = []
    for name, text in inputs:
        if text is None:
            continue
        counts = []
        if flags & {"-l", "--lines"}:
            counts.append(text.count("\n"))
        if flags & {"-w", "--words"}:
            counts.append(len(text.split()))
        if flags & {"-c", "--bytes", "-m", "--chars"}:
            counts.append(len(text.encode("utf-8", "surrogateescape")))
        rows.append((counts, "" if name == "-" else name))
    single = len(rows) == 1 and len(rows[0][0]) == 1 and not rows[0][1]
    width = 1 if single else max(len(str(c)) for counts, _ in rows for c in counts) if rows else 1
    for counts, name in rows:
        ctx.out(" ".join(f"{c:>{width}}" for c in counts) + (f" {name}" if name else "") + "\n")
    return status


@command("sort")
async def sort(ctx: Ctx) -> int:
    try:
        opts, names = getopt.gnu_getopt(ctx.args, "nrufk:t:h", ["numeric-sort", "reverse", "unique"])
    except getopt.GetoptError as exc:
        return bad_option(ctx, exc, "Usage: sort [OPTION]... [FILE]...\n")
    flags = {o for o, _ in opts}
    key = next((v for o, v in opts if o == "-k"), None)
    sep = next((v for o, v in opts if o == "-t"), None)
    inputs, status = await read_inputs(ctx, names, "sort")
    lines = [line for _, text in inputs if text for line in text.splitlines()]

    def field(line: str) -> str:
        if not key:
            return line
        start = int(key.split(",")[0].rstrip("nr")) - 1
        parts = line.split(sep) if sep else line.split()
        return parts[start] if start < len(parts) else ""

    numeric = "-n" in flags or "--numeric-sort" in flags or (key or "").endswith("n")

    def sort_key(line: str) -> tuple[float, str]:
        value = field(line)
        if numeric:
            match = re.match(r"\s*(-?\d+(?:\.\d+)?)", value)
            return (float(match.group(1)) if match else 0.0, line)
        return (0.0, value)

    result = sorted(lines, key=sort_key, reverse="-r" in flags or "--reverse" in flags)
    if "-u" in flags or "--unique" in flags:
        result = list(dict.fromkeys(result))
    ctx.out("".join(line + "\n" for line in result))
    return status


@command("uniq")
async def uniq(ctx: Ctx) -> int:
    count = "-c" in ctx.args
    inputs, status = await read_inputs(ctx, [a for a in ctx.args if not a.startswith("-")], "uniq")
    previous, seen = None, 0
    out = []
    for line in (inputs[0][1] or "").splitlines() if inputs else []:
        if line == previous:
            seen += 1
            continue
        if previous is not None:
            out.append((seen, previous))
        previous, seen = line, 1
    if previous is not None:
        out.append((seen, previous))
    ctx.out("".join((f"{n:>7} {line}\n" if count else line + "\n") for n, line in out))
    return status


@command("cut")
async def cut(ctx: Ctx) -> int:
    try:
        opts, names = getopt.gnu_getopt(ctx.args, "d:f:c:s", ["delimiter=", "fields="])
    except getopt.GetoptError as exc:
        return bad_option(ctx, exc, "Usage: cut OPTION... [FILE]...\n")
    values = dict(opts)
    delim = values.get("-d", values.get("--delimiter", "\t"))
    spec = values.get("-f", values.get("--fields")) or values.get("-c")
    if not spec:
        ctx.err(
            "cut: you must specify a list of bytes, characters, or fields\nTry 'cut --help' for more information.\n"
        )
        return 1
    wanted: list[tuple[int, int]] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        wanted.append((int(low or 1), int(high) if high else (10**9 if "-" in part else int(low))))
    inputs, status = await read_inputs(ctx, names, "cut")
    for _, text in inputs:
        for line in (text or "").splitlines():
            if "-c" in values:
                ctx.out("".join(ch for i, ch in enumerate(line, 1) if any(a <= i <= b for a, b in wanted)) + "\n")
            elif delim not in line:
                if "-s" not in values:
                    ctx.out(line + "\n")
            else:
                fields = line.split(delim)
                ctx.out(delim.join(f for i, f in enumerate(fields, 1) if any(a <= i <= b for a, b in wanted)) + "\n")
    return status


def _tr_set(text: str) -> str:
    for name, chars in (("[:upper:]", "A-Z"), ("[:lower:]", "a-z"), ("[:digit:]", "0-9"), ("[:space:]", " \t\n")):
        text = text.replace(name, chars)
    chars, i = [], 0
    while i < len(text):  # backslash escapes first: \0, \012, \n, \t, \\
        if text[i] == "\\" and i + 1 < len(text):
            octal = re.match(r"[0-7]{1,3}", text[i + 1 :])
            if octal:
                chars.append(chr(int(octal.group(0), 8)))
                i += 1 + len(octal.group(0))
            else:
                chars.append({"n": "\n", "t": "\t", "r": "\r"}.get(text[i + 1], text[i + 1]))
                i += 2
        else:
            chars.append(text[i])
            i += 1
    out, i = [], 0
    while i < len(chars):
        if i + 2 < len(chars) and chars[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(chars[i]), ord(chars[i + 2]) + 1))
            i += 3
        else:
            out.append(chars[i])
            i += 1
    return "".join(out)


@command("tr")
async def tr(ctx: Ctx) -> int:
    args = list(ctx.args)
    delete = squeeze = False
    while args and args[0].startswith("-") and len(args[0]) > 1:
        flag = args.pop(0)
        delete, squeeze = delete or "d" in flag, squeeze or "s" in flag
    text = await ctx.stdin()
    if delete:
        chars = set(_tr_set(args[0])) if args else set()
        ctx.out("".join(c for c in text if c not in chars))
        return 0
    if len(args) < 2 and not squeeze:
        ctx.err("tr: missing operand\nTry 'tr --help' for more information.\n")
        return 1
    src = _tr_set(args[0])
    dst = _tr_set(args[1]) if len(args) > 1 else src
    dst = dst + dst[-1:] * (len(src) - len(dst))
    result = text.translate(str.maketrans(src, dst[: len(src)]))
    if squeeze:
        result = re.sub("([" + re.escape(dst) + "])\\1+", r"\1", result)
    ctx.out(result)
    return 0


@command("tee")
async def tee(ctx: Ctx) -> int:
    append = "-a" in ctx.args
    text = await ctx.stdin()
    status = 0
    for name in (a for a in ctx.args if not a.startswith("-")):
        try:
            ctx.state.vfs.write(ctx.path(name), text, ctx.cred, append=append)
        except FSError as exc:
            ctx.err(f"tee: {ctx.quote(name)}: {exc.reason}\n")
            status = 1
    ctx.out(text)
    return status


@command("sha256sum", "sha1sum", "md5sum")
async def checksum(ctx: Ctx) -> int:
    algorithm = {"sha256sum": "sha256", "sha1sum": "sha1", "md5sum": "md5"}[ctx.name]
    names = [a for a in ctx.args if not a.startswith("-") or a == "-"]
    inputs, status = await read_inputs(ctx, names, ctx.name)
    for name, text in inputs:
        if text is not None:
            digest = hashlib.new(algorithm, text.encode("utf-8", "surrogateescape")).hexdigest()
            ctx.out(f"{digest}  {name}\n")
    return status


@command("date")
async def date(ctx: Ctx) -> int:
    now = ctx.state.clock.now()
    fmt = "%a %b %e %H:%M:%S UTC %Y"
    args = list(ctx.args)
    while args:
        arg = args.pop(0)
        if arg.startswith("+"):
            fmt = arg[1:]
        elif arg in ("-d", "--date") and args:
            value = args.pop(0)
            if value.startswith("@"):
                now = float(value[1:])
        elif arg.startswith("--date="):
            value = arg.split("=", 1)[1]
            if value.startswith("@"):
                now = float(value[1:])
        elif arg in ("-R", "--rfc-2822"):
            fmt = "%a, %d %b %Y %H:%M:%S +0000"
        elif arg in ("-I", "--iso-8601"):
            fmt = "%Y-%m-%d"
    moment = time.gmtime(now)
    fmt = fmt.replace("%s", str(int(now))).replace("%N", f"{int((now % 1) * 1e9):09d}").replace("%Z", "UTC")
    ctx.out(time.strftime(fmt, moment) + "\n")
    return 0
