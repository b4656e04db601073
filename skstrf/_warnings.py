"""Where skstrf's warnings point and how often they show.

A warning names the user's line (:func:`user_stacklevel`), not skstrf's or scikit-learn's,
and a warning whose text does not change from fit to fit is shown once per line of the
user's code even inside scikit-learn's searches, which reset Python's record of the
warnings shown around every fit (:func:`warn_once_per_line`).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings

import joblib
import sklearn

__all__ = ["user_stacklevel", "warn_once_per_line"]

# Frames a warning is never attributed to: skstrf's and scikit-learn's (which wraps fit);
# a remembered warning also skips joblib's (the loop of a search that calls a scorer).
_INSIDE = tuple(os.path.dirname(path) + os.sep for path in (__file__, sklearn.__file__))
_LIBRARY_DIRS = _INSIDE + (os.path.dirname(joblib.__file__) + os.sep,)


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised by the caller of this function at the
    first frame outside skstrf and scikit-learn: the user's line, whatever the call depth
    (scikit-learn wraps ``fit``, and a check sits at different depths in ``fit``,
    ``predict`` and the out-of-core path).

    Returns
    -------
    int

    Examples
    --------
    >>> import warnings
    >>> from skstrf._warnings import user_stacklevel
    >>> def check():  # in skstrf, the warning would name the line that called into skstrf
    ...     warnings.warn("careful", UserWarning, stacklevel=user_stacklevel())
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_INSIDE):
        frame, level = frame.f_back, level + 1
    return level


_SHOWN: set[tuple] = set()
_SHOWN_LOCK = threading.Lock()


def warn_once_per_line(warning: Warning) -> None:
    """Emit ``warning`` at the user's line, shown as Python's filters say but remembered here.

    Python shows a warning once per (text, category, line) under its "default" action, but
    forgets what it has shown whenever the filters change, and scikit-learn's searches and
    cross_validate change them around every fit and score (``catch_warnings`` in
    ``sklearn.utils.parallel``): a stable text alone would still be shown once per fold and
    candidate. Under the "default", "module" and "once" actions the shown warnings are
    therefore remembered here too (never forgotten, as in a Python session without filter
    changes); "always", "error" and "ignore" are left to Python. The user's line is the first
    frame outside skstrf, scikit-learn and joblib (the search's ``fit``, not joblib's loop).
    """
    level = user_stacklevel()
    frame = sys._getframe(level - 1)
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    text, category = str(warning), type(warning)
    if frame is None:
        filename, lineno, module = "sys", 1, "sys"
    else:
        filename, lineno = frame.f_code.co_filename, frame.f_lineno
        module = frame.f_globals.get("__name__", "<string>")
    get_filters = getattr(warnings, "_get_filters", None)  # context-local filters (Python >= 3.14)
    action = warnings.defaultaction
    for act, msg, cat, mod, line in (get_filters() if get_filters is not None else warnings.filters):
        if ((msg is None or msg.match(text)) and issubclass(category, cat)
                and (mod is None or mod.match(module)) and (line == 0 or line == lineno)):
            action = act
            break
    keys = {"default": (text, category, filename, lineno), "module": (text, category, filename),
            "once": (text, category)}
    if action in keys:
        with _SHOWN_LOCK:
            if keys[action] in _SHOWN:
                return
            _SHOWN.add(keys[action])
    warnings.warn(warning, stacklevel=level)
