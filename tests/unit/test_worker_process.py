"""The worker's process image (`python -m workers`, what `lead-router worker` becomes): every pool child is a copy
of it, so it carries the Celery app and the delivery path, not the command line, the API or the CRM mapping."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_the_worker_process_imports_no_command_line_api_or_crm_mapping_modules() -> None:
    probe = ("import sys, json, workers.__main__, workers.tasks; "
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
             "{'router', 'typer', 'phonenumbers', 'fastapi', 'uvicorn'})))")
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/15"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
