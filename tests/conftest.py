"""MuJoCo picks its OpenGL backend at first import: importing qmp first makes every test process
headless (EGL) unless MUJOCO_GL says otherwise."""

from collections.abc import Iterator

import pytest

import qmp  # noqa: F401


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Small tensor ops on a shared machine: one thread, as training runs use (--torch_threads 1); two threads
    ran a 200-task Levy switch 30x slower while the other core was busy."""
    import torch  # not at collection: most test modules never need it

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
