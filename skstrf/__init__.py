"""skstrf: scikit-learn compatible spectro-temporal receptive field estimators."""

from ._lazy import attach

__version__ = "0.1.0.dev0"

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "STRFRegressor": "estimator",
        "DivergenceError": "_net",
    },
)
