"""Train tests use one torch thread: the models are tiny, and on a shared 2-core machine
OpenMP threads competing with other processes make timings erratic."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
