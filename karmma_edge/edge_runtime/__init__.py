"""What runs on the device: engines, profile selection, sensors, the daemon. Never imports torch."""
