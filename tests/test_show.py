"""bin/show.py: a run's summary without log noise."""
import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image

from dcjax.synthetic_set import SyntheticSet, save_synthetic

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def test_show_prints_its_answer_without_info_logs(tmp_path):
    names = ["zero", "one", "two"]
    metadata = {"dataset": "toy", "class_names": names, "mean": [0.5], "std": [0.25], "ipc": 1, "iteration": 3}
    images = np.random.default_rng(0).normal(size=(3, 8, 8, 1)).astype(np.float32)
    save_synthetic(str(tmp_path / "run" / "synthetic"), SyntheticSet(images, np.arange(3), metadata))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "show.py"), str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not [line for line in output.splitlines() if "INFO" in line or re.match(r"I\d{4} ", line)], output
    assert "synthetic set: 3 images (8, 8, 1), toy ipc 1, iteration 3" in result.stdout
    with Image.open(tmp_path / "run" / "images" / "final.png") as grid:   # one labelled row of 3 classes
        assert grid.size[0] > 3 * 64 and grid.size[0] > grid.size[1]
