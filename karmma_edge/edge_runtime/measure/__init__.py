"""What measures the runtime, as opposed to what runs on the device (the rest of `edge_runtime`):
bench and its results, reports and plots, the deployed missing-modality curve, held-out evaluation
of an engine, the machine description, resource sampling, switch latency and the device check.
Nothing here is imported by the daemon. No torch at module level."""
