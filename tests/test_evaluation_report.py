"""bin/evaluate.py and bin/cross_arch.py: any set on any architectures, results next to the set."""
import json
import os
import subprocess
import sys

import jax
import numpy as np

from dcjax import baselines, data
from dcjax.synthetic_set import save_synthetic
from dcjax.configuration import root_keys
from dcjax.evaluate import EvalRecipe, evaluate
from dcjax.nets import get_model

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def run_script(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "bin", name), *args], capture_output=True,
                          text=True, cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=600)


def test_evaluate_writes_json_and_markdown_next_to_the_set(tmp_path):
    dataset = data.load("digits")
    synset = baselines.random_real(dataset, 2, jax.random.PRNGKey(0))
    save_synthetic(str(tmp_path / "synthetic"), synset)
    proc = run_script("evaluate.py", f"--set={tmp_path}", "--models=MLP,ConvNet", "--num_models=2", "--epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(tmp_path / "evaluation.json"))
    assert [r["model"] for r in results["results"]] == ["MLP", "ConvNet"]
    assert "| random_real, digits, ipc 2 | MLP | 2 |" in open(tmp_path / "evaluation.md").read()
    # The same networks as the library call with the documented keys (seed 0).
    direct = evaluate(get_model("MLP", 10), synset.images, synset.labels, dataset.x_test, dataset.y_test,
                      root_keys(0)["eval"], 2, EvalRecipe(epochs=2))
    np.testing.assert_allclose(results["results"][0]["accuracies"], direct, atol=1e-6)


def test_evaluate_refuses_a_missing_set_in_one_line(tmp_path):
    proc = run_script("evaluate.py", f"--set={tmp_path / 'nothing'}")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: no synthetic set")
    assert "Traceback" not in proc.stderr


def test_cross_architecture_matrix_from_one_command(tmp_path):
    proc = run_script("cross_arch.py", f"--config={ROOT}/configs/digits.py", "--condense=MLP",
                      "--evaluate=MLP,ConvNet", f"--workdir={tmp_path}", "--config.num_iterations=1",
                      "--config.batch_real=8", "--config.eval.num_models=1", "--config.eval.epochs=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    matrix = json.load(open(tmp_path / "cross_architecture.json"))
    assert [(c["condensed_with"], c["evaluated_with"]) for c in matrix["cells"]] == [("MLP", "MLP"), ("MLP", "ConvNet")]
    assert os.path.isdir(tmp_path / "condense_MLP" / "synthetic")
    assert "| MLP | " in open(tmp_path / "cross_architecture.md").read()
