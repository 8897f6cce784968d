"""Models as they come in: the graph format, the ONNX/state-dict importer, float MLPs, the digits data.

* :mod:`.graph` -- sparsa's model graph (CNN layers) and its float forward pass.
* :mod:`.importer` -- ONNX and PyTorch state-dict import (:mod:`.onnx_ops`: the ONNX op walk,
  on :mod:`.onnx_base`, with the ops of :mod:`.onnx_window` and :mod:`.onnx_lstm`).
* :mod:`.mlp` -- float MLP layers and their forward pass.
* :mod:`.lstm` -- the float LSTM (PyTorch's equations, peepholes, projection): the reference.
* :mod:`.digits` -- scikit-learn's bundled 8x8 digits, split as the demos split them.
* :mod:`.digits_cnn` -- the digits CNN, trained with numpy only.
"""
