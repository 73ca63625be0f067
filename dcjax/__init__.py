"""dcjax: Dataset Condensation with Gradient Matching (Zhao, Mopuri, Bilen, ICLR 2021) in JAX.

    import dcjax
    synset = dcjax.condense(config, "runs/x")               # Algorithm 1: the synthetic set
    summary = dcjax.evaluate_run(config, "runs/x", synset)   # the paper's evaluation of it
    synset = dcjax.load_synthetic("runs/x")                  # images, labels, metadata
    accs = dcjax.evaluate(dcjax.get_model("ConvNet", 10), synset.images, synset.labels,
                          x_test, y_test, key, num_models=5)
"""
from dcjax import sharding
from dcjax.condensation import condense
from dcjax.errors import CheckpointError, ConfigError, DataError, DcjaxError
from dcjax.evaluate import EvalRecipe, evaluate, evaluate_set
from dcjax.matching import gradient_distance, matching_loss_and_grad
from dcjax.nets import get_model
from dcjax.run_evaluation import evaluate_run
from dcjax.synthetic_set import SyntheticSet, export_npz, export_pngs, load_synthetic, save_synthetic

__version__ = "0.1.0"

__all__ = ["condense", "evaluate_run", "evaluate", "evaluate_set", "EvalRecipe", "load_synthetic", "save_synthetic",
           "export_npz", "export_pngs", "SyntheticSet", "sharding", "get_model", "gradient_distance",
           "matching_loss_and_grad", "DcjaxError", "ConfigError", "DataError", "CheckpointError"]
