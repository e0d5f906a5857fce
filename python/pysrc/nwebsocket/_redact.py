"""What may be shown of a URL in a ``repr``, a ``str`` or an error message: no user-info, no
query values, no fragment. A mirror of the core's ``src/redact.rs`` (``redact::url``), which
is not public; its cases are tested in ``tests/test_secrets.py``."""

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """``url`` with the user-info (``user:password@``) replaced by ``***@``, each query value
    by ``***``, and no fragment.

    The text may not parse as a URL: a password may hold an unescaped ``/``, ``?`` or ``#``,
    which would end the authority early. So everything up to the **last** ``@`` counts as
    user-info; an ``@`` in a path then hides the host too, which is the safe way to be wrong.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    hidden = "@" in rest
    if hidden:
        rest = rest.rpartition("@")[2]
    rest = rest.split("#", 1)[0]
    shown = scheme + separator + ("***@" if hidden else "")
    before, question, query = rest.partition("?")
    if not question:
        return shown + rest
    return shown + before + "?" + _redact_query(query)


def _redact_query(query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        pairs.append(name + "=***" if equals else pair)
    return "&".join(pairs)
