"""River model specs, the model registry and evaluation (arriving with the closed loop)."""

__all__: list[str] = []
