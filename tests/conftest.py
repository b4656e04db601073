"""Test configuration shared by all test modules."""

import torch

# The suite's problems are small: one torch thread is as fast as two on a quiet 2-core
# machine, and avoids oversubscription when loky/dask workers or other jobs share the cores.
torch.set_num_threads(1)
