"""Tests of the three kernel parameterisations."""

import numpy as np
import pytest
import torch

from skstrf.kernels import peaks_and_troughs, ParametricKernel, SeparableKernel, VanillaKernel, make_kernel


@pytest.mark.parametrize("name, per_neuron", [("vanilla", 34 * 15), ("separable", 34 + 15),
                                               ("parametric", 5 * 8)])
def test_shapes_and_parameter_counts(name, per_neuron):
    kernel = make_kernel(name, 7, 1, 34, 15, n_gaussians=8, generator=torch.Generator().manual_seed(0))
    assert kernel().shape == (7, 1, 34, 15)
    assert sum(p.numel() for p in kernel.parameters()) == 7 * per_neuron


def test_separable_is_rank_k():
    g = torch.Generator().manual_seed(0)
    for rank in (1, 2):
        w = SeparableKernel(5, 1, 12, 9, rank=rank, generator=g)().detach().numpy()
        s = np.linalg.svd(w[:, 0], compute_uv=False)
        assert np.all(s[:, rank:] < 1e-6 * s[:, :1])
        assert np.all(s[:, rank - 1] > 1e-6 * s[:, 0])


def test_separable_set_weight_recovers_a_rank_one_weight():
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((3, 1, 10, 1)), rng.standard_normal((3, 1, 1, 6))
    target = torch.tensor(u * v, dtype=torch.float32)
    kernel = SeparableKernel(3, 1, 10, 6)
    kernel.set_weight(target)
    torch.testing.assert_close(kernel().detach(), target, rtol=1e-4, atol=1e-5)


def test_parametric_is_a_sum_of_gaussians_in_grid_coordinates():
    kernel = ParametricKernel(1, 1, 20, 10, n_gaussians=2)
    with torch.no_grad():
        kernel.centre_freq.copy_(torch.tensor([[[5.0, 14.0]]]))
        kernel.centre_lag.copy_(torch.tensor([[[2.0, 6.0]]]))
        kernel.amplitude.copy_(torch.tensor([[[1.5, -0.7]]]))
    w = kernel()[0, 0].detach().numpy()
    sf = kernel.width_freq[0, 0].detach().numpy()
    sl = kernel.width_lag[0, 0].detach().numpy()
    f, l = np.meshgrid(np.arange(20), np.arange(10), indexing="ij")
    expected = sum(a * np.exp(-0.5 * ((f - cf) / wf) ** 2 - 0.5 * ((l - cl) / wl) ** 2)
                   for a, cf, cl, wf, wl in zip([1.5, -0.7], [5, 14], [2, 6], sf, sl))
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-6)
    assert w[5, 2] == pytest.approx(1.5, rel=1e-3)  # the peak sits at its absolute centre


def test_vanilla_starts_at_zero_and_unknown_kernel_errors():
    assert torch.count_nonzero(VanillaKernel(2, 1, 3, 4)()) == 0
    with pytest.raises(ValueError, match="unknown kernel 'bogus'"):
        make_kernel("bogus", 1, 1, 2, 2)


def test_peaks_and_troughs_finds_planted_gaussians():
    f = torch.arange(20.0)[:, None]
    l = torch.arange(10.0)[None, :]
    bump = lambda cf, cl: torch.exp(-0.5 * ((f - cf) / 2) ** 2 - 0.5 * ((l - cl) / 1.5) ** 2)
    w = (2.0 * bump(5, 2) - 1.0 * bump(14, 6))[None]
    cf, cl, amp = peaks_and_troughs(w, 2, 2.0, 1.5)
    assert cf.tolist() == [[5.0, 14.0]] and cl.tolist() == [[2.0, 6.0]]
    np.testing.assert_allclose(amp.numpy(), [[2.0, -1.0]], atol=1e-3)


def test_separable_factors_are_the_balanced_truncated_svd():
    from skstrf.kernels import separable_factors

    g = torch.Generator().manual_seed(0)
    u = torch.randn(3, 6, 2, generator=g, dtype=torch.float64)
    v = torch.randn(3, 2, 5, generator=g, dtype=torch.float64)
    weight = u @ v + 1e-3 * torch.randn(3, 6, 5, generator=g, dtype=torch.float64)
    freq, time = separable_factors(weight, 2)
    assert freq.shape == (3, 2, 6) and time.shape == (3, 2, 5)
    U, s, Vh = torch.linalg.svd(weight)
    best = U[..., :2] @ torch.diag_embed(s[:, :2]) @ Vh[:, :2]  # Eckart-Young: the best rank 2
    torch.testing.assert_close(torch.einsum("brf,brl->bfl", freq, time), best)
    # each component's singular value split evenly: equal norms of its two factors
    torch.testing.assert_close(freq.norm(dim=-1), time.norm(dim=-1))
    torch.testing.assert_close(freq.norm(dim=-1) ** 2, s[:, :2])


@pytest.mark.parametrize("basis", [False, True])
def test_parametric_jacobian_norms_are_autograds(basis):
    """The closed-form weighted norms of the parametric kernel's derivatives (the per-neuron
    L-BFGS's parameter scales) equal ``sum_d c_nd (d w_nd / d theta_nj)^2`` from autograd's
    Jacobian, for every parameter of every neuron; over a lag basis, of its coefficients."""
    from skstrf.kernels import LagBasis, raised_cosine_basis

    g = torch.Generator().manual_seed(0)
    N, F, L, K = 3, 7, 6, 4
    inner = ParametricKernel(N, 2, F, 4 if basis else L, n_gaussians=K, generator=g).double()
    with torch.no_grad():  # widths and amplitudes away from their start values
        for p in (inner.width_freq_raw, inner.width_lag_raw, inner.amplitude):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    kernel = LagBasis(inner, raised_cosine_basis(L, 4)) if basis else inner
    curvature = torch.rand(N, 2 * F * kernel.coefficient_shape[-1], generator=g, dtype=torch.float64)
    names = [name for name, _ in kernel.named_parameters()]
    values = tuple(p.detach() for p in kernel.parameters())

    class Coefficients(torch.nn.Module):  # the kernel's coefficients as a module's output
        def __init__(self):
            super().__init__()
            self.kernel = kernel

        def forward(self):
            return self.kernel.coefficients().reshape(N, -1)

    def coefficients(*params):
        return torch.func.functional_call(Coefficients(), {f"kernel.{n}": p for n, p in zip(names, params)}, ())

    jacobians = torch.autograd.functional.jacobian(coefficients, values)
    for name, jacobian, norm in zip(names, jacobians, kernel.jacobian_norms(curvature)):
        own = torch.stack([jacobian[n, :, n] for n in range(N)])  # (N, D, C, K): each neuron's own parameters
        expected = (own**2 * curvature[:, :, None, None]).sum(1)
        assert norm.shape == values[names.index(name)].shape
        torch.testing.assert_close(norm, expected, rtol=1e-12, atol=1e-14, msg=name)
