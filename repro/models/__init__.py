"""repro.models"""
