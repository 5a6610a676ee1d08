"""repro.data"""
