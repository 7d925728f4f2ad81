"""The encode path below ``SentenceEncoder.encode``: planning, batching, devices, runtimes, outputs.

``encode`` validates its arguments, builds an :class:`~sentsim.encode.pipeline.EncodePlan`
(devices and their runners, precision, runtime, batching) and hands it to
:func:`~sentsim.encode.pipeline.run`, which tokenizes, batches, runs and collects.
"""
