"""The dashboard in a real browser: headless Debian Chromium driven by playwright-core (tests/browser)."""
import pathlib
import shutil
import subprocess

import conftest

REPO = pathlib.Path(__file__).resolve().parents[2]
BROWSER_TESTS = REPO / "tests" / "browser"


def test_dashboard_uploads_invokes_rolls_back_sets_settings_discards_a_dead_letter_and_shows_live_calls(start_http, tmp_path):
    assert shutil.which("node"), "node is missing: run scripts/install-deps.sh"
    assert (BROWSER_TESTS / "node_modules" / "playwright-core").is_dir(), "run: npm ci --prefix tests/browser"
    server = start_http()
    screenshot = conftest.BUILD / "dashboard.png"  # for a human to look at after the run
    result = subprocess.run(["node", str(BROWSER_TESTS / "dashboard.mjs"), server.url, "admin", server.password,
                             str(tmp_path), str(screenshot)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr + server.log()[-3000:]
    records = server.get("/admin/logs/mul").json()
    assert [(r["result"], r["version"]) for r in records] == [(42, 1), (42, 1)]  # before and after the rollback
    settings = server.get("/admin/functions/mul/settings").json()
    assert settings["env"] == {"MODE": "fast"} and settings["secrets"] == [] and "timeout" in settings["defaults"]
    assert "charts and filters seen" in result.stdout
    assert server.get("/admin/dead-letters").json() == []  # discarded from the dashboard
    assert len(server.get("/admin/logs/broken").json()) == 1
    assert screenshot.stat().st_size > 10000
