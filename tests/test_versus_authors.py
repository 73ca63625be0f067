"""The harness that sets dcjax beside the authors' real programs: their log lines, their command,
the data laid out for their loader, and the report. Runs without torch, on a recorded log."""
import os

import numpy as np
import pytest

from benchmarks import program_logs, versus_authors
from dcjax import data

SAMPLE = os.path.join(os.path.dirname(__file__), "data", "authors_main_dc_ipc1.log")


def test_authors_log_gives_iterations_evaluation_networks_and_accuracy():
    parsed = program_logs.parse_authors_log(program_logs.read_stamped(SAMPLE))
    assert [p["iteration"] for p in parsed["iterations"]] == [0, 10, 20]
    assert parsed["iterations"][1]["loss"] == pytest.approx(179.0425)
    (evaluation,) = parsed["evaluations"]
    assert evaluation["iteration"] == 20 and evaluation["model"] == "ConvNet"
    (network,) = evaluation["networks"]
    # From the evaluation's header to the network's line: training and the test pass.
    assert network["seconds"] == pytest.approx(96.061 - 56.985)
    assert network["own_train_s"] == 15 and network["epochs"] == 300
    assert network["test_acc"] == pytest.approx(0.6767)


def test_iteration_rate_leaves_out_stretches_an_evaluation_interrupts():
    parsed = program_logs.parse_authors_log(program_logs.read_stamped(SAMPLE))
    # 0 -> 10 is clean; 10 -> 20 holds the evaluation (main.py evaluates before the last iteration),
    # so from 10 only iterations 11..19 run before the evaluation's header.
    assert program_logs.authors_iteration_seconds(parsed) == [pytest.approx((38.423 - 20.853) / 10),
                                                              pytest.approx((56.985 - 38.423) / 9)]
    assert program_logs.authors_own_clock_rate(parsed) == pytest.approx(1.8)


def test_dcjax_iteration_seconds_keep_the_compiling_first_apart_and_the_last_record_of_a_rerun():
    records = [{"iteration": 1, "matching_loss": 3.0, "elapsed_s": 17.8},
               {"iteration": 2, "matching_loss": 2.0, "elapsed_s": 19.3},
               {"iteration": 3, "matching_loss": 1.0, "elapsed_s": 99.0},   # replaced after a resume
               {"iteration": 3, "matching_loss": 1.0, "elapsed_s": 20.9},
               {"iteration": 3, "eval_accuracy_mean": 0.5}]
    first, later = program_logs.dcjax_iteration_seconds(records)
    assert first == 17.8
    assert later == [pytest.approx(1.5), pytest.approx(1.6)]
    assert program_logs.summarize(later)["median"] == pytest.approx(1.55)
    assert program_logs.summarize([]) is None


def test_commands_are_the_authors_scripts_and_dcjax_bin_condense():
    dc = versus_authors.authors_command(versus_authors.CASES["dc_ipc10"], "d", "s")
    assert dc[1] == "main.py" and dc[dc.index("--dataset") + 1] == "FashionMNIST"
    assert dc[dc.index("--Iteration") + 1] == "10" and dc[dc.index("--batch_real") + 1] == "64"
    assert dc[dc.index("--eval_mode") + 1] == versus_authors.FINAL_ONLY_EVAL_MODE and "--method" not in dc
    assert versus_authors.authors_command(versus_authors.CASES["dm_ipc50"], "d", "s")[1] == "main_DM.py"
    dsa = versus_authors.authors_command(versus_authors.CASES["dsa_ipc1"], "d", "s")
    assert dsa[dsa.index("--method") + 1] == "DSA" and dsa[dsa.index("--init") + 1] == "real"
    ours = versus_authors.dcjax_command(versus_authors.CASES["dc_ipc1"], "f.npz", "w")
    assert ours[1] == "bin/condense.py" and "--config=configs/cpu_protocol.py:1" in ours
    assert "--config.data_dir=f.npz" in ours and "--workdir=w" in ours
    for case in versus_authors.CASES.values():   # every config a case names exists
        config = next(a for a in versus_authors.dcjax_command(case, "f", "w") if a.startswith("--config="))
        assert os.path.isfile(os.path.join(versus_authors.REPO_ROOT, config[len("--config="):].split(":")[0]))


def test_fashion_mnist_is_laid_out_as_idx_files_that_read_back(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (20, 28, 28, 1), dtype=np.uint8), "y_train": np.arange(20) % 10,
              "x_test": rng.integers(0, 256, (10, 28, 28, 1), dtype=np.uint8), "y_test": np.arange(10)}
    np.savez(tmp_path / "fashion_mnist.npz", **arrays)
    root = versus_authors.prepare_fashion_mnist(str(tmp_path / "fashion_mnist.npz"), str(tmp_path / "data"))
    raw = os.path.join(root, "FashionMNIST", "raw")
    assert sorted(os.listdir(raw)) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                       "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    with open(os.path.join(raw, "train-images-idx3-ubyte"), "rb") as f:
        assert f.read(16) == bytes([0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0, 28, 0, 0, 0, 28])
    loaded = data.load("fashion_mnist", raw, source="idx")
    np.testing.assert_array_equal(np.asarray(loaded.y_train), arrays["y_train"])
    assert loaded.x_test.shape == (10, 28, 28, 1)


def _row(side, per_iteration, wall, eval_s, rss):
    return {"case": "dc_ipc1", "side": side, "iterations": 200, "command": f"{side} cmd", "cwd": ".",
            "per_iteration_s": {"median": per_iteration}, "eval_network_s": [eval_s] * 5, "wall_s": wall,
            "peak_rss_mb": rss, "accuracies": [0.7] * 5}


def test_report_gives_the_authors_time_over_dcjax_and_both_commands():
    report = {"command": "python -m benchmarks.versus_authors", "provenance": {"commit": "a" * 40, "cpu": "x"},
              "authors": {"authors_commit": "53f63a6", "torch": "2", "torchvision": "0", "torch_threads": "2"},
              "process_environment": {}, "rows": [_row("authors", 1.5, 600, 30, 1800), _row("dcjax", 1.0, 400, 20, 2000),
                                                  _row("authors", 1.7, 700, 30, 1900)]}
    text = versus_authors.markdown(report)
    assert "| dc_ipc1 | 200 | authors | 1.600 | 30.0 | 650 | 1900 | 70.00 +- 0.00 | - | 2 |" in text
    assert "**1.60x** | **1.50x** | **1.62x** | 0.95x" in text
    assert "`authors cmd`" in text and "`dcjax cmd`" in text and "at ?)" in text
    report["rows"][0].update(commit="b" * 40, dirty=False)
    assert "at ?, bbbbbbb)" in versus_authors.markdown(report)


def test_dsa_and_dm_run_a_copy_patched_for_grey_scale_and_dc_runs_the_checkout(tmp_path, monkeypatch):
    repo = tmp_path / "authors"
    repo.mkdir()
    (repo / "networks.py").write_text("        out = out.view(out.size(0), -1)\n        x = x.view(x.size(0), -1)\n"
                                      "        y = y.view(-1, 3)\n")
    (repo / "main_DM.py").write_text("print('hi')\n")
    monkeypatch.setenv(versus_authors.REPO_ENV, str(repo))
    where, patch = versus_authors.authors_checkout(versus_authors.CASES["dc_ipc1"], str(tmp_path / "s"))
    assert where == str(repo) and patch is None
    where, patch = versus_authors.authors_checkout(versus_authors.CASES["dm_ipc10"], str(tmp_path / "s"))
    assert "2 x" in patch and os.path.isfile(os.path.join(where, "main_DM.py"))
    with open(os.path.join(where, "networks.py")) as f:
        assert f.read() == ("        out = out.reshape(out.size(0), -1)\n        x = x.reshape(x.size(0), -1)\n"
                            "        y = y.view(-1, 3)\n")
    assert "out.view(out.size(0), -1)" in (repo / "networks.py").read_text()   # their checkout untouched


def test_steal_share_is_the_steal_column_over_all_cpu_time():
    assert versus_authors.steal_share([0] * 8, [60, 0, 10, 20, 0, 0, 0, 10]) == 0.1
    assert versus_authors.steal_share(None, [1] * 8) is None
    assert len(versus_authors.cpu_times() or [0] * 8) == 8
