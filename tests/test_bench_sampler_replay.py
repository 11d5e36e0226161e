"""bench/sampler_replay.py replays a search-cost report with the packaged search spaces: a report whose
grid was measured on another lr range (the 1e-3 report, before the spaces started at 3e-3) is refused
with one error line, not replayed into a false "0 of 18" written over the recorded result."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def replay(report: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "sampler_replay.py"), "--report", str(ROOT / report),
                           "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_a_report_of_another_lr_range_is_refused_and_nothing_written(tmp_path):
    out = tmp_path / "out"
    r = replay("bench/results/search_cost.json", out)
    assert r.returncode == 2, r.stdout[-500:] + r.stderr[-500:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "lr" in lines[0] and "0.00192" in lines[0] and "0.00479" in lines[0], lines[0]
    assert not out.exists()


def test_a_report_of_the_packaged_range_replays_as_recorded(tmp_path):
    r = replay("bench/results/lr3e-3/search_cost.json", tmp_path)
    assert r.returncode == 0, r.stderr[-1000:]
    assert "18 of 18 searches proposed exactly as recorded" in (tmp_path / "sampler_replay.md").read_text()
