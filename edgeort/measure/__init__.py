"""Measure and explain: ``bench``, ``profile``, ``tune`` and ``doctor`` (build-side: may
import onnx). One module per noun; the CLI is :mod:`edgeort.cli.commands_measure`.

- :mod:`~edgeort.measure.bench` latency/throughput/memory, :mod:`~edgeort.measure.stats`
- :mod:`~edgeort.measure.trace` ORT's profiler, summarised
- :mod:`~edgeort.measure.tune` session settings search (:mod:`~edgeort.measure.search`)
- :mod:`~edgeort.measure.doctor` checks and partition reports
  (:mod:`~edgeort.measure.partition`, :mod:`~edgeort.measure.optables`)
"""
