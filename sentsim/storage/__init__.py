"""Loading and saving: model folders, model names, safetensors weights, atomic writes.

The modules are imported one by one (``sentsim.storage.weights``, ...): towers read weights
through this package, and model folders build towers, so this file imports nothing.
"""
