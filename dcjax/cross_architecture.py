"""Paper Table 2: condense with architecture A, evaluate the set with architecture B, for lists of A and B.

Each A gets its own resumable condensation workdir (`<workdir>/condense_<A>`), so an interrupted
matrix picks up where it stopped; every set is evaluated with the same network keys. The config's
`net` overrides (width, depth, ...) apply to the rows whose architecture has those fields (a
ConvNet config's depth means nothing to an MLP); the fields left out are recorded per cell.
"""
from __future__ import annotations

import copy
import os
import time
from typing import Any, Sequence

from dcjax import evaluation_report
from dcjax.condensation import condense
from dcjax.configuration import net_overrides, validate
from dcjax.evaluate import EvalRecipe
from dcjax.nets import get_model

RESULTS_NAME = "cross_architecture"


def cross_architecture(config: Any, condense_models: Sequence[str], eval_models: Sequence[str], workdir: str,
                       command: str = "") -> dict[str, Any]:
    """Condense with each of `condense_models` as `config` says, evaluate each set with every one of
    `eval_models` (config.eval: networks, epochs, recipe); writes cross_architecture.json/.md."""
    for name in (*condense_models, *eval_models):   # unknown names fail before hours of condensing
        get_model(name, 10)
    validate(config)
    recipe = EvalRecipe.from_config(config)
    cells = []
    for a in condense_models:
        cfg = copy.deepcopy(config)
        kept = net_overrides(config, a)
        ignored = sorted(k for k, v in config.net.items() if v is not None and k not in kept)
        with cfg.unlocked():
            cfg.model = a
            for field in ignored:
                cfg.net[field] = None
        set_dir = os.path.join(workdir, f"condense_{a}")
        start = time.time()
        synset = condense(cfg, set_dir)
        condense_seconds = round(time.time() - start, 1)
        dataset = evaluation_report.dataset_for(synset, config.get("data_dir"))
        for row in evaluation_report.evaluate_on_models(synset, dataset, eval_models, config.eval.num_models,
                                                        recipe, config.seed):
            cells.append({"condensed_with": a, "evaluated_with": row["model"], "condense_seconds": condense_seconds,
                          "ignored_net_fields": ignored, **row})
    payload = {"command": command, "config": config.to_dict(), "recipe": recipe.__dict__, "cells": cells}
    payload["files"] = evaluation_report.write_results(workdir, payload, markdown(payload, condense_models, eval_models),
                                                       RESULTS_NAME)
    return payload


def markdown(payload: dict[str, Any], condense_models: Sequence[str], eval_models: Sequence[str]) -> str:
    cells = {(c["condensed_with"], c["evaluated_with"]): c for c in payload["cells"]}
    config = payload["config"]
    lines = ["# Cross-architecture performance (paper Table 2)", "", f"Command: `{payload['command']}`  ",
             f"Dataset {config['dataset']}, ipc {config['ipc']}, K={config['num_iterations']}; evaluation: "
             f"{config['eval']['num_models']} networks x {config['eval']['epochs']} epochs, recipe "
             f"{payload['recipe']}. Test accuracy %, mean +- std over the networks.", "",
             "| condensed with \\ evaluated with | " + " | ".join(eval_models) + " |",
             "|---|" + "---|" * len(eval_models)]
    for a in condense_models:
        lines.append(f"| {a} | " + " | ".join(
            f"{100 * cells[a, b]['mean']:.2f} +- {100 * cells[a, b]['std']:.2f}" for b in eval_models) + " |")
    return "\n".join(lines) + "\n"
