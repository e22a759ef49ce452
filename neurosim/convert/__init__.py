"""ANN -> SNN conversion: :mod:`.graph` (torch.fx trace), :mod:`.threshold_balancing` (the
ANN-based rules), :mod:`.snn_balancing` (the SNN-based rule), :mod:`.rmp` (the netlist). The
rule names and the one default live here, without importing PyTorch, so the command line can
offer them cheaply."""

#: Threshold balancing rules (:mod:`.threshold_balancing`; ``snn``: :mod:`.snn_balancing`), and the default.
RULES = ("max", "percentile", "channel", "channel-percentile", "snn")
DEFAULT_RULE = "percentile"
#: The rules that give one threshold per channel (folded into the weights by the converter).
CHANNEL_RULES = ("channel", "channel-percentile")
#: The one default percentile of the ``percentile`` and ``channel-percentile`` rules (library and command line).
DEFAULT_PERCENTILE = 99.99
#: How a converted net takes the image (:func:`.rmp.convert`'s ``input_coding``; the first is the default):
#: spikes of IF input neurons, or the first conv or dense layer computed on the host (an analog input layer).
INPUT_CODINGS = ("spikes", "analog")
