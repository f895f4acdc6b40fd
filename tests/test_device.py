"""One device resolver for every torch stage (usvpipe._device)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from usvpipe.errors import ConfigError


def test_the_device_module_imports_without_torch():
    code = "import sys; import usvpipe._device; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cpu_and_auto_resolve_to_a_torch_device():
    torch = pytest.importorskip("torch")
    from usvpipe._device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto", auto_order=("cuda",)).type == "cpu"


def test_an_unknown_or_missing_device_is_one_line_with_a_fix():
    torch = pytest.importorskip("torch")
    from usvpipe._device import resolve_device

    with pytest.raises(ConfigError, match=r"--device 'tpu'.*\(fix: use one of auto, cpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"no CUDA GPU.*\(fix:"):
            resolve_device("cuda")


def test_poise_auto_never_picks_mps_and_falls_back_to_the_cpu(monkeypatch):
    torch = pytest.importorskip("torch")
    import usvpipe._device as D
    from usvpipe.poise.api import _device

    monkeypatch.setattr(D, "cuda_available", lambda: False)
    monkeypatch.setattr(D, "mps_available", lambda: True)
    assert _device("auto") == torch.device("cpu")
    assert D.resolve_device("auto").type == "mps"  # the VAE's order would take it
    with pytest.raises(ConfigError, match=r"no CUDA GPU.*\(fix:"):
        _device("cuda")
