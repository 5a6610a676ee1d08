"""repro.methods"""
