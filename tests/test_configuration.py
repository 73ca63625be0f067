"""The (T, zeta_theta) schedule and up-front config validation."""
import pytest

from configs import common
from dcjax.configuration import loops_for_ipc, resolved_loops, validate
from dcjax.errors import ConfigError


@pytest.mark.parametrize("ipc,loops", [(1, (1, 1)), (10, (10, 50)), (20, (20, 25)), (30, (30, 20)),
                                       (40, (40, 15)), (50, (50, 10)),
                                       # other ipc: T = min(ipc, 50), zeta = max(1, 500 // T)
                                       (5, (5, 100)), (2, (2, 250)), (100, (50, 10)), (700, (50, 10))])
def test_schedule_table(ipc, loops):
    assert loops_for_ipc(ipc) == loops


def test_non_positive_ipc_is_refused_at_the_boundary():
    c = common.get_config()
    c.ipc = 0
    with pytest.raises(ConfigError, match="config.ipc must be an integer >= 1, got 0"):
        validate(c)


def test_config_fields_override_the_table():
    c = common.get_config()
    c.ipc = 10
    assert resolved_loops(c) == (10, 50)
    c.outer_loop, c.inner_loop = 3, 4
    assert resolved_loops(c) == (3, 4)


def test_every_config_file_is_valid():
    import glob
    import importlib
    import os
    for path in sorted(glob.glob(os.path.join(os.path.dirname(common.__file__), "*.py"))):
        name = os.path.basename(path)[:-3]
        if name in ("__init__", "common"):
            continue
        module = importlib.import_module(f"configs.{name}")
        config = module.get_config()
        if name.startswith("nas_"):   # a search config: its own checks, and its condensation config's
            from dcjax.apps import nas
            from dcjax.apps.search_space import grid
            nas.validate(config, len(grid(config.space)))
            config = config.condense
        elif name.startswith("continual_"):   # a continual-learning config: its protocol's checks too
            from dcjax.apps import class_incremental, continual
            protocol = class_incremental if config.protocol == "class_incremental" else continual
            protocol.validate(config)
            config = config.condense
        validate(config)


@pytest.mark.parametrize("field,value,message", [
    ("ipc", 0, "config.ipc"), ("num_iterations", -1, "config.num_iterations"), ("lr_img", 0.0, "config.lr_img"),
    ("lr_net", -0.1, "config.lr_net"), ("batch_real", 0, "config.batch_real"), ("metric", "l2", "config.metric"),
    ("init", "zeros", "config.init"), ("momentum_img", 1.5, "config.momentum_img"),
])
def test_validate_names_the_bad_field(field, value, message):
    c = common.get_config()
    c[field] = value
    with pytest.raises(ConfigError, match=message):
        validate(c)
