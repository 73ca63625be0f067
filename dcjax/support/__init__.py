"""What a run needs around the algorithm: workdir lock, stop signals, checkpoints, metrics, logs,
pictures and atomic file writes. Nothing here knows how condensation works."""
