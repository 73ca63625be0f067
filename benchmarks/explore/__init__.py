"""One-off measurements behind the engine's design; see NOTES.md. Run as `python -m benchmarks.explore.<name>`."""
