"""Loihi 2: the refusal without Intel's extension, the deployment report, quantisation."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurosim.cli import main
from neurosim.loihi2.backend import loihi2_available
from neurosim.loihi2.quantize import fit_report, normalized, quantize
from neurosim.loihi2.report import deployment_report
from neurosim.netlist import CUBA, RMP, Flatten, Input, Netlist, Schedule, conv, dense, hdf5
from neurosim.sim.simulator import Simulator


def _net() -> Netlist:
    """Input 2x6x6 -> conv 3x3 (RMP soft, vInit) -> flatten -> dense 9000 (CUBA hard, bias schedule)
    -> dense 10 (CUBA hard): weights even, the largest 254 in every layer."""
    rng = np.random.default_rng(0)

    def w(shape):
        a = 2 * rng.integers(-60, 128, shape)
        a.flat[0] = 254
        return a.astype(float)
    return Netlist(layers=[
        Input((2, 6, 6), CUBA(100, iDecay=4096), weight=255.0),
        conv((4, 4, 4), w((4, 2, 3, 3)), RMP(300, vInit=150)),
        Flatten((64,)),
        dense((9000,), w((9000, 64)), CUBA(400, iDecay=1024, vDecay=100), schedule=Schedule(bias=np.ones((3, 9000)))),
        dense((10,), w((10, 9000)), CUBA(2000, iDecay=4096), bias=np.arange(10) * 2.0),
    ])


@pytest.mark.skipif(loihi2_available(), reason="Intel's Loihi extension is installed here")
def test_backend_loihi2_is_refused_at_once_naming_what_to_install(tmp_path, capsys):
    path = hdf5.save(_net(), tmp_path / "net.net")
    assert main(["run", str(path), "--backend", "loihi2", "--dataset", "no-such-data-set"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lava-loihi" in err and "CPU simulator" in err


def test_report_counts_and_classifies_every_layer():
    rows = {r["layer"]: r for r in deployment_report(_net())["layers"]}
    assert sorted(rows) == [0, 1, 3, 4]
    assert rows[1]["synapses"] == 4 * 2 * 9 * 16 and rows[1]["fan_in_mean"] == 18
    assert rows[3]["synapses"] == 9000 * 64 and rows[3]["fan_out_mean"] == 10
    assert rows[4]["fan_in_mean"] == 9000
    # 9000 neurons > 8192 per core; 576,000 synapses = 4.4 cores of 131,072 one-byte synapses
    assert rows[3]["cores"] == 5 and rows[4]["cores"] == 1 and rows[0]["cores"] == 1
    assert rows[0]["native_neuron"] and rows[4]["native_neuron"]
    assert rows[1]["custom_program_for"] == ["soft reset", "vInit"]
    assert rows[3]["custom_program_for"] == ["per-step bias"]
    assert all(not r["format_problems"] for r in rows.values())


def test_quantizing_the_float_form_gives_back_the_fixed_net_exactly():
    """Every layer divided by its threshold (a float net, threshold 1) and quantised again:
    lambda = 254 / max|w| recovers the original mantissas, so the fixed-mode spikes are equal."""
    net = _net()
    flt = normalized(net)
    assert set(fit_report(flt)) == {1, 3, 4}          # the input layer: threshold 1, current 2.55 x
    q, lams = quantize(flt)
    assert not fit_report(q)
    assert lams[0] == pytest.approx(100) and lams[1] == pytest.approx(300) and lams[4] == pytest.approx(2000)
    x = np.random.default_rng(1).random((2, 2, 6, 6))
    a = Simulator(net, "fixed").run(x, 20, record_spikes=True)
    b = Simulator(q, "fixed").run(x, 20, record_spikes=True)
    assert a.spikes[4].any()
    for i in net.neuron_layers:
        assert np.array_equal(a.spikes[i], b.spikes[i]), i


def test_quantize_rounds_a_real_valued_net_into_range():
    rng = np.random.default_rng(2)
    net = Netlist(layers=[dense((8,), rng.normal(0, 0.3, (8, 20)), CUBA(1.0, iDecay=4096), bias=rng.normal(0, .1, 8)),
                          dense((3,), rng.normal(0, 2.0, (3, 8)), RMP(0.5, reset="hard"))], input_shape=(20,))
    q, _ = quantize(net)
    assert not fit_report(q)
    assert np.abs(q.layers[0].synapse.weight).max() == 254 and q.layers[1].neuron.vThMant > 0


def test_an_integrating_readout_is_scaled_by_its_weights_not_its_threshold():
    """A float readout that integrates (soft reset, no leak) with a never-reached threshold
    (BNTT's export): quantised, its weights reach 254 instead of rounding to 0, the threshold is
    clipped to 17 bits, and the readout ranks the classes as before."""
    rng = np.random.default_rng(3)
    net = Netlist(layers=[dense((16,), rng.normal(0, 0.4, (16, 12)), RMP(1.0, vDecay=205)),
                          dense((4,), rng.normal(0, 0.5, (4, 16)), RMP(131071.0, vDecay=0))], input_shape=(12,))
    q, lams = quantize(net)
    assert not fit_report(q)
    assert np.abs(q.layers[1].synapse.weight).max() == 254 and q.layers[1].neuron.vThMant == 131071
    x = (rng.random((40, 20, 12)) < 0.5).astype(float)
    a = Simulator(net, "float").run(x, 20)
    b = Simulator(q, "fixed").run(x, 20)
    assert np.mean(a.predictions == b.predictions) >= 0.9
    assert np.corrcoef(a.readout.ravel(), b.readout.ravel())[0, 1] > 0.99


def test_cli_report_and_quantize(tmp_path, capsys):
    path = hdf5.save(normalized(_net()), tmp_path / "float.net")
    assert main(["loihi2-report", str(path), "--json", str(tmp_path / "float.loihi2.json")]) == 0
    out = capsys.readouterr().out
    assert "custom: soft reset, vInit" in out and "do NOT fit" in out
    assert json.loads((tmp_path / "float.loihi2.json").read_text())["totals"]["cores"] == 8
    assert main(["quantize-loihi2", str(path), str(tmp_path / "q.net")]) == 0
    assert not fit_report(hdf5.load(tmp_path / "q.net"))


def test_identity_weights_round_to_loihi_mantissas():
    from neurosim.netlist.quantize import LOIHI_WEIGHT_MAX, mantissa8
    from neurosim.netlist.synapses.identity import fits_loihi
    for w in (3.0, 254.0, 255.4, 301.4, 1000.7, 511.9, 30000.0):
        m = mantissa8(w)
        assert fits_loihi(m) and abs(m - w) <= w / 256, (w, m)
    assert not fits_loihi(301.0) and not fits_loihi(2.5) and not fits_loihi(LOIHI_WEIGHT_MAX * 2)


def _fitting_net() -> Netlist:
    """What ``neurosim convert`` writes, and fits Loihi 2 as it is: an input current of
    ``2048 * x`` (a power of two near the 13-bit bias limit), integer thresholds, even weights whose
    largest is below 254 (the converter's integer scale), integer biases, a soft-reset readout."""
    rng = np.random.default_rng(5)
    return Netlist(layers=[
        Input((1, 6, 6), RMP(1500), weight=2048.0),
        conv((4, 6, 6), 2.0 * rng.integers(-30, 90, (4, 1, 3, 3)), RMP(300), padding=(1, 1),
             bias=np.array([10.0, -6.0, 0.0, 4.0])),
        Flatten((144,)),
        dense((5,), 2.0 * rng.integers(-20, 60, (5, 144)), RMP(700, reset="hard"), bias=np.arange(5) * 3.0),
        dense((3,), 2.0 * rng.integers(-40, 100, (3, 5)), RMP(250)),
    ])


def _arrays(net: Netlist, path) -> dict:
    """Every dataset of ``net`` as written to HDF5 (every number the netlist holds)."""
    import h5py
    out = {}
    with h5py.File(hdf5.save(net, path)) as f:
        f.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return out


def test_a_net_that_fits_comes_back_unchanged_unless_forced(tmp_path):
    """Issue 17 (7): quantize used to rescale a net that fits (the input layer by 255/2048, the
    others to a largest weight of 254), so its spikes changed. Now every lambda is 1 and every
    number and spike is the same; force=True rescales it and says why, layer by layer."""
    from neurosim.loihi2.quantize import rescale_reasons, scale_plan

    net = _fitting_net()
    assert not fit_report(net)
    q, lams = quantize(net)
    assert lams == {0: 1.0, 1: 1.0, 3: 1.0, 4: 1.0}
    assert "loihi2_quantized" not in q.meta and rescale_reasons(net) == {}
    a, b = _arrays(net, tmp_path / "a.net"), _arrays(q, tmp_path / "b.net")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), \
        [k for k in a if not np.array_equal(a[k], b[k])]
    x = np.random.default_rng(6).random((3, 1, 6, 6))
    ra = Simulator(net, "fixed").run(x, 24, record_spikes=True)
    rb = Simulator(q, "fixed").run(x, 24, record_spikes=True)
    assert all(ra.spikes[i].any() for i in net.neuron_layers)
    for i in net.neuron_layers:
        assert np.array_equal(ra.spikes[i], rb.spikes[i]), i

    forced, flams = quantize(net, force=True)
    assert not fit_report(forced) and flams[0] == pytest.approx(255 / 2048)
    assert flams[1] == pytest.approx(254 / np.abs(net.layers[1].synapse.weight).max())
    reasons = rescale_reasons(net, force=True)
    assert sorted(reasons) == [0, 1, 3, 4]
    assert "x0.1245" in reasons[0] and "2048 -> 255" in reasons[0] and "fitted already" in reasons[0]
    assert "integrating readout" in reasons[4] and "integrating readout" not in reasons[3]
    assert {i: s.lam for i, s in scale_plan(net, force=True).items()} == flams


def test_rescale_reasons_name_what_did_not_fit():
    """A float net: every layer is rescaled; each reason says what set lambda and what did not fit."""
    from neurosim.loihi2.quantize import rescale_reasons

    flt = normalized(_net())
    reasons = rescale_reasons(flt)
    _, lams = quantize(flt)
    assert sorted(reasons) == sorted(lams) == [0, 1, 3, 4]
    assert "did not fit: threshold 1" not in reasons[0] and "fitted already" in reasons[0]   # threshold 1 fits
    assert "largest weight" in reasons[1] and "did not fit:" in reasons[1] and "vInit" in reasons[1]
    assert f"x{lams[4]:.4g}" in reasons[4]
