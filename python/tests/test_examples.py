"""The 1.0 README's two examples (unchanged apart from the URL) and the robot loop, run as
scripts against the local echo server."""

import os
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")


def run(name, url):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name), url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def test_example_minimal(server):
    assert run("example_minimal.py", server + "/") == ["Opened connection", "text", "Closed connection"]


def test_example_class(server):
    assert run("example_class.py", server + "/") == ["Opened connection", "['text']", "Closed connection"]


def test_robot_loop(server):
    lines = run("robot_loop.py", server + "/")
    assert lines == ["open", "got pose 0", "got pose 1", "got pose 2", "got pose 3", "closed 1000"]
