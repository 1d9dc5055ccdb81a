"""The README's run command brings the product up: demo data, web server on
localhost, healthy, with its login page."""
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode("utf-8")


def test_run_command_serves_the_demo(tmp_path):
    port = free_port()
    env = dict(os.environ, OCOP_DATABASE_URL=f"sqlite:///{tmp_path / 'ocop.db'}",
               OCOP_UPLOAD_DIR=str(tmp_path / "uploads"))
    process = subprocess.Popen(["bash", "scripts/run.sh", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, health = time.time() + 120, None
        while time.time() < deadline and health is None:
            if process.poll() is not None:
                raise AssertionError(f"run.sh exited: {process.stdout.read().decode()[-2000:]}")
            try:
                health = get(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                time.sleep(0.5)
        assert health is not None, "the server did not come up within 2 minutes"
        assert health[0] == 200 and '"status":"ok"' in health[1].replace(" ", "")
        status, login_page = get(f"http://127.0.0.1:{port}/login")
        assert status == 200 and "Đăng nhập" in login_page
        status, catalogue = get(f"http://127.0.0.1:{port}/catalogue")
        # Demo products recognised at init: listed while their certificate is
        # valid; the expired and the revoked ones are not.
        assert status == 200 and "Rượu mận Sa Pa" in catalogue and "Chè vằng Gio Quang" in catalogue
        assert "Nước mắm Gio Châu" not in catalogue and "Bánh ướt Gio Sơn" not in catalogue
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
