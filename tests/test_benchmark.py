"""The benchmark code measures what it says (tiny cases; no timing is asserted), and every results
file records where it was measured."""
import json
import os
import re
import subprocess

import jax
import numpy as np
import pytest

from benchmarks import bench_report, provenance
from benchmarks.benchmark import Case, machine_description, measure, run_in_subprocess
from dcjax import compilation
from dcjax.matching import matching_loss_and_grad
from dcjax.nets import get_model


def test_cpu_programs_get_the_memory_optimised_scheduler_and_accelerators_keep_defaults():
    cpu = compilation.compiler_options("cpu")
    assert cpu["xla_cpu_scheduler_type"] == "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"
    measured = compilation._jaxlib_minor_version() == compilation.MEASURED_JAXLIB
    assert ("xla_cpu_experimental_ynn_fusion_type" in cpu) == measured
    assert compilation.compiler_options("gpu") == {}
    assert compilation.compiler_options("tpu") == {}


def test_scheduler_choice_does_not_change_the_matching_step():
    module = get_model("ConvNet", 3, (8, 8, 1), width=8, depth=2)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    syn = jax.random.normal(keys[0], (3, 2, 8, 8, 1))
    real = jax.random.normal(keys[1], (3, 5, 8, 8, 1))
    params = module.init(keys[2], syn[0])["params"]
    step = lambda p, s, r: matching_loss_and_grad(module.apply, p, {}, s, r, "ours", "unroll")
    tuned = jax.jit(step, compiler_options=compilation.compiler_options("cpu"))(params, syn, real)
    default = jax.jit(step)(params, syn, real)
    for a, b in zip(tuned, default):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_case_survives_its_json_form():
    case = Case("matching", "x", classes=3, image=(8, 8, 1), class_chunk=2, compile_only=True)
    assert Case.from_json(case.to_json()) == case


@pytest.mark.parametrize("mode", ["unroll", "vmap"])
def test_matching_case_reports_time_flops_and_memory(mode):
    result = measure(Case("matching", classes=2, image=(8, 8, 1), batch_real=3, mode=mode, repeats=2))
    assert len(result["times_s"]) == 2 and result["median_s"] > 0
    assert result["gflop"] > 0 and result["gflops_per_s"] > 0
    assert result["xla_temp_gb"] >= 0 and result["peak_rss_gb"] > 0


def test_inner_case_scales_the_loop_body_count_by_the_epochs():
    one = measure(Case("inner", classes=2, image=(8, 8, 1), ipc=1, compile_only=True))
    ten = measure(Case("inner", classes=2, image=(8, 8, 1), ipc=10, compile_only=True))
    # ipc 1: 1 epoch of 1 step on 2 images; ipc 10: 50 epochs of 1 step on 20 images.
    assert one["sgd_steps"] == 1 and ten["sgd_steps"] == 50
    assert ten["gflop"] > 40 * one["gflop"]


def test_report_renders_every_row_and_the_targets(tmp_path):
    report = {"date": "today", "machine": {"cpu": "cpu", "cores": 2, "memory_gib": 1.0, "python": "3",
                                           "jax": "j", "flax": "f", "backend": "cpu"},
              "rows": [{"case": vars(Case("peak")), "result": {"numpy_gflops_per_s": 100.0, "jax_gflops_per_s": 80.0}},
                       {"case": vars(Case("matching", "fast", batch_real=64)),
                        "result": {"median_s": 2.0, "times_s": [2.0], "gflop": 100.0, "gflops_per_s": 50.0,
                                   "peak_rss_gb": 3.0}},
                       {"case": vars(Case("outer", "broken")), "result": {"error": "boom"}}]}
    text = bench_report.markdown(report, "cmd")
    assert "| 2.00 | 1 |" in text and "| 50 |" in text      # 50 GFLOP/s of a 100 GFLOP/s peak
    assert "error: boom" in text and "PyTorch" not in text
    assert "| >= 50% of the matmul peak, batch_real 64 | 50% | yes |" in text
    json_path, md_path = bench_report.write(report, str(tmp_path), "b", "cmd")
    written = json.load(open(json_path))
    assert written["command"] == "cmd" and written["provenance"]["cpu"] == provenance.cpu_model()
    # the written table is the one above plus the line saying where it was measured
    assert open(md_path).read() == bench_report.markdown(written, "cmd") != text
    assert provenance.markdown_line(written) in open(md_path).read().splitlines()


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_chunked_step_flop_count_covers_every_class(chunk):
    whole = measure(Case("matching", classes=4, image=(8, 8, 1), batch_real=3, mode="vmap", compile_only=True))
    chunked = measure(Case("matching", classes=4, image=(8, 8, 1), batch_real=3, mode="vmap", class_chunk=chunk,
                           compile_only=True))
    assert chunked["gflop"] == pytest.approx(whole["gflop"], rel=0.1)


def test_mapped_classes_flop_count_covers_every_class():
    unrolled = measure(Case("matching", classes=4, image=(8, 8, 1), batch_real=3, mode="unroll", compile_only=True))
    mapped = measure(Case("matching", classes=4, image=(8, 8, 1), batch_real=3, mode="map", compile_only=True))
    assert mapped["gflop"] == pytest.approx(unrolled["gflop"], rel=0.1)


def test_classes_suite_sets_unrolled_beside_mapped_classes():
    cases = bench_report.classes_suite()
    assert {c.mode for c in cases} == {"unroll", "map"}
    assert {(c.kind, c.classes) for c in cases} == {("matching", 10), ("outer", 100)}


def test_devices_case_runs_the_sharded_outer_step_on_that_many_simulated_devices():
    case = Case("outer", ipc=1, devices=2, classes=3, image=(8, 8, 1), batch_real=8, repeats=1, compile_only=True)
    result = run_in_subprocess(case)
    assert "error" not in result, result
    assert result["compile_s"] > 0
    assert {row.devices for row in bench_report.devices_suite()} == {1, 2, 4, 8}


def test_outer_case_runs_each_method_and_the_report_sets_dm_beside_dc():
    results = {m: measure(Case("outer", method=m, classes=3, image=(8, 8, 1), batch_real=4, repeats=1))
               for m in ("dc", "dm")}
    assert all(r["median_s"] > 0 for r in results.values())
    dsa = Case("outer", method="dsa", classes=3, image=(8, 8, 1), batch_real=4, compile_only=True)
    assert measure(dsa)["compile_s"] > 0
    rows = [{"case": vars(Case("outer", method=m, classes=3, image=(8, 8, 1), batch_real=4)), "result": r}
            for m, r in results.items()]
    text = "\n".join(bench_report._method_ratios({"rows": rows}))
    dm = results["dc"]["median_s"] / results["dm"]["median_s"]
    assert f"- DM at ipc 1: one outer iteration takes {results['dm']['median_s']:.2f} s" in text
    assert (f"({dm:.1f}x faster than DC's)" if dm >= 1 else f"({1 / dm:.1f}x slower than DC's)") in text
    with pytest.raises(ValueError, match="method must be one of"):
        measure(Case("outer", method="kip", classes=3, image=(8, 8, 1), batch_real=4, compile_only=True))
    assert {case.method for case in bench_report.methods_suite()} == {"dc", "dsa", "dm"}


def test_provenance_names_the_commit_and_whether_the_tree_was_clean():
    record = provenance.provenance()
    head = subprocess.run(["git", "-C", provenance.REPO_ROOT, "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"]) and record["commit"] == head
    assert isinstance(record["dirty"], bool)
    assert record["cores"] >= 1 and record["cpu"] == machine_description()["cpu"] != ""
    assert record["jax"] == jax.__version__ and record["jaxlib"] and record["utc"].endswith("+00:00")
    json.dumps(record)
    line = provenance.markdown_line({"provenance": record})
    state = "uncommitted changes" if record["dirty"] else "clean"
    code = record["code"] + (" + uncommitted changes" if record["code_dirty"] else "")
    assert line.startswith(f"Measured at commit {record['commit']} ({state}), code {code} on {record['cpu']}, ")


def test_provenance_outside_a_git_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    record = provenance.provenance(str(tmp_path))
    assert record["commit"] is None and record["dirty"] is None and record["cpu"]
    assert "unknown commit" in provenance.markdown_line({"provenance": record})
    # results written before provenance existed keep their machine line
    assert provenance.markdown_line({"machine": {"cpu": "x"}}) == "Machine: {'cpu': 'x'}  "


def test_provenance_records_the_kernel_environment_and_the_cpu_generation(monkeypatch):
    for name in provenance.KERNEL_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert "environment" not in provenance.provenance()
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    record = provenance.provenance()
    assert record["environment"] == {"XLA_FLAGS": "--xla_cpu_max_isa=AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    assert "; XLA_FLAGS=--xla_cpu_max_isa=AVX2; ATEN_CPU_CAPABILITY=avx2; " in provenance.describe(record)
    if os.path.exists("/proc/cpuinfo"):   # Linux: family, model and the AVX-512 answer follow the name
        assert re.search(r", family \d+ model \d+, (no )?AVX-512$", provenance.cpu_model())


def test_dirty_flag_counts_untracked_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "a")
    assert provenance.provenance(str(tmp_path))["dirty"] is False
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "r.md").write_text("a benchmark's own output")
    assert provenance.provenance(str(tmp_path))["dirty"] is False
    (tmp_path / "b.txt").write_text("b")
    assert provenance.provenance(str(tmp_path))["dirty"] is True


def test_code_hash_ignores_results_and_tests_but_not_library_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t",
                                        *args], check=True, capture_output=True)

    def commit(path, text):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
        git("add", path)
        git("commit", "-q", "-m", path)
        return provenance.provenance(str(tmp_path))

    git("init", "-q")
    first = commit("dcjax/a.py", "a = 1")
    assert first["code_dirty"] is False and re.fullmatch(r"[0-9a-f]{12}", first["code"])
    results_only = commit("benchmarks/results/r.json", "{}")
    tests_only = commit("tests/test_a.py", "")
    assert results_only["commit"] != first["commit"] and results_only["code"] == tests_only["code"] == first["code"]
    (tmp_path / "benchmarks/results/r.json").write_text("[]")
    assert provenance.provenance(str(tmp_path))["code_dirty"] is False
    (tmp_path / "dcjax/a.py").write_text("a = 2")
    assert provenance.provenance(str(tmp_path))["code_dirty"] is True
    assert commit("dcjax/a.py", "a = 2")["code"] != first["code"]
    assert commit("configs/c.py", "")["code"] != first["code"]


def test_results_measured_before_provenance_say_their_commit_came_from_git_history():
    from benchmarks.provenance import describe
    line = describe({"commit": "a" * 40, "dirty": None, "from_history": True, "cpu": "AMD EPYC", "cores": 2})
    assert line.startswith(f"commit {'a' * 40} (recorded afterwards from git history")
    assert "clean)" not in describe({"commit": "a" * 40, "dirty": True})


def test_evaluation_floor_counts_every_epoch_and_the_test_pass():
    def per_network(epochs, test_images):
        case = Case("eval", classes=2, image=(8, 8, 1), ipc=1, num_models=1, epochs=epochs,
                    test_images=test_images, mode="map", compile_only=True)
        return measure(case)["gflop_per_network"]

    from dcjax.evaluate import EvalRecipe
    run = {epochs: sum(EvalRecipe(epochs=epochs).phase_epochs()) for epochs in (2, 6)}   # epochs trained
    two, six = per_network(2, 20), per_network(6, 20)
    epoch = (six - two) / (run[6] - run[2])
    test_pass = two - run[2] * epoch
    assert epoch > 0 and test_pass > 0
    assert per_network(2, 40) - two == pytest.approx(test_pass, rel=0.05)   # linear in the test images
    # a training step on the 2 images is a forward and a backward pass: 2-4x their forward pass
    assert 2 < epoch / (test_pass * 2 / 20) < 4
