"""`redes down` stops only what `redes up` started: a PID now held by another process is never signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from runtime import server_record
from runtime.server_record import Recorded
from runtime.servers import pid_alive, process_started, stop_process


def test_down_leaves_a_reused_pid_alone_and_removes_the_stale_record(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    try:
        started = process_started(stranger.pid)
        assert started is not None
        # the record says a Prefect server ran with this PID an hour before this process started
        server_record.write(
            tmp_path,
            [Recorded("prefect", stranger.pid, started - 3600, "http://127.0.0.1:9", "http://127.0.0.1:9/api/health", signal.SIGINT)],
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        done = subprocess.run(
            [str(Path(sys.executable).with_name("redes")), "down"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"removed the stale record of prefect (pid {stranger.pid}: gone)" in done.stdout
        assert "nothing was running" in done.stdout
        assert pid_alive(stranger.pid) and stranger.poll() is None
        assert not server_record.record_path(tmp_path).exists()
    finally:
        stop_process(stranger, timeout=5)
