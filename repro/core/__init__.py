"""repro.core"""
