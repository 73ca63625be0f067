"""Config files: every one builds, depends on nothing outside the repository, and the default
(digits) config builds a ConvNet that can learn while the paper's settings keep depth 3."""
import glob
import importlib
import os

import pytest

from dcjax.condensation import warn_if_degenerate
from dcjax.configuration import model_from_config

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CONFIGS = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
                 if not os.path.basename(p).startswith("_"))


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_read_no_path_outside_the_repository(name):
    """Data locations come from --config.data_dir on the command line, never from a config file."""
    module = importlib.import_module(f"configs.{name}")
    for config in ([module.get_config("1"), module.get_config("10")] if name == "cpu_protocol" else [module.get_config()]):
        assert config.get("data_dir") is None


def test_cpu_protocol_keeps_its_ipc_parameter():
    from configs import cpu_protocol
    assert (cpu_protocol.get_config("1").ipc, cpu_protocol.get_config("1").num_iterations) == (1, 200)
    assert (cpu_protocol.get_config("10").ipc, cpu_protocol.get_config("10").num_iterations) == (10, 10)
    assert cpu_protocol.get_config().dataset == "fashion_mnist"


def test_default_config_does_not_build_a_degenerate_convnet():
    from configs.common import get_config, paper_setting
    config = get_config()
    assert config.dataset == "digits"
    messages = []
    module = model_from_config(config, 10, (8, 8, 1))
    warn_if_degenerate(module, (8, 8, 1), messages.append)
    assert messages == [] and module.depth == 2
    for dataset, shape in (("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))):   # the reference's depth
        assert model_from_config(paper_setting(dataset, 1), 10, shape).depth == 3
