"""schemathesis against the running API's own /openapi.json, over real HTTP: no 5xx, responses match the schema."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import Stack

TOKEN = "schema-admin-token"
CHECKS = "not_a_server_error,response_schema_conformance"
SEED = "20240502"


def st_command() -> list[str]:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis' `st` command is not installed next to the interpreter")
    return [found]


def run_schemathesis(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        *st_command(), "run", f"{stack.api_url}/openapi.json", "--checks", CHECKS, "--seed", SEED,
        "--request-timeout", "10", "--no-color", "--output-truncate", "true", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=150, check=False,
                          cwd=stack.tmp)


def _tested(output: str) -> int:
    found = re.search(r"Tested:\s+(\d+)", output)
    assert found, output[-3000:]
    return int(found.group(1))


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    stack = make_stack(ROUTER_ADMIN_TOKEN=TOKEN)
    stack.start_sandbox("--no-calls")
    stack.start_api()
    stack.start_worker(concurrency=2)  # leads move on while being fuzzed: records with history get read back
    return stack


def test_api_conforms_to_its_openapi_schema(stack: Stack) -> None:
    authorised = run_schemathesis(stack, "--max-examples", "30", "--header", f"Authorization: Bearer {TOKEN}")
    assert authorised.returncode == 0, authorised.stdout[-6000:] + authorised.stderr[-2000:]
    assert _tested(authorised.stdout) >= 10  # leads, health and every admin operation
    # Without a token: every admin operation must answer its documented 401, never a 5xx.
    anonymous = run_schemathesis(stack, "--max-examples", "5", "--include-path-regex", "^/v1/admin",
                                 "--phases", "examples,coverage,fuzzing")
    assert anonymous.returncode == 0, anonymous.stdout[-6000:] + anonymous.stderr[-2000:]
    assert _tested(anonymous.stdout) >= 6
    assert "5xx" not in stack.logs() and "Traceback" not in stack.logs()
