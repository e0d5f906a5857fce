"""typed_sample.py (which python/ci.sh type-checks with mypy --strict) runs and is true."""

import typed_sample


def test_the_typed_sample_runs(server):
    seen = typed_sample.main(server + "/")
    assert seen[0].startswith("open 'chat' '' ")  # then how many headers the server sent
    assert seen[1] == "chat "  # protocol, and no extension (this server does not compress)
    assert seen[2:6] == ["message 'text'", "message b'binary'", "message b'more'", "message b'view'"]
    assert seen[-3:] == ["close 4000 'done' True None 0 True", "ended", "'hi'"]


def test_every_exception_has_its_details():
    import nwebsocket

    for name in nwebsocket.errors.__all__:
        error = getattr(nwebsocket, name)("x")
        assert typed_sample.error_details(error)
