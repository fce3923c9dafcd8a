"""`synth report`: a dataset card, an HTML page with plots, and the numbers as JSON, for one run folder."""

from .build import ReportConfig, ReportPaths, build_report
from .numbers import collect

__all__ = ["build_report", "collect", "ReportConfig", "ReportPaths"]
