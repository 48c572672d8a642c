"""qmp: Q-switch Mixture of Policies (ICLR 2025) and its multi-task SAC baselines."""

__version__ = "0.1.0"
