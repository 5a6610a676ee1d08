"""repro: reproduction suite for EfficientTrain++ (TPAMI 2024) and EfficientTrain (ICCV 2023)."""

__version__ = "0.1.0"
