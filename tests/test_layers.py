"""The layer rule: ptv2_core pulls in no tracking, search or pipeline library."""
import subprocess
import sys


def test_import_ptv2_core_pulls_no_upper_libraries():
    code = (
        "import sys, ptv2_core, ptv2_core.train, ptv2_core.adapter, ptv2_core.predict, ptv2_core.report\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'mlflow','optuna','ray','kfp',"
        "'optuna_studies','components','pipelines'})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"ptv2_core imported: {out.stdout}"
    # the check itself can fail: importing optuna_studies' neighbour does show up
    probe = subprocess.run([sys.executable, "-c", "import sys, mlflow; print('mlflow' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "True"
