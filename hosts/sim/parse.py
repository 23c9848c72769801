"""A small POSIX shell parser: words with their quoting, operators, and the command tree.

Covers what remote automation sends: ``;``, ``&&``, ``||``, newlines, pipelines, ``!``,
redirections (``>``, ``>>``, ``<``, ``2>``, ``2>&1``, ``&>``), single/double quotes, backslashes,
``$VAR``/``${VAR}``/``${VAR:-x}``, ``$(...)`` and backticks, ``{ ...; }``, ``( ... )``, ``if``,
``for`` and ``while``. Each word keeps which characters were quoted, so globbing and field
splitting apply only where a real shell would apply them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

OPERATORS = ("&&", "||", ";;", "<<-", "<<", ">>", "<&", ">&", "<>", ">|", "&>", ";", "&", "|", "(", ")", "<", ">")
META = set(" \t\n;&|()<>")
RESERVED = {"if", "then", "elif", "else", "fi", "for", "in", "do", "done", "while", "until", "{", "}", "!"}
REDIRECT_OPS = {"<", ">", ">>", "<&", ">&", "<>", ">|", "&>", "<<", "<<-"}


class ParseError(Exception):
    """A script the shell cannot parse; the message is what bash would print after ``bash: ``."""


@dataclass(slots=True)
class Part:
    """A piece of a word: literal text, a parameter or a command substitution."""

    text: str
    quoted: bool
    kind: str = "lit"  # lit | var | cmd | tilde


@dataclass(slots=True)
class Word:
    """One shell word as written, made of parts."""

    parts: list[Part]
    line: int = 1

    def plain(self) -> str | None:
        """The word's text if it is one unquoted literal (how reserved words are recognised)."""
        if len(self.parts) == 1 and self.parts[0].kind == "lit" and not self.parts[0].quoted:
            return self.parts[0].text
        return None

    def source(self) -> str:
        return "".join(p.text if p.kind == "lit" else "$" + p.text for p in self.parts)


@dataclass(slots=True)
class Token:
    """A lexer token: a word, an operator, an IO number, a newline or the end."""

    kind: str  # word | op | io | newline | eof
    value: str = ""
    word: Word | None = None
    line: int = 1


@dataclass(slots=True)
class Redirect:
    """``[fd]op target``; for ``>&``/``<&`` the target is an fd number or ``-``."""

    fd: int
    op: str
    target: Word


@dataclass(slots=True)
class Simple:
    """A simple command: assignments, words and redirections."""

    assigns: list[tuple[str, Word]]
    words: list[Word]
    redirects: list[Redirect]
    line: int = 1


@dataclass(slots=True)
class Pipeline:
    """Commands joined by ``|``; ``negate`` for a leading ``!``."""

    commands: list[Node]
    negate: bool = False


@dataclass(slots=True)
class AndOr:
    """Pipelines joined by ``&&`` and ``||``."""

    first: Node
    rest: list[tuple[str, Node]]


@dataclass(slots=True)
class Sequence:
    """A list of commands run one after another (``;``, ``&`` or newlines)."""

    items: list[Node]


@dataclass(slots=True)
class Group:
    """``{ list; }`` or ``( list )`` (a subshell) with its redirections."""

    body: Sequence
    subshell: bool
    redirects: list[Redirect] = field(default_factory=list)


@dataclass(slots=True)
class If:
    """``if``/``elif`` clauses and an optional ``else``."""

    clauses: list[tuple[Sequence, Sequence]]
    orelse: Sequence | None
    redirects: list[Redirect] = field(default_factory=list)


@dataclass(slots=True)
class For:
    """``for NAME [in WORDS]; do ...; done``."""

    name: str
    words: list[Word] | None
    body: Sequence
    redirects: list[Redirect] = field(default_factory=list)


@dataclass(slots=True)
class While:
    """``while``/``until`` loops."""

    cond: Sequence
    body: Sequence
    until: bool = False
    redirects: list[Redirect] = field(default_factory=list)


Node = Simple | Pipeline | AndOr | Sequence | Group | If | For | While


# --- lexer -------------------------------------------------------------------------------------


class Lexer:
    """Turns a script into tokens, keeping quoting inside words."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.i = 0
        self.line = 1

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        while True:
            token = self._next()
            out.append(token)
            if token.kind == "eof":
                return out

    def _next(self) -> Token:
        src, n = self.src, len(self.src)
        while self.i < n:
            c = src[self.i]
            if c in " \t":
                self.i += 1
            elif c == "\\" and src.startswith("\\\n", self.i):
                self.i += 2
                self.line += 1
            elif c == "#":
                while self.i < n and src[self.i] != "\n":
                    self.i += 1
            else:
                break
        if self.i >= n:
            return Token("eof", line=self.line)
        c = src[self.i]
        if c == "\n":
            self.i += 1
            self.line += 1
            return Token("newline", line=self.line - 1)
        for op in OPERATORS:
            if src.startswith(op, self.i):
                self.i += len(op)
                return Token("op", op, line=self.line)
        line = self.line
        word = self._word()
        text = word.plain()
        if text is not None and text.isdigit() and self.i < n and src[self.i] in "<>":
            return Token("io", text, line=line)
        return Token("word", word=word, line=line)

    def _word(self) -> Word:
        src, n = self.src, len(self.src)
        parts: list[Part] = []
        line = self.line
        while self.i < n:
            c = src[self.i]
            if c in META:
                break
            if c == "\\":
                if self.i + 1 >= n:
                    self.i += 1
                    continue
                nxt = src[self.i + 1]
                self.i += 2
                if nxt == "\n":
                    self.line += 1
                    continue
                _add(parts, nxt, True)
            elif c == "'":
                end = src.find("'", self.i + 1)
                if end < 0:
                    raise ParseError("unexpected EOF while looking for matching `''")
                text = src[self.i + 1 : end]
                self.line += text.count("\n")
                _add(parts, text, True, force=True)
                self.i = end + 1
            elif c == '"':
                self.i += 1
                self._double_quoted(parts)
            elif c == "$":
                self._dollar(parts, quoted=False)
            elif c == "`":
                self._backtick(parts, quoted=False)
            elif c == "~" and not parts:
                end = self.i + 1
                while end < n and (src[end].isalnum() or src[end] in "_-"):
                    end += 1
                parts.append(Part(src[self.i + 1 : end], False, "tilde"))
                self.i = end
            else:
                _add(parts, c, False)
                self.i += 1
        return Word(parts, line)

    def _double_quoted(self, parts: list[Part]) -> None:
        src, n = self.src, len(self.src)
        _add(parts, "", True, force=True)  # "" is an empty word, not no word
        while self.i < n:
            c = src[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\" and self.i + 1 < n and src[self.i + 1] in '$`"\\\n':
                if src[self.i + 1] != "\n":
                    _add(parts, src[self.i + 1], True)
                self.i += 2
            elif c == "$":
                self._dollar(parts, quoted=True)
            elif c == "`":
                self._backtick(parts, quoted=True)
            else:
                if c == "\n":
                    self.line += 1
                _add(parts, c, True)
                self.i += 1
        raise ParseError("unexpected EOF while looking for matching `\"'")

    def _dollar(self, parts: list[Part], *, quoted: bool) -> None:
        src, n = self.src, len(self.src)
        i = self.i + 1
        if i >= n:
            _add(parts, "$", quoted)
            self.i = i
            return
        c = src[i]
        if src.startswith("((", i):
            end = _matching(src, i + 1, "(", ")")
            close = end + 1 if end + 1 < n and src[end + 1] == ")" else end
            parts.append(Part(src[i + 2 : end], quoted, "arith"))
            self.i = close + 1
        elif c == "(":
            end = _matching(src, i, "(", ")")
            parts.append(Part(src[i + 1 : end], quoted, "cmd"))
            self.i = end + 1
        elif c == "{":
            end = _matching(src, i, "{", "}")
            parts.append(Part(src[i + 1 : end], quoted, "var"))
            self.i = end + 1
        elif c.isalpha() or c == "_":
            end = i
            while end < n and (src[end].isalnum() or src[end] == "_"):
                end += 1
            parts.append(Part(src[i:end], quoted, "var"))
            self.i = end
        elif c.isdigit() or c in "?$#@*!-":
            parts.append(Part(c, quoted, "var"))
            self.i = i + 1
        else:
            _add(parts, "$", quoted)
            self.i = i

    def _backtick(self, parts: list[Part], *, quoted: bool) -> None:
        end = self.src.find("`", self.i + 1)
        if end < 0:
            raise ParseError("unexpected EOF while looking for matching ``'")
        body = self.src[self.i + 1 : end].replace("\\`", "`").replace("\\$", "$").replace("\\\\", "\\")
        parts.append(Part(body, quoted, "cmd"))
        self.i = end + 1


def _add(parts: list[Part], text: str, quoted: bool, *, force: bool = False) -> None:
    """Append literal text, merging with the previous literal of the same quoting."""
    if parts and parts[-1].kind == "lit" and parts[-1].quoted == quoted and not force:
        parts[-1].text += text
    else:
        parts.append(Part(text, quoted))


def _matching(src: str, start: int, open_: str, close: str) -> int:
    """Index of the bracket closing the one at ``start``, skipping quoted text."""
    depth, i, n = 0, start, len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "'" and open_ == "(":
            end = src.find("'", i + 1)
            i = (end if end >= 0 else n) + 1
            continue
        if c == '"':
            i += 1
            while i < n and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
            i += 1
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ParseError(f"unexpected EOF while looking for matching `{close}'")


# --- parser ------------------------------------------------------------------------------------


class Parser:
    """Recursive descent over the tokens into the command tree."""

    def __init__(self, src: str) -> None:
        self.tokens = Lexer(src).tokens()
        self.pos = 0

    def parse(self) -> Sequence:
        body = self._list(stop=set())
        token = self._peek()
        if token.kind != "eof":
            raise ParseError(f"syntax error near unexpected token `{token.value or _text(token)}'")
        return body

    # helpers
    def _peek(self) -> Token:
        return self.tokens[self.pos]

    def _take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _is_word(self, text: str) -> bool:
        token = self._peek()
        return token.kind == "word" and token.word is not None and token.word.plain() == text

    def _expect_word(self, text: str) -> None:
        self._skip_newlines()
        if not self._is_word(text):
            token = self._peek()
            if token.kind == "eof":
                raise ParseError("syntax error: unexpected end of file")
            raise ParseError(f"syntax error near unexpected token `{token.value or _text(token)}'")
        self._take()

    def _skip_newlines(self) -> None:
        while self._peek().kind == "newline":
            self._take()

    def _at_stop(self, stop: set[str]) -> bool:
        token = self._peek()
        if token.kind == "eof":
            return True
        if token.kind == "op" and token.value == ")" and ")" in stop:
            return True
        return token.kind == "word" and token.word is not None and token.word.plain() in stop

    # grammar
    def _list(self, stop: set[str]) -> Sequence:
        items: list[Node] = []
        self._skip_newlines()
        while not self._at_stop(stop):
            items.append(self._and_or(stop))
            token = self._peek()
            if token.kind == "op" and token.value in (";", "&"):
                self._take()
            elif token.kind == "newline":
                pass
            elif not self._at_stop(stop):
                raise ParseError(f"syntax error near unexpected token `{token.value or _text(token)}'")
            self._skip_newlines()
        return Sequence(items)

    def _and_or(self, stop: set[str]) -> Node:
        first = self._pipeline(stop)
        rest: list[tuple[str, Node]] = []
        while self._peek().kind == "op" and self._peek().value in ("&&", "||"):
            op = self._take().value
            self._skip_newlines()
            rest.append((op, self._pipeline(stop)))
        return AndOr(first, rest) if rest else first

    def _pipeline(self, stop: set[str]) -> Node:
        negate = False
        if self._is_word("!"):
            self._take()
            negate = True
        commands = [self._command(stop)]
        while self._peek().kind == "op" and self._peek().value == "|":
            self._take()
            self._skip_newlines()
            commands.append(self._command(stop))
        if len(commands) == 1 and not negate:
            return commands[0]
        return Pipeline(commands, negate)

    def _command(self, stop: set[str]) -> Node:
        token = self._peek()
        if token.kind == "op" and token.value == "(":
            self._take()
            body = self._list(stop={")"})
            if not (self._peek().kind == "op" and self._peek().value == ")"):
                raise ParseError("syntax error: unexpected end of file")
            self._take()
            return Group(body, True, self._redirects())
        word = token.word.plain() if token.kind == "word" and token.word is not None else None
        if word == "{":
            self._take()
            body = self._list(stop={"}"})
            self._expect_word("}")
            return Group(body, False, self._redirects())
        if word == "if":
            return self._if()
        if word in ("while", "until"):
            self._take()
            cond = self._list(stop={"do"})
            self._expect_word("do")
            body = self._list(stop={"done"})
            self._expect_word("done")
            return While(cond, body, word == "until", self._redirects())
        if word == "for":
            return self._for()
        if token.kind == "eof" or (token.kind == "op" and token.value not in REDIRECT_OPS):
            shown = "newline" if token.kind == "eof" else token.value
            raise ParseError(f"syntax error near unexpected token `{shown}'")
        if word in ("then", "elif", "else", "fi", "do", "done", "}"):
            raise ParseError(f"syntax error near unexpected token `{word}'")
        return self._simple()

    def _if(self) -> If:
        self._take()
        clauses: list[tuple[Sequence, Sequence]] = []
        orelse: Sequence | None = None
        while True:
            cond = self._list(stop={"then"})
            self._expect_word("then")
            body = self._list(stop={"elif", "else", "fi"})
            clauses.append((cond, body))
            if self._is_word("elif"):
                self._take()
                continue
            if self._is_word("else"):
                self._take()
                orelse = self._list(stop={"fi"})
            self._expect_word("fi")
            return If(clauses, orelse, self._redirects())

    def _for(self) -> For:
        self._take()
        token = self._take()
        name = token.word.plain() if token.word is not None else None
        if not name or not name.replace("_", "a").isalnum():
            raise ParseError(f"`{_text(token)}': not a valid identifier")
        words: list[Word] | None = None
        self._skip_newlines()
        if self._is_word("in"):
            self._take()
            words = []
            while self._peek().kind == "word":
                word = self._take().word
                assert word is not None
                words.append(word)
        if self._peek().kind == "op" and self._peek().value == ";":
            self._take()
        self._expect_word("do")
        body = self._list(stop={"done"})
        self._expect_word("done")
        return For(name, words, body, self._redirects())

    def _simple(self) -> Simple:
        assigns: list[tuple[str, Word]] = []
        words: list[Word] = []
        redirects: list[Redirect] = []
        line = self._peek().line
        while True:
            token = self._peek()
            if token.kind == "io" or (token.kind == "op" and token.value in REDIRECT_OPS):
                redirects.append(self._redirect())
            elif token.kind == "word" and token.word is not None:
                self._take()
                assign = _assignment(token.word) if not words else None
                if assign:
                    assigns.append(assign)
                else:
                    words.append(token.word)
            else:
                break
        return Simple(assigns, words, redirects, line)

    def _redirects(self) -> list[Redirect]:
        redirects = []
        while self._peek().kind == "io" or (self._peek().kind == "op" and self._peek().value in REDIRECT_OPS):
            redirects.append(self._redirect())
        return redirects

    def _redirect(self) -> Redirect:
        token = self._take()
        fd = -1
        if token.kind == "io":
            fd = int(token.value)
            token = self._take()
        op = token.value
        target = self._take()
        if target.kind != "word" or target.word is None:
            shown = "newline" if target.kind in ("newline", "eof") else target.value
            raise ParseError(f"syntax error near unexpected token `{shown}'")
        if fd < 0:
            fd = 0 if op in ("<", "<&", "<>", "<<", "<<-") else 1
        return Redirect(fd, op, target.word)


def _assignment(word: Word) -> tuple[str, Word] | None:
    first = word.parts[0]
    if first.kind != "lit" or first.quoted or "=" not in first.text:
        return None
    name, _, rest = first.text.partition("=")
    if not name or not (name[0].isalpha() or name[0] == "_") or not name.replace("_", "a").isalnum():
        return None
    value_parts = ([Part(rest, False)] if rest else []) + word.parts[1:]
    return name, Word(value_parts, word.line)


def _text(token: Token) -> str:
    if token.word is not None:
        return token.word.source()
    return "newline" if token.kind in ("newline", "eof") else token.value


@lru_cache(maxsize=1024)
def parse(src: str) -> Sequence:
    """Parse a whole script (cached: a fleet is sent the same scripts, and the shell never edits a tree)."""
    return Parser(src).parse()
