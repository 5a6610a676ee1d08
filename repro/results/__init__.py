"""repro.results"""
