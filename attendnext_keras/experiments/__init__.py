"""Experiments on top of training and deployment: the peer benchmark (benchmark, benchmark_report), the design
exploration (explore/) and the shared tables, fronts and plots (reports)."""
